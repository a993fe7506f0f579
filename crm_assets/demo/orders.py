"""Orders and their lines, with their dirt and its truth (``_truth/dirt.csv``).

An order's lines are drawn as codes (``product | quantity << 5``; product 31 is the unknown P999,
quantity 0 is dirt) packed 7 bits each into one column ``lines``, so the 1-4 lines of an order cost
no rows until ``order_items.csv`` is written. The ``orders`` table is stored with few columns
(storing and scanning ~8M rows costs per column); the view ``orders_v`` unpacks them.
"""

from __future__ import annotations

from pathlib import Path

from crm_assets.demo.activity import field, record_of
from crm_assets.demo.keyed_random import KeyedRandom, weighted
from crm_assets.demo.records import customer_id
from crm_assets.demo.reference import (
    CHANNELS,
    ORDER_DIRT,
    PRODUCTS,
    STATUSES,
    UNKNOWN_PRICE,
    UNKNOWN_STATUSES,
)
from crm_assets.demo.run import Run
from crm_assets.demo.sql_literals import lst, path_literal


def order_lookup_lists() -> dict[str, list[object]]:
    """The lookup lists orders are drawn with (see ``generator.build_lut``): the hour of an order
    by a draw in [0, 50), the number of lines by a draw in [0, 20), and the line codes."""
    return {
        "order_hour": (
            [7] * 3
            + [8] * 6
            + [9] * 6
            + [10] * 4
            + [11] * 3
            + [12] * 4
            + [13] * 4
            + [14] * 3
            + [15] * 2
            + [16] * 2
            + [17] * 3
            + [18] * 3
            + [19] * 3
            + [20] * 2
            + [21]
            + [22]
        ),  # fmt: skip
        "items_per_order": [x + 1 for x in weighted([9, 6, 3, 2], 20)],
        **_line_tables(),
    }


