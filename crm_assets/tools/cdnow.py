"""``crm clv validate``: the model fit checked against the literature on the CDNOW sample.

The CDNOW sample (2,357 people who first bought at the CDNOW music store in the first quarter of
1997, and their 6,919 purchases to June 1998) is the data set of Fader, Hardie & Lee's BG/NBD and
Gamma-Gamma papers; ``tests/fixtures/cdnow/`` holds it with its source. Its purchases are put in an
in-memory ``core.orders`` and go through the project's own summary query
(``core.customer_purchase_summary``) and fit (:func:`~crm_assets.warehouse.clv.fit_clv_models`), as
of the papers' 39-week calibration end (1997-09-30), checked on the next 39 weeks. The published
estimates must come back within 1 %.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb

from crm_assets.catalog import Definition
from crm_assets.quoting import literal
from crm_assets.warehouse.clv import FitRequest, fit_clv_models
from crm_assets.warehouse.connection import prepare_connection
from crm_assets.warehouse.tables import ensure_framework_tables

CALIBRATION_END = date(1997, 9, 30)
HOLDOUT_END = date(1998, 6, 30)

PUBLISHED: dict[str, float] = {
    "r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "log_likelihood": -9582.4,
    "p": 6.25, "q": 3.74, "gamma": 15.44,
}
"""Fader, Hardie & Lee (2005a), table 1 (BG/NBD, log-likelihood -9582.4); (2005b), the
Gamma-Gamma model of the 946 repeat buyers' mean spend."""

TOLERANCE = 0.01


def load_cdnow_orders(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """``core.orders`` from the CDNOW file (whitespace-separated: id, sample id, YYYYMMDD, CDs,
    dollars): one completed order per line, at noon; the count of lines."""
    con.execute("CREATE SCHEMA IF NOT EXISTS core")
    con.execute(f"""
        CREATE OR REPLACE TABLE core.orders AS
        WITH lines AS (
            SELECT regexp_split_to_array(trim(line), '\\s+') AS f
            FROM read_csv({literal(str(path))}, columns = {{'line': 'VARCHAR'}}, header = false,
                          delim = '\\x01', quote = '', escape = '')
            WHERE trim(line) <> ''
        )
        SELECT f[2]::BIGINT AS customer_id,
               timezone(business_timezone(), strptime(f[3], '%Y%m%d') + INTERVAL 12 HOUR)
                   AS ordered_at,
               'completed' AS status,
               f[5]::DECIMAL(18, 2) AS total_amount
        FROM lines""")
    return con.execute("SELECT count(*) FROM core.orders").fetchone()[0]


def validate_on_cdnow(summary: Definition, path: Path) -> dict:
    """Fit on the CDNOW sample as the papers did; the estimates next to the published ones."""
    with duckdb.connect() as con:
        prepare_connection(con, "UTC")
        ensure_framework_tables(con)
        orders = load_cdnow_orders(con, path)
        row = fit_clv_models(con, summary, FitRequest(CALIBRATION_END, HOLDOUT_END,
                                                      sample_size=10**9))
    estimates = {key: row[key] for key in PUBLISHED}
    deviation = {key: abs(estimates[key] - value) / abs(value) for key, value in PUBLISHED.items()}
    return {
        "data": str(path), "orders": orders, "customers": row["population"],
        "repeat_customers": row["repeat_customers"],
        "calibration_end": CALIBRATION_END.isoformat(), "holdout_end": HOLDOUT_END.isoformat(),
        "estimates": {k: round(v, 6) for k, v in estimates.items()},
        "published": PUBLISHED,
        "relative_deviation": {k: round(v, 6) for k, v in deviation.items()},
        "within_tolerance": all(v <= TOLERANCE for v in deviation.values()),
        "tolerance": TOLERANCE,
        "holdout": {"predicted": row["holdout_predicted"], "actual": row["holdout_actual"],
                    "relative_error": row["holdout_error"],
                    "by_frequency": json.loads(row["holdout_by_frequency"])},
        "converged": row["converged"],
    }
