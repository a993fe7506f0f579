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
grows with the number of distinct histories, not of people; the gradients are analytic (digamma
functions): a third of the likelihood evaluations of numerical ones. pymc-marketing's CLV module
fits the same likelihoods (MAP) but brings PyMC, PyTensor and a C compiler into every run; see
the README's "Predictions" section for the measurement.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import special

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
    at_bound: tuple[str, ...] = ()
    """Parameters the search stopped at a bound of (:data:`BOUNDS`): the likelihood keeps rising
    along a ridge toward it (for a and b of BG/NBD: every person has about the same dropout
    probability, a/(a+b), and the Beta is degenerate). The fit is still the best within bounds."""

    def as_dict(self) -> dict:
        return {**asdict(self.params), "log_likelihood": self.log_likelihood, "n": self.n,
                "converged": self.converged, "iterations": self.iterations,
                "at_bound": list(self.at_bound)}


BOUNDS = (1e-4, 1e5)
"""Every parameter is searched within these: wide enough for any published fit (CDNOW's are
0.24 to 15), narrow enough that a ridge ends (see :attr:`Fit.at_bound`)."""


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

    def negative(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        with np.errstate(all="ignore"):  # the search tries absurd values: they score 1e300
            params = BgNbd(*np.exp(log_params))
            value = -np.dot(w, bgnbd_log_likelihood(params, x, t_x, T))
            gradient = -_bgnbd_gradient(params, x, t_x, T, w) * np.exp(log_params)
        if not np.isfinite(value) or not np.all(np.isfinite(gradient)):
            return 1e300, np.zeros(4)
        return value, gradient

    return _fit(BgNbd, negative, w)


def _bgnbd_gradient(params: BgNbd, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,  # noqa: N803
                    w: np.ndarray) -> np.ndarray:
    """d(sum of w * log-likelihood) / d(r, alpha, a, b). With the likelihood written
    ``exp(A) * (exp(B) + [x > 0] exp(C))`` as in :func:`bgnbd_log_likelihood`, each derivative is
    ``dA + (1 - s) dB + s dC``, ``s`` the share of the dropped-out term."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    still_alive = -(r + x) * np.log(alpha + T)
    dropped = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                       - (r + x) * np.log(alpha + t_x), -np.inf)
    share = np.exp(dropped - np.logaddexp(still_alive, dropped))
    alive = 1 - share
    d_r = (special.digamma(r + x) - special.digamma(r) + np.log(alpha)
           - alive * np.log(alpha + T) - share * np.log(alpha + t_x))
    d_alpha = r / alpha - alive * (r + x) / (alpha + T) - share * (r + x) / (alpha + t_x)
    d_a = special.digamma(a + b) - special.digamma(a + b + x) + share / a
    d_b = (special.digamma(b + x) - special.digamma(a + b + x) - special.digamma(b)
           + special.digamma(a + b) - share / np.maximum(b + x - 1, 1e-300))
    return np.array([np.dot(w, d) for d in (d_r, d_alpha, d_a, d_b)])


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

    The paper's term ``(1-z)^(r+x) 2F1(r+x, b+x; a+b+x-1; z)``, ``z = t/(alpha+T+t)``,
    multiplies a vanishing power by a diverging series for frequent buyers and for a nearly
    degenerate dropout distribution (large a and b), and SciPy returns NaN for it. So it is
    evaluated as one of two equal forms, whichever has its argument in [-1, 1):

    * Pfaff: ``2F1(r+x, a-1; a+b+x-1; -t/(alpha+T))`` while ``t <= alpha + T``;
    * Euler: ``(1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)`` beyond;

    each falling back to the other, then to the paper's form, where it is not finite (they agree
    to 1e-14 where both are; the tests check the result against the paper's form).
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    t, x, t_x, T = (np.asarray(v, dtype=float) for v in (t, x, t_x, T))
    shape = np.broadcast(r, alpha, a, b, t, x, t_x, T).shape
    r, alpha, a, b, t, x, T = (np.broadcast_to(v, shape) for v in (r, alpha, a, b, t, x, T))
    w = -t / (alpha + T)
    z = t / (alpha + T + t)
    series = np.full(shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for form, rows in ((_pfaff, w >= -1), (_euler, w < -1), (_pfaff, None), (_euler, None),
                           (_paper, None)):
            rows = ~np.isfinite(series) if rows is None else rows
            if rows.any():
                series[rows] = form(r[rows], a[rows], b[rows], x[rows], w[rows], z[rows])
        numerator = (a + b + x - 1) / (a - 1) * (1 - series)
        odds = np.where(x > 0, a / np.maximum(b + x - 1, 1e-300)
                        * np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + t_x))), 0.0)
        return numerator / (1 + odds)


def _pfaff(r, a, b, x, w, z):
    return special.hyp2f1(r + x, a - 1, a + b + x - 1, w)


def _euler(r, a, b, x, w, z):
    return (1 - z) ** (a - 1) * special.hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)


def _paper(r, a, b, x, w, z):
    return (1 - z) ** (r + x) * special.hyp2f1(r + x, b + x, a + b + x - 1, z)


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
    log_x, log_m = np.log(x), np.log(m)

    def negative(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        with np.errstate(all="ignore"):
            p, q, gamma = np.exp(log_params)
            value = -np.dot(w, gamma_gamma_log_likelihood(GammaGamma(p, q, gamma), x, m))
            both = special.digamma(p * x + q)
            log_total = np.log(gamma + x * m)
            gradient = -np.array([
                p * np.dot(w, x * (both - special.digamma(p * x) + log_m + log_x - log_total)),
                q * np.dot(w, both - special.digamma(q) + np.log(gamma) - log_total),
                gamma * np.dot(w, q / gamma - (p * x + q) / (gamma + x * m)),
            ])
        if not np.isfinite(value) or not np.all(np.isfinite(gradient)):
            return 1e300, np.zeros(3)
        return value, gradient

    return _fit(GammaGamma, negative, w)


def expected_spend(params: GammaGamma, x: ArrayLike, m: ArrayLike) -> np.ndarray:
    """E[spend per purchase | x, m]: the person's mean shrunk toward the population's
    (``p * gamma / (q - 1)``) the fewer purchases they made; the population mean when ``x = 0``."""
    p, q, gamma = params.p, params.q, params.gamma
    x = np.asarray(x, dtype=float)
    m = np.where(x > 0, np.nan_to_num(np.asarray(m, dtype=float)), 0.0)
    denominator = p * x + q - 1
    with np.errstate(divide="ignore", invalid="ignore"):  # q <= 1: the mean does not exist
        return np.where(denominator > 0, p * (gamma + x * m) / denominator, np.nan)


def _fit(model: type, negative, w: np.ndarray) -> Fit:
    """Minimise ``negative`` (value and gradient) over log-parameters from all ones (the usual
    start) within :data:`BOUNDS`, with L-BFGS-B and tolerances tight enough to reproduce the
    published CDNOW estimates to four digits."""
    names = list(model.__dataclass_fields__)
    low, high = np.log(BOUNDS)
    people = float(w.sum())

    def per_person(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        value, gradient = negative(log_params)  # the mean, so tolerances mean the same at any n
        return value / people, gradient / people

    from scipy import optimize  # ~0.15 s to import: only a fit needs it, not every command

    result = optimize.minimize(per_person, np.zeros(len(names)), jac=True, method="L-BFGS-B",
                               bounds=[(low, high)] * len(names),
                               options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9})
    bounded = np.minimum(result.x - low, high - result.x) < 1e-6
    at_bound = tuple(n for n, b in zip(names, bounded, strict=True) if b)
    # a line search that cannot improve at machine precision where the gradient is ~0 has
    # converged too ("ABNORMAL_TERMINATION_IN_LNSRCH" on an already optimal point)
    flat = bool(np.all(np.abs(np.asarray(result.jac)[~bounded]) < 1e-6))
    return Fit(model(*(float(v) for v in np.exp(result.x))), float(-result.fun * people),
               int(people), bool(result.success or flat), int(result.nit), at_bound)
