"""`core.customer_features` computed from hand-written facts: favourites and RFM, by hand."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from crm_assets.catalog import load_catalog
from crm_assets.functions.registry import set_as_of_date
from crm_assets.project import external_tables
from crm_assets.warehouse.models import materialize_model

PROJECT = Path(__file__).resolve().parents[1]


def test_favourites_break_ties_by_name_and_equal_spend_shares_a_score(prepared_warehouse):
    con = prepared_warehouse
    con.execute("""CREATE TABLE core.customers AS SELECT customer_id, NULL::VARCHAR AS gender,
        NULL::VARCHAR AS city, NULL::DATE AS birth_date,
        TIMESTAMPTZ '2025-01-01 00:00:00+00' AS registered_at, NULL::VARCHAR AS email,
        NULL::VARCHAR AS phone, false AS email_opt_in, false AS sms_opt_in, false AS push_opt_in,
        TIMESTAMPTZ '2025-01-01 00:00:00+00' AS updated_at FROM range(1, 6) t(customer_id)""")
    con.execute("""CREATE TABLE core.orders AS SELECT order_id, customer_id,
        CAST(ordered_at AS TIMESTAMPTZ) AS ordered_at, channel, status,
        CAST(total_amount AS DECIMAL(18, 2)) AS total_amount FROM (VALUES
        ('O1', 1, '2026-06-01 10:00:00+00', 'web', 'completed', 100),
        ('O2', 1, '2026-06-02 10:00:00+00', 'app', 'completed', 50),
        ('O3', 1, '2026-06-03 10:00:00+00', 'app', 'completed', 30),
        ('O4', 1, '2026-06-04 10:00:00+00', 'web', 'completed', 20),
        ('O5', 2, '2026-05-01 10:00:00+00', 'in_store', 'completed', 200),
        ('O6', 3, '2026-04-01 10:00:00+00', NULL, 'completed', 10),
        ('O7', 3, '2026-04-02 10:00:00+00', 'web', 'cancelled', 500),
        ('O8', 5, '2026-06-10 10:00:00+00', 'app', 'completed', 10))
        t(order_id, customer_id, ordered_at, channel, status, total_amount)""")
    con.execute("""CREATE TABLE core.order_items AS SELECT o.customer_id, o.ordered_at, o.status,
        i.category, CAST(i.quantity AS INTEGER) AS quantity
        FROM (VALUES ('O1', 'croissant', 3), ('O2', 'coffee', 2), ('O3', 'coffee', 1),
                     ('O5', NULL, 5), ('O5', 'bread', 5),
                     ('O6', NULL, 4), ('O6', 'cake', 1), ('O6', 'tea', NULL),
                     ('O7', 'cake', 9), ('O8', 'tea', NULL), ('O8', 'jam', NULL))
                     i(order_id, category, quantity)
        JOIN core.orders o USING (order_id)""")
    con.execute("CREATE TABLE core.interactions (customer_id BIGINT, channel VARCHAR, "
                "interaction_type VARCHAR, occurred_at TIMESTAMPTZ)")
    set_as_of_date(con, date(2026, 6, 30))
    d = load_catalog(PROJECT / "sql", external_tables()).by_table()["core.customer_features"]
    materialize_model(con, d, run_id="test")
    # 1: croissant 3 and coffee 2 + 1, the tie to coffee; web 2 and app 2 orders, the tie to app.
    # 2: 5 lines of an unknown category and 5 of bread: bread (a null name comes last).
    # 3: an unknown category leads with 4 (cake 1, tea of no quantity), so none; its one completed
    #    order has no channel (the cancelled web order does not count).
    # 5: two categories of no quantity at all: the first by name, jam.
    # Spend of the 365 days among the 4 buyers: 200, 200, 10, 10. Percent rank 2/3 for both 200s
    # (two buyers below), 0 for the 10s: scores 1 + floor(5 * 2/3) = 4 and 1; no orders, 0.
    assert con.execute(
        "SELECT customer_id, favourite_category, preferred_channel, croissants_bought, "
        "rfm_monetary FROM core.customer_features ORDER BY customer_id").fetchall() == [
        (1, "coffee", "app", 3, 4), (2, "bread", "in_store", 0, 4), (3, None, None, 0, 1),
        (4, None, None, 0, 0), (5, "jam", "app", 0, 1)]
