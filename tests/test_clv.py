"""The customer-base models: the summary they read, their math, the published CDNOW fit (alone
and through the whole pipeline), scoring in SQL, and where the fit runs (its own job, not the
night)."""

from __future__ import annotations

import csv
import json
import math
from datetime import date

import duckdb
import numpy as np
import pytest
from conftest import AS_OF, FIXTURES, make_project
from scipy import special

from crm_assets.cli.main import main
from crm_assets.clv import models
from crm_assets.defs.clv import CLV_KEY
from crm_assets.defs.runs import fit_clv
from crm_assets.functions.registry import set_as_of_date
from crm_assets.project import load_project_catalog
from crm_assets.settings import load_settings
from crm_assets.tools.cdnow import PUBLISHED, load_cdnow_orders
from crm_assets.warehouse.clv import SUMMARY, FitRequest, fit_clv_models
from crm_assets.warehouse.connection import prepare_connection, use_functions_of
from crm_assets.warehouse.tables import ensure_framework_tables

CDNOW = FIXTURES / "cdnow" / "CDNOW_sample.txt"
UNIT = models.BgNbd(r=1.0, alpha=1.0, a=1.0, b=1.0)


def _catalog():
    catalog = load_project_catalog(load_settings())
    catalog.raise_for_problems()
    return catalog


@pytest.fixture
def con():
    """An in-memory warehouse with the framework tables and a hand-made ``core.orders``."""
    with duckdb.connect() as c:
        prepare_connection(c, "UTC")
        ensure_framework_tables(c)
        c.execute("CREATE SCHEMA IF NOT EXISTS core")
        c.execute("CREATE TABLE core.orders (customer_id BIGINT, ordered_at TIMESTAMPTZ, "
                  "status VARCHAR, total_amount DECIMAL(18, 2))")
        yield c


def _run(c, table: str, as_of: date) -> None:
    """The catalogue's definition of ``table`` run as of ``as_of`` into that table."""
    d = _catalog().by_table()[table]
    set_as_of_date(c, as_of)
    use_functions_of(c, d)  # as a materialisation does: the UDFs it calls
    c.execute(f"CREATE OR REPLACE TABLE {table} AS {d.body}")


# ---------------------------------------------------------------------------------------------
# The summary: what most implementations get wrong
# ---------------------------------------------------------------------------------------------


def test_the_summary_counts_repeat_purchase_days_in_weeks_as_the_papers_do(con):
    con.execute("""INSERT INTO core.orders VALUES
        (1, '2025-01-01 09:00+00', 'completed', 10), (1, '2025-01-01 18:00+00', 'completed', 5),
        (1, '2025-01-08 10:00+00', 'completed', 20), (1, '2025-01-22 10:00+00', 'completed', 40),
        (1, '2025-01-15 10:00+00', 'cancelled', 99), (1, '2025-02-05 10:00+00', 'completed', 7),
        (2, '2025-01-15 10:00+00', 'completed', 12), (3, '2025-02-01 10:00+00', 'completed', 1),
        (NULL, '2025-01-02 10:00+00', 'completed', 3)""")
    _run(con, SUMMARY, date(2025, 1, 29))
    rows = con.execute("SELECT customer_id, purchase_days, frequency, recency_weeks, age_weeks, "
                       "mean_repeat_spend, total_spend FROM core.customer_purchase_summary "
                       "ORDER BY 1").fetchall()
    # person 1: two orders on Jan 1 are one purchase day (15), then Jan 8 (20) and Jan 22 (40);
    # the cancelled order and the one after the as-of day do not count. x = 2 repeat days,
    # t_x = 21 days = 3 weeks, T = 28 days = 4 weeks, repeat spend (20 + 40) / 2 = 30.
    # person 2: one purchase on Jan 15, T = 14 days = 2 weeks, no repeat spend.
    # person 3 bought after the as-of day; guests have no person.
    assert rows == [(1, 3, 2, 3.0, 4.0, 30.0, 75), (2, 1, 0, 0.0, 2.0, None, 12)]


