"""The models' scores as DuckDB functions: SQL scores people (``core.customer_predictions``).

Each is an Arrow UDF: DuckDB hands it one vector of rows at a time and it answers with one NumPy
expression over the whole vector (:mod:`crm_assets.clv.models`). Model parameters are arguments
(a SQL file joins the published model of ``meta.clv_models``), so the functions hold no state.
NULL in, NULL out; so is an answer that is not a finite number.

Like every Python UDF they exist only in the process that registered them: a table built with
them is materialised, never a view.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import numpy as np
import pyarrow as pa

from crm_assets.clv import models

CLV_FUNCTIONS: tuple[str, ...] = (
    "bgnbd_p_alive",
    "bgnbd_expected_purchases",
    "bgnbd_discounted_purchases",
    "gamma_gamma_expected_spend",
)
"""``bgnbd_p_alive(r, alpha, a, b, x, t_x, T)``: P(still a customer);
``bgnbd_expected_purchases(r, alpha, a, b, t, x, t_x, T)``: purchases expected in the next ``t``
weeks; ``bgnbd_discounted_purchases(r, alpha, a, b, months, monthly_discount_rate, x, t_x, T)``:
those of the next ``months`` 30-day months, discounted; ``gamma_gamma_expected_spend(p, q, gamma,
x, m)``: spend expected per purchase. Times in weeks, as ``core.customer_purchase_summary`` gives
them."""


def _floats(column: pa.Array) -> np.ndarray:
    return np.asarray(column.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=float)


def _answer(out: np.ndarray, like: np.ndarray) -> pa.Array:
    """NumPy answers as an Arrow column; NaN (a NULL argument, no finite answer) -> NULL."""
    out = np.broadcast_to(np.asarray(out, dtype=float), like.shape)
    return pa.array(np.where(np.isfinite(out), out, np.nan), type=pa.float64(), from_pandas=True)


# DuckDB reads the number of arguments from each function's signature: one def per function.

def bgnbd_p_alive(r, alpha, a, b, x, t_x, T):  # noqa: N803 (the papers' T)
    r, alpha, a, b, x, t_x, T = map(_floats, (r, alpha, a, b, x, t_x, T))  # noqa: N806
    with np.errstate(all="ignore"):
        return _answer(models.p_alive(models.BgNbd(r, alpha, a, b), x, t_x, T), x)


def bgnbd_expected_purchases(r, alpha, a, b, t, x, t_x, T):  # noqa: N803
    r, alpha, a, b, t, x, t_x, T = map(_floats, (r, alpha, a, b, t, x, t_x, T))  # noqa: N806
    with np.errstate(all="ignore"):
        return _answer(models.expected_purchases(models.BgNbd(r, alpha, a, b), t, x, t_x, T), x)


def bgnbd_discounted_purchases(r, alpha, a, b, months, monthly_discount_rate, x, t_x, T):  # noqa: N803
    r, alpha, a, b, months, rate, x, t_x, T = map(  # noqa: N806
        _floats, (r, alpha, a, b, months, monthly_discount_rate, x, t_x, T))
    finite = np.unique(months[np.isfinite(months)])
    if len(finite) > 1:
        raise ValueError("bgnbd_discounted_purchases: months must be one value for every row")
    out = np.full(x.shape, np.nan)
    with np.errstate(all="ignore"):
        for value in np.unique(rate[np.isfinite(rate)]):  # one rate per model: a loop of one
            rows = rate == value
            out[rows] = models.discounted_purchases(
                models.BgNbd(r[rows], alpha[rows], a[rows], b[rows]), int(finite[0]),
                float(value), x[rows], t_x[rows], T[rows])
    return _answer(out, x)


def gamma_gamma_expected_spend(p, q, gamma, x, m):
    p, q, gamma, x, m = map(_floats, (p, q, gamma, x, m))
    with np.errstate(all="ignore"):
        return _answer(models.expected_spend(models.GammaGamma(p, q, gamma), x, m), x)


_UDFS: dict[str, Callable[..., pa.Array]] = {f.__name__: f for f in (
    bgnbd_p_alive, bgnbd_expected_purchases, bgnbd_discounted_purchases,
    gamma_gamma_expected_spend)}


def register_clv_functions(con: duckdb.DuckDBPyConnection) -> None:
    """Create the scoring UDFs on ``con``'s database instance, unless it has them (they live in
    the instance's ``system`` catalog, as the contact UDFs do)."""
    present = {row[0] for row in con.execute(
        "SELECT function_name FROM duckdb_functions() WHERE database_name = 'system'"
        " AND function_type = 'scalar' AND list_contains($names, function_name)",
        {"names": list(CLV_FUNCTIONS)}).fetchall()}
    for name, udf in _UDFS.items():
        if name in present:
            continue
        try:
            con.create_function(name, udf, ["DOUBLE"] * udf.__code__.co_argcount, "DOUBLE",
                                type="arrow",
                                null_handling="special", side_effects=False)
        except duckdb.CatalogException:
            pass  # another connection of this instance registered it since the check above
