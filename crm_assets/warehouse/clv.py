"""Fitting the customer-base models on the warehouse and publishing them in ``meta.clv_models``.

A fit summarises every buyer as of the calibration end with the catalogue's own
``core.customer_purchase_summary`` query (the same SQL that scores people every night, run as of
another day), fits BG/NBD and Gamma-Gamma (:mod:`crm_assets.clv.models`) on a stable sample, and,
when the fit's as-of day is later than the calibration end, checks it on the holdout: the same
summary as of the as-of day gives what each sampled person actually bought since, against what the
model expected (the papers' conditional-expectation chart, by calibration frequency 0 to 7+).
The row is written in one statement; a re-fit of the same data gives the same ``model_version``
and replaces its row.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import date, timedelta
from importlib.metadata import version

import duckdb

from crm_assets.catalog import Definition
from crm_assets.clv import models
from crm_assets.clv.functions import register_clv_functions
from crm_assets.functions.registry import set_as_of_date
from crm_assets.warehouse.connection import transaction
from crm_assets.warehouse.state import FRAMEWORK_VERSION, next_batch, set_built_version
from crm_assets.warehouse.tables import CLV_MODELS

SUMMARY = "core.customer_purchase_summary"
"""The catalogue query a fit runs as of its calibration end and as of its holdout end."""

LIBRARIES = ("numpy", "scipy", "duckdb")
"""Whose versions a model card records."""

TOP_FREQUENCY = 7
"""The holdout chart groups calibration frequencies 0, 1, ..., 7+ as the papers do."""

MIN_REPEAT_CUSTOMERS = 10
"""Fewer repeat buyers than this and Gamma-Gamma is not fitted (expected spend stays NULL)."""


class ClvFitError(RuntimeError):
    """A fit that cannot be made (no buyer before the calibration end, dates out of order)."""


@dataclass(frozen=True)
class FitRequest:
    calibration_end: date
    holdout_end: date | None
    sample_size: int = 200_000
    sample_seed: str = "crm"
    monthly_discount_rate: float = 0.01


def fit_clv_models(con: duckdb.DuckDBPyConnection, summary: Definition, request: FitRequest,
                   run_id: str | None = None) -> dict:
    """Fit both models as ``request`` says, publish them in ``meta.clv_models``; the row as a dict.

    Raises:
        ClvFitError: no buyer before the calibration end, or a holdout end before it.
    """
    started = time.perf_counter()
    cal, holdout_end = request.calibration_end, request.holdout_end
    if holdout_end is not None and holdout_end <= cal:
        holdout_end = None  # nothing after the calibration end to check against
    set_as_of_date(con, cal)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _clv_calibration AS {summary.body}\n")
    population = con.execute("SELECT count(*) FROM _clv_calibration").fetchone()[0]
    if population == 0:
        raise ClvFitError(f"no completed order before the end of {cal}: nothing to fit on "
                          "(choose a later calibration end)")
    # a stable sample: the same people for the same seed, whatever the order of the rows
    con.execute("CREATE OR REPLACE TEMP TABLE _clv_sample AS SELECT * FROM _clv_calibration "
                "ORDER BY hash(customer_id::VARCHAR || ':' || $seed), customer_id LIMIT $n",
                {"seed": request.sample_seed, "n": int(request.sample_size)})
    groups = con.execute("""SELECT frequency::DOUBLE AS x, recency_weeks AS t_x, age_weeks AS t,
                                   count(*)::DOUBLE AS n
                            FROM _clv_sample GROUP BY ALL ORDER BY ALL""").fetchnumpy()
    bgnbd = models.fit_bgnbd(groups["x"], groups["t_x"], groups["t"], groups["n"])
    repeat = con.execute("""SELECT frequency::DOUBLE AS x, mean_repeat_spend AS m FROM _clv_sample
                            WHERE frequency > 0 AND mean_repeat_spend > 0
                            ORDER BY customer_id""").fetchnumpy()
    spend = (models.fit_gamma_gamma(repeat["x"], repeat["m"])
             if len(repeat["x"]) >= MIN_REPEAT_CUSTOMERS else None)
    params: models.BgNbd = bgnbd.params  # type: ignore[assignment]
    gg: models.GammaGamma | None = spend.params if spend else None  # type: ignore[assignment]
    sample = int(bgnbd.n)
    row = {
        "model_version": _model_version(cal, params, gg, sample, request.sample_seed),
        "run_id": run_id, "calibration_end": cal, "holdout_end": holdout_end, "time_unit": "week",
        "population": population, "sample_size": sample, "sample_seed": request.sample_seed,
        "r": params.r, "alpha": params.alpha, "a": params.a, "b": params.b,
        "log_likelihood": bgnbd.log_likelihood, "repeat_customers": len(repeat["x"]),
        "p": gg.p if gg else None, "q": gg.q if gg else None, "gamma": gg.gamma if gg else None,
        "gg_log_likelihood": spend.log_likelihood if spend else None,
        "monthly_discount_rate": request.monthly_discount_rate,
        "converged": bgnbd.converged and (spend is None or spend.converged),
        # a ridge the search ended at a bound of (models.BOUNDS): say so, never silently
        "parameters_at_bound": ", ".join([*bgnbd.at_bound, *(spend.at_bound if spend else ())])
                               or None,
        "libraries": json.dumps({name: version(name) for name in LIBRARIES}),
    }
    row.update(_holdout_check(con, summary, params, cal, holdout_end))
    con.execute("DROP TABLE _clv_calibration")
    con.execute("DROP TABLE _clv_sample")
    row["fit_seconds"] = round(time.perf_counter() - started, 3)
    columns = [c.name for c in CLV_MODELS.columns if c.name != "fitted_at"]
    batch = next_batch(con)
    with transaction(con):
        # what reads the models (core.customer_predictions) knows they changed
        set_built_version(con, CLV_MODELS.name, FRAMEWORK_VERSION, batch, ["model_version"])
        con.execute(f"DELETE FROM {CLV_MODELS.name} WHERE model_version = ?",
                    [row["model_version"]])
        con.execute(f"INSERT INTO {CLV_MODELS.name} ({', '.join(columns)}, fitted_at) "
                    f"VALUES ({', '.join('?' for _ in columns)}, now())",
                    [row.get(c) for c in columns])
    row["fitted_at"] = con.execute(f"SELECT fitted_at FROM {CLV_MODELS.name} "
                                   "WHERE model_version = ?", [row["model_version"]]).fetchone()[0]
    return row


def _model_version(cal: date, params: models.BgNbd, gg: models.GammaGamma | None, sample: int,
                   seed: str) -> str:
    """``clv-<calibration end>-<hash of what was fitted>``: a re-fit of the same data, the same."""
    what = json.dumps([cal.isoformat(), [round(v, 6) for v in vars(params).values()],
                       [round(v, 6) for v in vars(gg).values()] if gg else None, sample, seed])
    return f"clv-{cal:%Y%m%d}-{hashlib.sha256(what.encode()).hexdigest()[:8]}"


def _holdout_check(con: duckdb.DuckDBPyConnection, summary: Definition, params: models.BgNbd,
                   cal: date, holdout_end: date | None) -> dict:
    """Predicted against actual repeat purchase days between the calibration end and
    ``holdout_end``, for the sampled people, by calibration frequency (0 .. 7+)."""
    if holdout_end is None:
        return {"holdout_predicted": None, "holdout_actual": None, "holdout_error": None,
                "holdout_by_frequency": None}
    set_as_of_date(con, holdout_end)
    register_clv_functions(con)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _clv_holdout AS {summary.body}\n")
    weeks = (holdout_end - cal).days / 7
    rows = con.execute(
        """SELECT least(s.frequency, $top) AS x, count(*) AS people,
                  sum(h.frequency - s.frequency) AS actual,
                  sum(bgnbd_expected_purchases($r, $alpha, $a, $b, $t, s.frequency,
                                               s.recency_weeks, s.age_weeks)) AS predicted
           FROM _clv_sample AS s JOIN _clv_holdout AS h USING (customer_id)
           GROUP BY 1 ORDER BY 1""",
        {"top": TOP_FREQUENCY, "r": params.r, "alpha": params.alpha, "a": params.a,
         "b": params.b, "t": weeks}).fetchall()
    con.execute("DROP TABLE _clv_holdout")
    chart = [{"frequency": f"{x}+" if x == TOP_FREQUENCY else str(x), "people": people,
              "actual_mean": actual / people, "predicted_mean": predicted / people}
             for x, people, actual, predicted in rows]
    actual = float(sum(r[2] for r in rows))
    predicted = float(sum(r[3] for r in rows))
    return {"holdout_predicted": predicted, "holdout_actual": actual,
            "holdout_error": (predicted - actual) / actual if actual else None,
            "holdout_by_frequency": json.dumps(chart)}


def model_card(row: dict) -> str:
    """The fit as Markdown: parameters, sample, holdout chart (bars), libraries."""
    lines = [f"### Customer-base model `{row['model_version']}`", "",
             f"Calibration up to {row['calibration_end']}; "
             f"{row['sample_size']:,} of {row['population']:,} buyers "
             f"(sample seed `{row['sample_seed']}`); times in weeks; fitted in "
             f"{row['fit_seconds']:.1f} s.", "",
             "| model | parameters | log-likelihood |", "|---|---|---|",
             f"| BG/NBD | r = {row['r']:.4g}, alpha = {row['alpha']:.4g}, a = {row['a']:.4g}, "
             f"b = {row['b']:.4g} | {row['log_likelihood']:.1f} |"]
    if row.get("p") is not None:
        lines.append(f"| Gamma-Gamma ({row['repeat_customers']:,} repeat buyers) | "
                     f"p = {row['p']:.4g}, q = {row['q']:.4g}, gamma = {row['gamma']:.4g} | "
                     f"{row['gg_log_likelihood']:.1f} |")
    else:
        lines.append(f"| Gamma-Gamma | not fitted ({row['repeat_customers']} repeat buyers) | |")
    if row.get("parameters_at_bound"):
        lines += ["", f"At the search bound ({models.BOUNDS[1]:g}): {row['parameters_at_bound']}. "
                      "The likelihood rises along a ridge there: for BG/NBD's a and b, every "
                      "buyer has about the same dropout probability a/(a+b); for Gamma-Gamma's q "
                      "and gamma, everyone's spend per purchase has about the same scale, "
                      "gamma/q. The scores depend on those ratios, not on the bound."]
    if not row.get("converged", True):
        lines += ["", "**The search did not converge**: read the scores with care."]
    chart = json.loads(row["holdout_by_frequency"]) if row.get("holdout_by_frequency") else []
    if chart:
        top = max(max(c["actual_mean"], c["predicted_mean"]) for c in chart) or 1.0
        lines += ["", f"**Holdout** {row['calibration_end']} to {row['holdout_end']}: "
                      f"{row['holdout_predicted']:,.0f} repeat purchase days predicted, "
                      f"{row['holdout_actual']:,.0f} made "
                      f"({(row['holdout_error'] or 0):+.1%}). Mean per person by purchase days "
                      "in the calibration period:", "",
                  "| repeat days | people | actual | predicted | actual | predicted |",
                  "|---|---|---|---|---|---|"]
        for c in chart:
            lines.append(f"| {c['frequency']} | {c['people']:,} | {c['actual_mean']:.2f} | "
                         f"{c['predicted_mean']:.2f} | "
                         f"{'█' * round(20 * c['actual_mean'] / top)} | "
                         f"{'░' * round(20 * c['predicted_mean'] / top)} |")
    else:
        lines += ["", "No holdout period: the model was fitted up to the fit's as-of day."]
    libraries = json.loads(row["libraries"])
    lines += ["", "Libraries: " + ", ".join(f"{k} {v}" for k, v in libraries.items()) + "."]
    return "\n".join(lines)


def fit_request(as_of: date, calibration_end: date | None, holdout_days: int,
                sample_size: int, monthly_discount_rate: float) -> FitRequest:
    """What a fit as of ``as_of`` does: calibrate up to ``calibration_end`` (default ``as_of``
    minus ``holdout_days``) and check on the days after it, up to ``as_of``."""
    cal = calibration_end or as_of - timedelta(days=holdout_days)
    if cal > as_of:
        raise ClvFitError(f"calibration end {cal} is after the as-of day {as_of}")
    return FitRequest(cal, as_of if as_of > cal else None, sample_size,
                      monthly_discount_rate=monthly_discount_rate)