def test_the_summary_of_the_cdnow_sample_is_the_papers_summary(con):
    """Hardie's own summary (as lifetimes ships it: x, t_x, T in weeks to two decimals, and the
    repeat buyers' mean spend) is what the project's SQL computes from the raw purchases."""
    load_cdnow_orders(con, CDNOW)
    _run(con, SUMMARY, date(1997, 9, 30))
    ours = {r[0]: r[1:] for r in con.execute(
        "SELECT customer_id, frequency, recency_weeks, age_weeks, mean_repeat_spend "
        "FROM core.customer_purchase_summary").fetchall()}
    with (FIXTURES / "cdnow" / "papers_summary.csv").open() as fh:
        theirs = {int(r["ID"]): r for r in csv.DictReader(fh)}
    assert len(ours) == len(theirs) == 2357
    for person, r in theirs.items():
        x, t_x, big_t, m = ours[person]
        assert x == int(r["x"])
        assert round(t_x, 2) == pytest.approx(float(r["t_x"]), abs=0.006)
        assert round(big_t, 2) == pytest.approx(float(r["T"]), abs=0.006)
        assert (m or 0.0) == pytest.approx(float(r["zbar"]), abs=0.006)
    assert sum(1 for v in ours.values() if v[0] > 0) == 946


# ---------------------------------------------------------------------------------------------
# The math, by hand
# ---------------------------------------------------------------------------------------------


def test_bgnbd_likelihood_and_p_alive_by_hand():
    # r = alpha = a = b = 1. Someone who bought once, T = 1 week: B(1,1)/B(1,1) * 1/(1+1) = 1/2.
    assert models.bgnbd_log_likelihood(UNIT, 0, 0, 1)[()] == pytest.approx(math.log(1 / 2))
    # x = 1, t_x = 1, T = 2: alive term B(1,2)/B(1,1) * 1/3^2 = 1/18; dropped-out term
    # B(2,1)/B(1,1) * 1/2^2 = 1/8; together 13/72, and P(alive) = (1/18) / (13/72) = 4/13.
    assert models.bgnbd_log_likelihood(UNIT, 1, 1, 2)[()] == pytest.approx(math.log(13 / 72))
    assert models.p_alive(UNIT, 1, 1, 2)[()] == pytest.approx(4 / 13)
    assert models.p_alive(UNIT, 0, 0, 5)[()] == 1.0  # one purchase: alive by definition


def test_expected_purchases_is_the_papers_equation_10_and_stable_for_frequent_buyers():
    p = models.BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426)
    x = np.array([0, 1, 2, 5, 10, 20])
    t_x = np.array([0, 5, 10, 20, 30, 35.0])
    big_t = np.full(6, 38.86)
    t = 39.0
    # the paper's form, term by term
    z = t / (p.alpha + big_t + t)
    paper = ((p.a + p.b + x - 1) / (p.a - 1) * (1 - ((p.alpha + big_t) / (p.alpha + big_t + t))
             ** (p.r + x) * special.hyp2f1(p.r + x, p.b + x, p.a + p.b + x - 1, z))
             / (1 + (x > 0) * p.a / (p.b + x - 1) * ((p.alpha + big_t) / (p.alpha + t_x))
                ** (p.r + x)))
    ours = models.expected_purchases(p, t, x, t_x, big_t)
    assert np.allclose(ours, paper, rtol=1e-9)
    assert models.expected_purchases(p, 0.0, x, t_x, big_t) == pytest.approx(np.zeros(6))
    # 300 repeat days: the paper's form is 0 * inf there; the transformed one is finite, and
    # someone who bought every week until last week is expected to buy about weekly
    many = models.expected_purchases(p, 10.0, 300, 300, 301)[()]
    assert math.isfinite(many) and 8 < many < 11
    # a nearly degenerate dropout distribution (a, b large: what a fit of homogeneous buyers
    # reaches), a new buyer and a year ahead: the paper's form is NaN, ours is finite, grows
    # with the horizon, and is what the limit (everyone's dropout probability a/(a+b)) gives
    flat = models.BgNbd(r=0.76, alpha=4.19, a=350.0, b=1e5)
    flatter = models.BgNbd(r=0.76, alpha=4.19, a=3500.0, b=1e6)
    year = [models.expected_purchases(flat, t, [0, 3], [0, 1], [0.5, 1.5]) for t in (4, 13, 52)]
    assert all(np.all(np.isfinite(y)) for y in year)
    assert np.all(year[0] < year[1]) and np.all(year[1] < year[2])
    assert year[2] == pytest.approx(
        models.expected_purchases(flatter, 52, [0, 3], [0, 1], [0.5, 1.5]), rel=0.01)


