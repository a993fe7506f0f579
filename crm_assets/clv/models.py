"""The "buy till you die" models: BG/NBD for who is still a customer and how often they will buy,
Gamma-Gamma for what a purchase is worth. Likelihoods, maximum-likelihood fits and scores.

* BG/NBD: Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to the
  Pareto/NBD model", Marketing Science 24(2). Equations (6) (likelihood), (10) (conditional
  expectation) and the P(alive) expression of Fader, Hardie & Lee's note "Computing P(alive) using
  the BG/NBD model".
* Gamma-Gamma: Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for customer base
  analysis", Journal of Marketing Research 42(4), and Fader & Hardie's note "The Gamma-Gamma model
  of monetary value" (2013): the marginal density of the mean spend and its conditional
  expectation.

Inputs per person, as the papers define them (``core.customer_purchase_summary``): ``x`` repeat
purchases (purchase *days* after the first), ``t_x`` the time of the last purchase and ``T`` the
time since the first, both from the first purchase, in weeks; ``m`` the mean spend of the repeat
purchases.

Everything is vectorised NumPy/SciPy: scoring a million people is a few array operations, never a
Python loop over rows. Fits maximise the log-likelihood over log-parameters (so they stay positive)
with SciPy's L-BFGS-B, on rows grouped by distinct inputs (a weight per group), so a fit's cost
grows with the number of distinct histories, not of people. pymc-marketing's CLV module fits the
same likelihoods (MAP) but brings PyMC, PyTensor and a C compiler into every run; see the README's
"Predictions" section for the measurement.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize, special

ArrayLike = np.ndarray | float


@dataclass(frozen=True)
class BgNbd:
    """BG/NBD parameters: purchase rates ~ Gamma(r, alpha); dropout probability ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class GammaGamma:
    """Gamma-Gamma parameters: spend per purchase ~ Gamma(p, nu), nu ~ Gamma(q, gamma)."""

    p: float
    q: float
    gamma: float


@dataclass(frozen=True)
class Fit:
    """A maximum-likelihood fit: the parameters, the log-likelihood at them, the people it saw."""

    params: BgNbd | GammaGamma
    log_likelihood: float
    n: int
    converged: bool
    iterations: int

    def as_dict(self) -> dict:
        return {**asdict(self.params), "log_likelihood": self.log_likelihood, "n": self.n,
                "converged": self.converged, "iterations": self.iterations}


# --------------------------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------------------------


def bgnbd_log_likelihood(params: BgNbd, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> np.ndarray:  # noqa: N803 (the papers' T)
    """Each person's log-likelihood (Fader, Hardie & Lee 2005, equation 6)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    common = (special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
              + special.betaln(a, b + x) - special.betaln(a, b))
    still_alive = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        dropped = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                           - (r + x) * np.log(alpha + t_x), -np.inf)
    return common + np.logaddexp(still_alive, dropped)


def fit_bgnbd(x: ArrayLike, t_x: ArrayLike, T: ArrayLike,  # noqa: N803
              weights: ArrayLike | None = None) -> Fit:
    """The maximum-likelihood BG/NBD parameters for these people (``weights``: how many people
    share each row's history)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)

    def negative(log_params: np.ndarray) -> float:
        value = -np.dot(w, bgnbd_log_likelihood(BgNbd(*np.exp(log_params)), x, t_x, T))
        return value if np.isfinite(value) else 1e300

    result = _minimise(negative, 4)
    return Fit(BgNbd(*(float(v) for v in np.exp(result.x))), float(-result.fun),
               int(w.sum()), bool(result.success), int(result.nit))


def p_alive(params: BgNbd, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> np.ndarray:  # noqa: N803
    """P(still a customer at T | x, t_x, T); 1 for someone who has bought only once."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_odds = (np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                    + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)))
        return np.where(x > 0, special.expit(-log_odds), 1.0)


def expected_purchases(params: BgNbd, t: ArrayLike, x: ArrayLike, t_x: ArrayLike,
                       T: ArrayLike) -> np.ndarray:  # noqa: N803
    """E[purchases in the next ``t`` weeks | x, t_x, T] (Fader, Hardie & Lee 2005, equation 10).

    The hypergeometric term is evaluated after Euler's transformation,
    ``(1-z)^(r+x) 2F1(r+x, b+x; a+b+x-1; z) = (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)``, whose
    parameters stay small for any ``x``: the paper's form multiplies a vanishing power by a
    diverging series for frequent buyers and loses every digit.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    t, x, t_x, T = (np.asarray(v, dtype=float) for v in (t, x, t_x, T))
    z = t / (alpha + T + t)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        series = (1 - z) ** (a - 1) * special.hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
        numerator = (a + b + x - 1) / (a - 1) * (1 - series)
        odds = np.where(x > 0, a / np.maximum(b + x - 1, 1e-300)
                        * np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + t_x))), 0.0)
        return numerator / (1 + odds)


