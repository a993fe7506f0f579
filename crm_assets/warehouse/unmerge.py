"""Unmerge: a wrong identity merge split by a person, and the decision kept.

``crm unmerge --customer ID --records SRC1,SRC2`` moves the named source records of person ``ID``
to a new person: a new ``customer_id``, above every id ever handed out (merged away, erased or
split off ones included), so no id ever changes its meaning. In one transaction:

* ``core.customer_identity``: the named records take the new id (``match_rule`` ``unmerged``);
  the records kept are stamped with the same batch, so the next run recomputes both persons;
* ``meta.identity_splits``: the two sides, which identity resolution never joins again, neither
  directly nor through a chain of later records (:mod:`crm_assets.identity.resolve`);
* ``meta.customer_unmerges``: the audit row; ``meta.customer_merges`` keeps the merges as they
  were (an id merged away stays redirected: ids are never reused).

What depends on identity follows in the next run, by the usual incremental rules: the golden
records of both persons, their orders, lines, interactions and sessions re-keyed, the event days
holding their rows rebuilt, features, predictions and segments as of the day. ``crm unmerge``
launches that run at once. Segment membership history recorded before the split stays with the
old id (``crm segment-history NAME --from D`` rebuilds it).
"""

from __future__ import annotations

import uuid

import duckdb

from crm_assets.warehouse.connection import transaction
from crm_assets.warehouse.state import FRAMEWORK_VERSION, next_batch, set_built_version
from crm_assets.warehouse.tables import (
    CUSTOMER_IDENTITY,
    CUSTOMER_UNMERGES,
    HIGHEST_ID_SQL,
    IDENTITY_SPLITS,
)


class UnmergeError(ValueError):
    pass


def unmerge(con: duckdb.DuckDBPyConnection, customer_id: int, records: list[str],
            reason: str | None = None, run_id: str | None = None) -> tuple[int, int]:
    """Split ``records`` off person ``customer_id`` (a merged-away id resolves); the person's id
    and the new one.

    Raises:
        UnmergeError: unknown person, a record that is not theirs, or all of their records.
    """
    records = sorted({r.strip() for r in records if r.strip()})
    if not records:
        raise UnmergeError("name the source records to split off (--records SRC1,SRC2)")
    row = con.execute("SELECT customer_id FROM core.customer_ids WHERE any_customer_id = ?",
                      [customer_id]).fetchone()
    if row is None:
        raise UnmergeError(f"unknown customer_id {customer_id}")
    person = int(row[0])
    theirs = {r[0] for r in con.execute(
        "SELECT source_customer_id FROM core.customer_identity WHERE customer_id = ?",
        [person]).fetchall()}
    foreign = [r for r in records if r not in theirs]
    if foreign:
        raise UnmergeError(f"not records of person {person}: {', '.join(foreign)} (theirs: "
                           f"{', '.join(sorted(theirs))})")
    kept = sorted(theirs - set(records))
    if not kept:
        raise UnmergeError(f"{', '.join(records)} are all of person {person}'s records: nothing "
                           "would be left to split from")
    split_id = str(uuid.uuid4())
    batch = next_batch(con)
    with transaction(con):
        new_id = 1 + con.execute(HIGHEST_ID_SQL).fetchone()[0]
        con.execute("UPDATE core.customer_identity SET customer_id = ?, match_rule = 'unmerged', "
                    "_batch = ? WHERE list_contains(?, source_customer_id)",
                    [new_id, batch, records])
        con.execute("UPDATE core.customer_identity SET _batch = ? "
                    "WHERE list_contains(?, source_customer_id)", [batch, kept])
        con.execute(f"INSERT INTO {IDENTITY_SPLITS.name} SELECT ?, unnest(?), 'split' "
                    f"UNION ALL SELECT ?, unnest(?), 'kept'", [split_id, records, split_id, kept])
        con.execute(f"INSERT INTO {CUSTOMER_UNMERGES.name} VALUES (?, ?, ?, ?, ?, now(), ?, ?)",
                    [split_id, person, new_id, len(records), reason, run_id, batch])
        set_built_version(con, CUSTOMER_IDENTITY.name, FRAMEWORK_VERSION, batch,
                          ["source_customer_id"])
    return person, int(new_id)
