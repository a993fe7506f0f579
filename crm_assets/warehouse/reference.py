"""Reference data the project ships with its SQL (dbt's seeds): the RFM map.

``seeds/reference/rfm_segment_map.csv`` says which recency, frequency and monetary scores (1-5
each, ``core.customer_features``) make which named segment (Champions, At Risk, ...): one or more
ranges per name. It is checked whole before it replaces ``core.rfm_segment_map``: every one of the
125 (R, F, M) combinations must fall in exactly one named segment, so no buyer is left unnamed and
none is named twice. A map that fails is refused with the line and the combinations at fault, and
the table keeps the map it had.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

from crm_assets.quoting import literal
from crm_assets.warehouse.connection import transaction
from crm_assets.warehouse.state import built_version, next_batch, set_built_version
from crm_assets.warehouse.tables import RFM_SEGMENT_MAP

SCORES = ("recency", "frequency", "monetary")
_COLUMNS = {c.name: c.type for c in RFM_SEGMENT_MAP.columns}


class ReferenceDataError(ValueError):
    """A reference file that cannot be used as it is; the message names the file and line."""


def load_rfm_map(con: duckdb.DuckDBPyConnection, path: Path) -> tuple[int, bool]:
    """Check ``path`` and make it ``core.rfm_segment_map``; (ranges, whether it changed).

    Raises:
        ReferenceDataError: unreadable, a score out of 1-5 or a range upside down, a name with two
            labels, or a combination in no segment or in two.
    """
    try:
        text = path.read_bytes()
    except OSError as err:
        raise ReferenceDataError(f"{path}: cannot read the RFM map: {err}") from err
    version = hashlib.sha256(text).hexdigest()[:16]
    read = (f"read_csv({literal(str(path))}, header = true, auto_detect = false, "
            f"columns = {{{', '.join(f'{literal(n)}: {literal(t)}' for n, t in _COLUMNS.items())}"
            "}, strict_mode = true)")
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _rfm_map AS SELECT *, "
                    f"row_number() OVER () + 1 AS _line FROM {read}")
    except duckdb.Error as err:
        first_line = str(err).splitlines()[0]
        raise ReferenceDataError(f"{path}: not a valid RFM map: {first_line}") from err
    try:
        _check(con, path)
        ranges = con.execute("SELECT count(*) FROM _rfm_map").fetchone()[0]
        if built_version(con, RFM_SEGMENT_MAP.name) == version:
            return ranges, False
        batch = next_batch(con)
        with transaction(con):
            con.execute(f"DELETE FROM {RFM_SEGMENT_MAP.name}")
            con.execute(f"INSERT INTO {RFM_SEGMENT_MAP.name} SELECT {', '.join(_COLUMNS)} "
                        "FROM _rfm_map ORDER BY _line")
            set_built_version(con, RFM_SEGMENT_MAP.name, version, batch, [])
        return ranges, True
    finally:
        con.execute("DROP TABLE IF EXISTS _rfm_map")


def _check(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    bounds = " OR ".join(f"{s}_min NOT BETWEEN 1 AND 5 OR {s}_max NOT BETWEEN 1 AND 5 "
                         f"OR {s}_min > {s}_max" for s in SCORES)
    bad = con.execute(f"SELECT _line, rfm_segment FROM _rfm_map WHERE rfm_segment IS NULL "
                      f"OR label IS NULL OR {bounds} ORDER BY _line LIMIT 5").fetchall()
    if bad:
        raise ReferenceDataError("; ".join(
            f"{path}:{line}: segment {name!r}: needs a name, a label and each score range "
            "within 1-5 with min <= max" for line, name in bad))
    two = con.execute("SELECT rfm_segment, min(_line) FROM _rfm_map GROUP BY 1 "
                      "HAVING count(DISTINCT label) > 1 ORDER BY 2").fetchall()
    if two:
        raise ReferenceDataError("; ".join(
            f"{path}:{line}: segment {name!r} has different labels on different lines"
            for name, line in two))
    wrong = con.execute(
        """WITH combos AS (
               SELECT r, f, m FROM range(1, 6) r(r), range(1, 6) f(f), range(1, 6) m(m))
           SELECT c.r, c.f, c.m, list(x.rfm_segment ORDER BY x.rfm_segment)
                      FILTER (WHERE x.rfm_segment IS NOT NULL) AS names
           FROM combos c LEFT JOIN _rfm_map x
             ON c.r BETWEEN x.recency_min AND x.recency_max
            AND c.f BETWEEN x.frequency_min AND x.frequency_max
            AND c.m BETWEEN x.monetary_min AND x.monetary_max
           GROUP BY ALL HAVING count(x.rfm_segment) <> 1 ORDER BY 1, 2, 3""").fetchall()
    if wrong:
        shown = [f"R{r} F{f} M{m} in " + (" and ".join(names) if names else "no segment")
                 for r, f, m, names in wrong[:8]]
        more = f" (and {len(wrong) - 8} more)" if len(wrong) > 8 else ""
        raise ReferenceDataError(f"{path}: every (recency, frequency, monetary) combination must "
                                 f"be in exactly one segment: {'; '.join(shown)}{more}")