def test_gamma_gamma_expected_spend_by_hand():
    gg = models.GammaGamma(p=6.0, q=4.0, gamma=15.0)
    # p (gamma + x m) / (p x + q - 1) = 6 (15 + 2 * 20) / (12 + 3) = 22
    assert models.expected_spend(gg, 2, 20.0)[()] == pytest.approx(22.0)
    # no repeat purchase: the population mean p gamma / (q - 1) = 90 / 3 = 30
    assert models.expected_spend(gg, 0, None)[()] == pytest.approx(30.0)


# ---------------------------------------------------------------------------------------------
# The published fit
# ---------------------------------------------------------------------------------------------


def _within_one_percent(found: dict) -> None:
    for key, value in PUBLISHED.items():
        assert found[key] == pytest.approx(value, rel=0.01), key


def test_crm_clv_validate_reproduces_the_published_cdnow_estimates(capsys):
    assert main(["clv", "validate", "--transactions", str(CDNOW)]) == 0
    report = json.loads(capsys.readouterr().out)
    _within_one_percent(report["estimates"])
    assert report["within_tolerance"] is True
    assert (report["customers"], report["repeat_customers"], report["orders"]) == (2357, 946, 6919)
    # the holdout, weeks 40-78: 1,882 repeat purchase days were made (counted from the file)
    assert report["holdout"]["actual"] == 1882
    chart = report["holdout"]["by_frequency"]
    assert [c["frequency"] for c in chart] == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert sum(c["people"] for c in chart) == 2357
    assert abs(report["holdout"]["relative_error"]) < 0.15


def test_the_fit_sees_each_history_once_however_it_is_grouped(con):
    """A weighted fit on distinct histories is the fit on the people."""
    load_cdnow_orders(con, CDNOW)
    _run(con, SUMMARY, date(1997, 9, 30))
    s = con.execute("SELECT frequency::DOUBLE AS x, recency_weeks, age_weeks "
                    "FROM core.customer_purchase_summary").fetchnumpy()
    x, t_x, big_t = s["x"], s["recency_weeks"], s["age_weeks"]
    people = models.fit_bgnbd(x, t_x, big_t)
    row = fit_clv_models(con, _catalog().by_table()[SUMMARY],
                         FitRequest(date(1997, 9, 30), None, sample_size=10**9))
    assert people.log_likelihood == pytest.approx(row["log_likelihood"], rel=1e-9)
    assert row["holdout_by_frequency"] is None  # no holdout asked for


def test_the_cdnow_purchases_through_the_input_contract_give_the_published_fit(tmp_path):
    """Customers and orders files in the contract's minimal form, a real build, the fit job as
    of 1998-06-30 calibrated to 1997-09-30: the warehouse's own summary gives the papers' fit."""
    source = tmp_path / "cdnow"
    source.mkdir()
    with duckdb.connect() as c:
        prepare_connection(c, "UTC")
        load_cdnow_orders(c, CDNOW)
        c.execute(f"""COPY (SELECT DISTINCT 'C' || customer_id AS customer_id FROM core.orders
                           ORDER BY 1) TO '{source / "customers.csv"}' (HEADER)""")
        c.execute(f"""COPY (SELECT 'O' || row_number() OVER (ORDER BY customer_id, ordered_at)
                                   AS order_id, 'C' || customer_id AS customer_id,
                                   strftime(ordered_at, '%Y-%m-%d %H:%M:%S') AS ordered_at,
                                   total_amount
                           FROM core.orders ORDER BY 1) TO '{source / "orders.csv"}' (HEADER)""")
    project = make_project(tmp_path, source, partition_start=date(1998, 6, 28),
                           business_timezone="UTC")
    day = date(1998, 6, 30)
    result = project.build(as_of=day, first_day=day, last_day=day)
    assert result.success, result.error
    assert project.scalar("SELECT count(*) FROM staging.rejects") == 0
    fitted = fit_clv(project.settings, day, date(1997, 9, 30), instance=project.instance,
                     definitions=project.definitions())
    assert fitted.success, fitted.error
    row = project.query("SELECT r, alpha, a, b, log_likelihood, p, q, gamma, population, "
                        "repeat_customers, holdout_actual FROM meta.clv_models "
                        "WHERE calibration_end = DATE '1997-09-30'")
    assert len(row) == 1
    found = dict(zip([*PUBLISHED, "population", "repeat", "holdout"], row[0], strict=True))
    _within_one_percent(found)
    assert (found["population"], found["repeat"], found["holdout"]) == (2357, 946, 1882)
    # the build itself fitted (calibrated to its as-of day minus 182 days) and scored everyone
    scored = project.query("SELECT count(*), min(p_alive) >= 0, max(p_alive) <= 1, "
                           "count(DISTINCT model_version), min(as_of_date) "
                           "FROM core.customer_predictions")
    assert scored == [(2357, True, True, 1, day)]
    assert project.scalar("SELECT DISTINCT m.calibration_end FROM core.customer_predictions p "
                          "JOIN meta.clv_models m USING (model_version)") == date(1997, 12, 30)