def discounted_purchases(params: BgNbd, months: int, monthly_discount_rate: float,
                         x: ArrayLike, t_x: ArrayLike, T: ArrayLike,  # noqa: N803
                         days_per_month: float = 30.0) -> np.ndarray:
    """Expected purchases over the next ``months`` months, each month's discounted to today:
    ``sum_i (E[Y(i months)] - E[Y(i-1 months)]) / (1 + d)^i`` (the lifetime value's horizon)."""
    total = np.zeros(np.broadcast(np.asarray(x), np.asarray(t_x), np.asarray(T)).shape)
    before = 0.0
    for month in range(1, months + 1):  # a loop over 12 months, each step over every person
        upto = expected_purchases(params, month * days_per_month / 7, x, t_x, T)
        total = total + (upto - before) / (1 + monthly_discount_rate) ** month
        before = upto
    return total


# --------------------------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------------------------


def gamma_gamma_log_likelihood(params: GammaGamma, x: ArrayLike, m: ArrayLike) -> np.ndarray:
    """Each repeat customer's log-likelihood of their mean spend ``m`` over ``x`` purchases."""
    p, q, gamma = params.p, params.q, params.gamma
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    return (special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q)
            + q * np.log(gamma) + (p * x - 1) * np.log(m) + p * x * np.log(x)
            - (p * x + q) * np.log(gamma + x * m))


def fit_gamma_gamma(x: ArrayLike, m: ArrayLike, weights: ArrayLike | None = None) -> Fit:
    """The maximum-likelihood Gamma-Gamma parameters for repeat customers (``x > 0``, ``m > 0``)."""
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)

    def negative(log_params: np.ndarray) -> float:
        value = -np.dot(w, gamma_gamma_log_likelihood(GammaGamma(*np.exp(log_params)), x, m))
        return value if np.isfinite(value) else 1e300

    result = _minimise(negative, 3)
    return Fit(GammaGamma(*(float(v) for v in np.exp(result.x))), float(-result.fun),
               int(w.sum()), bool(result.success), int(result.nit))


def expected_spend(params: GammaGamma, x: ArrayLike, m: ArrayLike) -> np.ndarray:
    """E[spend per purchase | x, m]: the person's mean shrunk toward the population's
    (``p * gamma / (q - 1)``) the fewer purchases they made; the population mean when ``x = 0``."""
    p, q, gamma = params.p, params.q, params.gamma
    x = np.asarray(x, dtype=float)
    m = np.where(x > 0, np.nan_to_num(np.asarray(m, dtype=float)), 0.0)
    denominator = p * x + q - 1
    with np.errstate(divide="ignore", invalid="ignore"):  # q <= 1: the mean does not exist
        return np.where(denominator > 0, p * (gamma + x * m) / denominator, np.nan)


def _minimise(negative, size: int) -> optimize.OptimizeResult:
    """Minimise over log-parameters from all ones (the usual start) with L-BFGS-B, tolerances
    tight enough to reproduce the published CDNOW estimates to four digits (~125 evaluations)."""
    return optimize.minimize(negative, np.zeros(size), method="L-BFGS-B",
                             options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9})
