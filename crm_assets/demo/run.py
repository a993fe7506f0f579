"""One generation run: its parameters, its DuckDB connection, and how its tables become CSV files.

The builders (:mod:`~crm_assets.demo.persons`, :mod:`~crm_assets.demo.records`,
:mod:`~crm_assets.demo.activity`, :mod:`~crm_assets.demo.orders`,
:mod:`~crm_assets.demo.interactions`, :mod:`~crm_assets.demo.sessions`) are functions of a
:class:`Run`: they create intermediate tables in its in-memory DuckDB and COPY them out.
"""

from __future__ import annotations

import copy
import math
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from crm_assets.demo.keyed_random import KeyedRandom
from crm_assets.demo.reference import STORE_TEMPLATES
from crm_assets.demo.sql_literals import lst, path_literal
from crm_assets.ingest.contracts import SOURCES


def n_stores_for(customers: int) -> int:
    """Number of stores: 15 at the 3000-customer demo, +2 per tenfold, within 10..25."""
    return max(10, min(len(STORE_TEMPLATES), round(15 + 2 * math.log10(customers / 3000))))


def _epoch_seconds(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


class Run:
    """The parameters every builder shares, and the COPY of a table to its CSV file.

    Keys are assigned without sorting the big tables (a sort of ~10M wide rows costs seconds on two
    cores): order and session numbers are a per-person running offset plus the row's index within
    the person, message numbers the row's place in a table filled by one order-preserving query
    from the person-ordered ``activity``. The rows therefore come out in key order already (see
    ``SORT_BIG_TABLES``).

    Timestamps are whole seconds on a naive local clock (``t0`` is ``start`` 00:00);
    interactions and sessions append their city's UTC offset when written.
    """

    #: Also ORDER BY key in the COPY of the four big files. They are generated in key order, so
    #: the sort changes no byte (the tests check it, and that the thread count changes none)
    #: while costing ~15% of the run at 1M customers; the small files are always sorted.
    SORT_BIG_TABLES = False
    #: Render each line in SQL and COPY it as one unquoted column: DuckDB's CSV writer then costs
    #: a third less. Only for files whose values (numbers, timestamps, words and names from the
    #: reference lists) hold no comma, quote or newline; a value that needs quotes gets them from
    #: ``quoted``. The tests check that both ways write the same bytes.
    PRERENDER_LINES = True

    def __init__(
        self, con: duckdb.DuckDBPyConnection, n: int, seed: int, start: date, end: date
    ) -> None:
        self.con = con
        self.n = n  # persons
        self.r = KeyedRandom(seed)
        self.start = start
        self.end = end
        self.span = (end - start).days + 1  # days, end inclusive
        self.t0 = _epoch_seconds(start)  # seconds of start 00:00 (naive local clock)
        self.t_end = self.t0 + self.span * 86400 - 1  # end 23:59:59
        self.n_stores = n_stores_for(n)
        self.stores = STORE_TEMPLATES[: self.n_stores]
        self.store_ids = lst([f"S{i + 1:03d}" for i in range(self.n_stores)])

    def on(self, con: duckdb.DuckDBPyConnection) -> Run:
        """The same run on another connection (a cursor of the same database)."""
        other = copy.copy(self)
        other.con = con
        return other

    def key(self, key: str) -> str | None:
        """The ORDER BY of a big file: None (rows are generated in key order), see
        ``SORT_BIG_TABLES``."""
        return key if self.SORT_BIG_TABLES else None

    def quoted(self, expr: str) -> str:
        """A value with a comma: quoted by hand when the line is pre-rendered."""
        return f"concat('\"', {expr}, '\"')" if self.PRERENDER_LINES else expr

    def copy_to_csv(
        self,
        table: str,
        exprs: dict[str, str],
        source: str,
        order: str | None,
        path: Path,
        count: bool = True,
        prerender: bool = False,
    ) -> int:
        """COPY ``source`` to ``path`` with exactly the contract's columns, in its order.

        ``order`` is the key to sort by; None for a source whose rows are generated in key order
        (one order-preserving pipeline from a table stored in person order), where a sort would
        only cost time: the tests check that the keys of such files increase. ``prerender``: see
        ``PRERENDER_LINES``. Returns the rows of ``source``, or -1 if ``count`` is false.
        """
        cols = SOURCES[table].column_names
        if list(exprs) != cols:
            raise AssertionError(f"{table}: generator columns {list(exprs)} != contract {cols}")
        options = "HEADER, DELIMITER ','"
        if prerender and self.PRERENDER_LINES:
            line = ", ',', ".join(f"{exprs[c]}" for c in cols)
            select = f'concat({line}) AS "{",".join(cols)}"'
            options += ", QUOTE '', ESCAPE ''"
        else:
            select = ", ".join(f'{exprs[c]} AS "{c}"' for c in cols)
        self.con.execute(
            f"COPY (SELECT {select} FROM {source}{f' ORDER BY {order}' if order else ''}) "
            f"TO {path_literal(path)} ({options})"
        )
        if not count:
            return -1
        return int(self.con.execute(f"SELECT count(*) FROM {source}").fetchone()[0])

    def copy_values_to_csv(self, table: str, rows: list[str], order: str, path: Path) -> int:
        """COPY literal ``rows`` (SQL tuples in the contract's column order) sorted by ``order``;
        returns their number."""
        cols = ", ".join(SOURCES[table].column_names)
        self.con.execute(
            f"COPY (SELECT * FROM (VALUES {', '.join(rows)}) t({cols}) ORDER BY {order}) "
            f"TO {path_literal(path)} (HEADER, DELIMITER ',')"
        )
        return len(rows)