def _line_tables() -> dict[str, list[object]]:
    """Lookup lists of order lines: 12 random bits -> line code (product | quantity << 5;
    product 31 is the unknown P999, quantity 0 is dirt), and per code its amount and dirt."""
    wp = [x[4] for x in PRODUCTS]
    wq = [16, 3, 1]
    codes = [31 | (1 << 5)] * 21  # unknown_product, ~0.5%
    codes += weighted(wp, 21)  # zero_quantity, ~0.5%
    joint = [a * b for a in wp for b in wq]
    codes += [(i // 3) | ((i % 3 + 1) << 5) for i in weighted(joint, 4096 - len(codes))]
    prices = [x[2] for x in PRODUCTS] + [0] * (31 - len(PRODUCTS)) + [UNKNOWN_PRICE]
    return {
        "line_code": codes,
        "line_amount": [prices[c & 31] * (c >> 5) for c in range(128)],
        "line_dirty": [int((c & 31) == 31 or (c >> 5) == 0) for c in range(128)],
        "line_price": [f"{prices[c & 31] / 100:.2f}" for c in range(128)],
        "line_product": ["P999" if c & 31 == 31 else f"P{(c & 31) + 1:03d}" for c in range(128)],
    }


def build_orders(run: Run) -> None:
    """Orders of every person, numbered person by person (no sort of the big table)."""
    run.con.execute(f"""
        CREATE TABLE orders AS
        WITH {_expanded_ctes(run.r)},
            {_draws_cte(run.r)},
            {_channel_and_lines_cte()},
            {_ordered_at_cte(run)},
            {_packed_cte(run)}
        -- few columns: storing and scanning 8M rows costs per column
        SELECT order_no, 'O' || (10000000 + order_no)::VARCHAR AS order_id, ordered_ts, lines,
            rec_no, total_cents,
            channel | (status << 2) | (odirt << 4) | (n_items << 7) | (store << 10)
                | (dirty_lines << 15) AS info
        FROM packed
        """)
    run.con.execute("""
        CREATE VIEW orders_v AS
        SELECT order_no, order_id, ordered_ts, lines, rec_no, total_cents,
            info & 3 AS channel, (info >> 2) & 3 AS status, (info >> 4) & 7 AS odirt,
            (info >> 7) & 7 AS n_items, (info >> 10) & 31 AS store, (info >> 15) & 15 AS dirty_lines
        FROM orders
        """)


def _expanded_ctes(r: KeyedRandom) -> str:
    """``o``: one row per order, numbered from the person's ``order_base``; ``hashed``: its random
    streams, keyed by the order number (``hl``: the lines')."""
    return f"""o AS (
            SELECT order_base + k + 1 AS order_no, k, pk, r01, r23, regm
            FROM (SELECT order_base, pk, r01, r23, regm, unnest(range(n_orders)) AS k
                  FROM activity WHERE n_orders > 0)
        ), hashed AS (
            SELECT *,
                {r.stream("hk", "o1", True)} AS ho1, {r.stream("hk", "o2", True)} AS ho2,
                {r.stream("hk", "o3", True)} AS ho3, {r.stream("hk", "l1", True)} AS hl,
                {field("pk", "reg_day")} AS reg_day
            FROM (SELECT *, hash(order_no::BIGINT) AS hk FROM o)
        )"""


def _draws_cte(r: KeyedRandom) -> str:
    """``t``: the order's day and the draws of its channel, time, dirt, status, size and record.

    The k-th of a person's n orders falls in the k-th n-th of its active period (after the day
    of registration), so a person's orders are in time order, as their numbers are.
    """
    u, pick = r.u, r.pick
    return f"""t AS (
            SELECT order_no, pk, r01, r23, regm, ho2, ho3, hl,
                -- stratified over the active period: a person's orders are in time order
                reg_day + 1 + floor((k + {u("ho1", 0)}) * ({field("pk", "active_end")} - reg_day)
                                    / {field("pk", "n_orders")})::BIGINT AS day,
                {u("ho1", 1)} AS u_ch,
                {u("ho1", 2)} < 0.15 AS night,
                {u("ho1", 3)} AS u_dirt,
                {u("ho2", 0)} AS u_st,
                lut.items_per_order[{pick("ho2", 1, 20)} + 1] AS n_items,
                {pick("ho2", 2, f"{field('pk', 'n_rec1')} + 1")} AS rec
            FROM hashed CROSS JOIN lut
        )"""


def _channel_and_lines_cte() -> str:
    """``c``: the channel (0 in store, 1 app, 2 web, 3 delivery; app users order in the app more
    often) and the line codes, 7 bits each, 0 for the lines an order does not have."""

    def line(i: int) -> str:
        code = f"lut.line_code[((hl >> {12 * i}) & 4095)::BIGINT + 1]"
        return f"(CASE WHEN n_items > {i} THEN {code} ELSE 0 END)"

    return f"""c AS (
            SELECT t.*,
                CASE WHEN {field("pk", "app_user")} = 1 THEN
                    CASE WHEN u_ch < 0.45 THEN 0 WHEN u_ch < 0.80 THEN 1
                         WHEN u_ch < 0.85 THEN 2 ELSE 3 END
                ELSE CASE WHEN u_ch < 0.75 THEN 0 WHEN u_ch < 0.80 THEN 1
                          WHEN u_ch < 0.90 THEN 2 ELSE 3 END
                END AS channel,
                {line(0)} | ({line(1)} << 7) | ({line(2)} << 14) | ({line(3)} << 21) AS lines
            FROM t CROSS JOIN lut
        )"""


def _ordered_at_cte(run: Run) -> str:
    """``ts``: the order's instant, in opening hours (7:00-22:59) or, for 15% of deliveries, at
    night."""
    pick = run.r.pick
    return f"""ts AS (
            SELECT c.*,
                {run.t0} + day * 86400 + CASE
                    -- night delivery: 00:10-00:59
                    WHEN channel = 3 AND night THEN 600 + {pick("ho3", 2, 3000)}
                    ELSE lut.order_hour[{pick("ho3", 0, 50)} + 1] * 3600 + {pick("ho3", 1, 3600)}
                END AS ordered_ts
            FROM c CROSS JOIN lut
        )"""


def _per_line(table: str, i: int) -> str:
    """The value in lookup list ``table`` of the i-th line code of ``lines``."""
    return f"lut.{table}[((lines >> {7 * i}) & 127) + 1]"


def _packed_cte(run: Run) -> str:
    """``packed``: the store (the home store, or for 12% of in-store and app orders any store),
    the order's dirt (an ``ORDER_DIRT`` code, 0 none), status, record, total and dirty lines."""
    u, pick = run.r.u, run.r.pick
    return f"""packed AS (
            SELECT order_no, ordered_ts, channel, n_items, lines,
                CASE WHEN channel IN (0, 1) AND {u("ho2", 3)} < 0.12
                     THEN {pick("ho3", 3, run.n_stores)} ELSE {field("pk", "home_store")} END
                     AS store,
                CASE WHEN u_dirt < 0.008 THEN 1 WHEN u_dirt < 0.018 THEN 2
                     WHEN u_dirt < 0.023 THEN 3 WHEN u_dirt < 0.030 THEN 4 ELSE 0 END AS odirt,
                CASE WHEN u_st < 0.93 THEN 0 WHEN u_st < 0.97 THEN 1 ELSE 2 END AS status,
                {record_of(run, "rec", "ordered_ts")} AS rec_no,
                {" + ".join(_per_line("line_amount", i) for i in range(4))} AS total_cents,
                ({" | ".join(f"({_per_line('line_dirty', i)} << {i})" for i in range(4))})
                    & ((1 << n_items) - 1) AS dirty_lines
            FROM ts CROSS JOIN lut
        )"""


def write_orders(run: Run, path: Path) -> int:
    """The orders file, each order's dirt rendered: a negative or comma-decimal total, a customer
    id no record has, a status outside the contract's."""
    amount = "(total_cents / 100)::DECIMAL(12, 2)::VARCHAR"
    comma_amount = run.quoted(f"replace({amount}, '.', ',')")  # "123,50"
    aux = run.r.stream("order_no", "o4")
    exprs = {
        "order_id": "order_id",
        # an id no record has: record ids have no letter after the digits
        "customer_id": f"CASE WHEN odirt = 3 THEN 'C9' || lpad(({aux} % 1000000)::VARCHAR, 6, "
        f"'0') || 'x' ELSE {customer_id('rec_no')} END",
        "store_id": f"{run.store_ids}[store + 1]",
        "ordered_at": "make_timestamp(ordered_ts * 1000000)",
        "channel": f"{lst(CHANNELS)}[channel + 1]",
        "status": f"CASE WHEN odirt = 4 THEN {lst(UNKNOWN_STATUSES)}"
        f"[({aux} % {len(UNKNOWN_STATUSES)})::BIGINT + 1] "
        f"ELSE {lst(STATUSES)}[status + 1] END",
        "total_amount": f"CASE WHEN odirt = 1 THEN '-' || {amount} "
        f"WHEN odirt = 2 THEN {comma_amount} ELSE {amount} END",
    }
    return run.copy_to_csv("orders", exprs, "orders_v", run.key("order_no"), path, prerender=True)


def write_order_items(run: Run, path: Path) -> int:
    """The order lines file, in (order, line) order; returns the number of lines."""
    run.con.execute("""
        CREATE TEMP VIEW items AS
        SELECT order_no, order_id, l, (lines >> (7 * l)::INTEGER) & 127 AS code
        FROM (SELECT order_no, order_id, lines, unnest(range(n_items)) AS l FROM orders_v)
        """)
    exprs = {
        "order_id": "order_id",
        "line_number": "l + 1",
        "product_id": "lut.line_product[code + 1]",
        "quantity": "code >> 5",
        "unit_price": "lut.line_price[code + 1]",
    }
    run.copy_to_csv(
        "order_items",
        exprs,
        "items CROSS JOIN lut",
        run.key("order_no, l"),
        path,
        count=False,
        prerender=True,
    )
    return int(run.con.execute("SELECT sum(n_items) FROM orders_v").fetchone()[0] or 0)


def write_truth_dirt(run: Run, path: Path) -> int:
    """``_truth/dirt.csv``: every dirty order (``order_id``) and order line
    (``order_id:line_number``: ``unknown_product`` or ``zero_quantity``), by table, order and
    line."""
    run.con.execute(f"""
        CREATE TABLE dirt AS
        SELECT 'orders' AS table_name, order_id AS record_key,
               {lst(ORDER_DIRT)}[odirt] AS dirt, order_no, 0 AS l
        FROM orders_v WHERE odirt > 0
        UNION ALL
        SELECT 'order_items', order_id || ':' || (l + 1)::VARCHAR,
               CASE WHEN (lines >> (7 * l)::INTEGER) & 31 = 31 THEN 'unknown_product'
                    ELSE 'zero_quantity' END,
               order_no, l
        FROM (SELECT order_no, order_id, lines, dirty_lines, unnest(range(n_items)) AS l
              FROM orders_v WHERE dirty_lines > 0)
        WHERE (dirty_lines >> l::INTEGER) & 1 = 1
        """)
    run.con.execute(f"""
        COPY (SELECT table_name, record_key, dirt FROM dirt ORDER BY table_name, order_no, l)
        TO {path_literal(path)} (HEADER, DELIMITER ',')
        """)
    return int(run.con.execute("SELECT count(*) FROM dirt").fetchone()[0])