# ---------------------------------------------------------------------------------------------
# Scoring in SQL, and which model scores
# ---------------------------------------------------------------------------------------------


def _publish(c, version: str, calibration_end: str, **params) -> None:
    values = {"r": 1.0, "alpha": 1.0, "a": 1.0, "b": 1.0, "p": 6.0, "q": 4.0, "gamma": 15.0,
              **params}
    c.execute("""INSERT INTO meta.clv_models (model_version, fitted_at, calibration_end,
                     time_unit, population, sample_size, r, alpha, a, b, log_likelihood,
                     repeat_customers, p, q, gamma, monthly_discount_rate, converged,
                     fit_seconds, libraries)
                 VALUES ($v, now(), $cal, 'week', 1, 1, $r, $alpha, $a, $b, 0, 1, $p, $q, $gamma,
                         0.01, true, 0, '{}')""",
              {"v": version, "cal": calibration_end, **values})


def test_predictions_score_with_the_latest_model_fitted_up_to_the_as_of_day(con):
    # person 1: first purchase Jan 1, last Jan 8, as of Jan 15: x = 1, t_x = 1, T = 2 weeks
    con.execute("""INSERT INTO core.orders VALUES (1, '2025-01-01 10:00+00', 'completed', 10),
                   (1, '2025-01-08 10:00+00', 'completed', 20)""")
    _run(con, SUMMARY, date(2025, 1, 15))
    _publish(con, "unit", "2025-01-10")
    _publish(con, "later", "2025-02-01", r=2.0)  # fitted on data after the as-of day
    _run(con, "core.customer_predictions", date(2025, 1, 15))
    (version, p_alive, spend, as_of), = con.execute(
        "SELECT model_version, p_alive, expected_spend, as_of_date "
        "FROM core.customer_predictions").fetchall()
    assert version == "unit"
    assert p_alive == pytest.approx(4 / 13)  # by hand above
    assert spend == pytest.approx(6 * (15 + 20) / (6 + 4 - 1))  # x = 1, m = 20
    assert as_of == date(2025, 1, 15)


def test_no_model_no_predictions(con):
    con.execute("INSERT INTO core.orders VALUES (1, '2025-01-01 10:00+00', 'completed', 10)")
    _run(con, SUMMARY, date(2025, 1, 15))
    _run(con, "core.customer_predictions", date(2025, 1, 15))
    assert con.execute("SELECT count(*) FROM core.customer_predictions").fetchone() == (0,)


def test_the_fit_is_weekly_not_nightly_and_a_build_without_history_still_succeeds(built,
                                                                                  tmp_path):
    defs = built.definitions()
    assert CLV_KEY not in defs.resolve_job_def("nightly").asset_layer.executable_asset_keys
    assert defs.resolve_job_def("fit_clv").asset_layer.executable_asset_keys == {CLV_KEY}
    schedule = defs.resolve_schedule_def("clv_weekly")
    assert schedule.cron_schedule == "0 4 * * 1" and schedule.job_name == "fit_clv"
    # the tiny fixture's 12 days hold no buyer before the calibration end (182 days earlier):
    # the build warned and went on; no model, no predictions, empty predictive segments
    assert built.scalar("SELECT count(*) FROM meta.clv_models") == 0
    assert built.scalar("SELECT count(*) FROM core.customer_predictions") == 0
    assert built.scalar("SELECT count(*) FROM segments.high_clv") == 0
    # asked for explicitly, the same fit fails and says why
    project = built.copy(tmp_path)
    result = fit_clv(project.settings, AS_OF, instance=project.instance,
                     definitions=project.definitions())
    assert not result.success
    assert "no completed order before the end of 2024-09-11" in result.error
