"""Identity resolution: which source customer records are one person, under a stable
``customer_id``.

The CRM holds one person many times (re-registrations, a second card, typing errors). Everything
downstream of ``core`` keys on ``customer_id``, and segment histories, event rows and triggers that
were already exported carry it, so an id must never silently move from one person to another.

Contract
--------
:func:`resolve_identity` reads ``staging.customers`` and updates, in place and in one transaction:

* ``core.customer_identity`` -- every source record ever seen -> its person's ``customer_id``.
  Ids are integers handed out in order of first appearance (a new person's earliest record by
  ``registered_at``, then ``source_customer_id``). An id, once given, only changes by a merge.
* ``meta.customer_merges`` -- one row per merge: when new evidence shows that two existing ids are
  one person, the older (smaller) id survives, the records of the younger one are re-pointed to it
  and the redirect is written here with its evidence, so anything that kept the old id can resolve
  it through ``core.customer_id_redirects`` or :func:`resolve_customer_id` (chains included).

A run never undoes a merge: a component that once shared an id stays together even if a later run
would no longer link it (e.g. a contact that became shared by many names). A wrong merge is a
person's decision, ``crm unmerge`` (:mod:`crm_assets.warehouse.unmerge`): the records it names take
a new id, and resolution never joins the two sides again (:func:`_veto_birth_date_conflicts`).

Matching rule
-------------
A *candidate pair* is two records sharing ``email_key`` or ``phone``. A contact value carried by
more than ``MAX_NAMES_PER_CONTACT`` distinct ``name_key`` values or by more than
``MAX_RECORDS_PER_CONTACT`` records (:mod:`crm_assets.identity.statements`) is a shared contact
(company mailbox, reception phone, a placeholder staging missed) and is no evidence at all. A
shared contact only *proposes* a pair; it is *confirmed* by the other fields, because a household
phone or a family mailbox is shared by different people while name, birth date and gender belong
to one:

* never when both birth dates are known and differ (two people, whatever else they share);
* ``email+name`` / ``phone+name``: equal ``name_key`` with at least two tokens (``name_key`` already
  absorbs case, ё/е and the first/last order; a lone surname is a family, not a person);
* ``email+name_typo`` / ``phone+name_typo``: both names have two or more tokens and are one edit
  apart (Damerau-Levenshtein <= 1 on the whole key, in either token order, so a typo that changes
  the sort order still matches), and genders do not conflict. Edit distance is computed on a
  one-byte-per-letter transliteration, because DuckDB counts edits in UTF-8 bytes (a Cyrillic typo
  would cost 2-4);
* ``email+birth_date`` / ``phone+birth_date``: the same known birth date, genders do not conflict,
  and the names share a token (the surname, in practice) or one record has no name.

So a household phone (same surname, different first names) does not link, nor a company email
(different names), nor namesakes (same name and city but no shared contact: no candidate pair).
Duplicates with swapped name order, ё/е, one typo, email case or gmail dots (``email_key``), phone
formats (E.164), or a missing email or phone (linked through the other contact) do.

Persons are the connected components of confirmed edges plus "already share an id" edges, found in
DuckDB by label propagation (each record takes the smallest label among its neighbours, repeated
until nothing changes; the number of rounds is bounded by the graph's diameter, not by its size).
A person never holds two different known birth dates: the rare component that would (a chain
through a record without one) is built again strongest evidence first, refusing the union that
would join them (:func:`_veto_birth_date_conflicts`).
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from crm_assets.identity import statements as sql
from crm_assets.warehouse.connection import transaction
from crm_assets.warehouse.state import (
    FRAMEWORK_VERSION,
    latest_batch,
    next_batch,
    set_built_version,
    set_watermark,
    watermark,
)

IDENTITY = "core.customer_identity"
STAGING = "staging.customers"


def resolve_identity(
    con: duckdb.DuckDBPyConnection, *, now: datetime | None = None, full: bool = False
) -> dict[str, int]:
    """Resolve the records of ``staging.customers`` written since the last run to stable ids.

    A record written since (new, or a new version of it) is resolved against the existing
    persons, together with its *neighbourhood*: every record holding a contact it holds or held
    (``meta.identity_evidence`` keeps what each record held), and the records sharing a contact
    with those. Outside it nothing can change: a pair of records not in it was confirmed, or not,
    the same way before, and confirmed pairs already share an id. So the cost follows the new
    records and their neighbours, and the ids, merges and match rules are those a resolution of
    every record gives (``full``, the first run, and a full refresh do that).

    Runs in one transaction: readers see the identity map either before or after the run, never a
    half-merged state, and a failure leaves both tables untouched. Re-running on unchanged input
    changes nothing and writes no merge rows. Rows written carry the run's ``_batch``.

    Args:
        con: Read-write connection to the warehouse, not inside an open transaction.
        now: Timestamp written as ``first_seen_at`` of new records and ``merged_at`` of merges;
            defaults to the current time (UTC). Pass it to make a run reproducible.
        full: resolve every record, not only those written since the last run.

    Returns:
        ``records`` (rows in ``staging.customers``), ``new_records`` (source ids mapped for the
        first time), ``persons`` (distinct ids in ``core.customer_identity`` after the run),
        ``new_ids`` (fresh ids handed out), ``merges`` (merge rows written), ``iterations``
        (label-propagation rounds), ``resolved`` (records in the neighbourhood looked at).
    """
    stamp = now if now is not None else datetime.now(UTC)
    since = watermark(con, IDENTITY, STAGING)
    seen = latest_batch(con, STAGING)
    full = full or since == 0
    batch = next_batch(con)
    with transaction(con):
        scope = sql.FULL_SCOPE_SQL if full else sql.SCOPE_SQL.replace("$since", str(int(since)))
        for statement in scope.split(";"):
            if statement.strip():
                con.execute(statement)
        (resolved,) = con.execute("select count(*) from _identity_hood").fetchone()
        iterations = _components(con)
        stats = _assign(con, stamp, batch)
        _keep_evidence(con, full)
        set_watermark(con, IDENTITY, STAGING, seen)
        (changed,) = con.execute("select count(*) from core.customer_identity "
                                 "where _batch = ?", [batch]).fetchone()
        set_built_version(con, IDENTITY, FRAMEWORK_VERSION, batch, ["source_customer_id"],
                          changed=full or changed > 0)
        for table in sql.TEMP_TABLES:
            con.execute(f"drop table if exists {table}")
    return {**stats, "iterations": iterations, "resolved": int(resolved)}


def _keep_evidence(con: duckdb.DuckDBPyConnection, full: bool) -> None:
    """What the records just resolved hold, for the next run to know what they held."""
    if full:
        con.execute("delete from meta.identity_evidence")
    else:
        con.execute("delete from meta.identity_evidence where source_customer_id in "
                    "(select source_customer_id from _identity_changed)")
    con.execute("insert into meta.identity_evidence select source_customer_id, name_key, "
                "email_key, phone from staging.customers semi join _identity_changed "
                "using (source_customer_id)")


def _components(con: duckdb.DuckDBPyConnection) -> int:
    """Confirmed pairs and the persons they make (``_identity_labels``); propagation rounds."""
    con.execute(sql.RECORDS_SQL)
    con.execute(sql.USABLE_SQL)
    con.execute(sql.CONFIRMED_SQL)
    con.execute(sql.SPLIT_EDGES_SQL)  # an unmerge's two sides are never linked directly
    con.execute(sql.NODES_SQL)
    con.execute(sql.EDGES_SQL)
    con.execute(
        "create or replace temp table _identity_labels as "
        "select node, node as label from _identity_nodes"
    )
    iterations = 0
    while True:
        iterations += 1
        (changed,) = con.execute(sql.PROPAGATE_SQL).fetchone()
        if not changed:
            break
        if iterations >= sql.MAX_ITERATIONS:
            raise RuntimeError(f"label propagation did not converge in {iterations} rounds")
    _veto_birth_date_conflicts(con)
    return iterations


def _conflict(tokens: set[tuple]) -> bool:
    """Whether records holding ``tokens`` cannot be one person: two known birth dates, or both
    sides of one unmerge (``crm unmerge``)."""
    births = {t for t in tokens if t[0] == "birth"}
    sides: dict[str, set[str]] = {}
    for t in tokens:
        if t[0] == "split":
            sides.setdefault(t[1], set()).add(t[2])
    return len(births) > 1 or any(len(s) > 1 for s in sides.values())


def _veto_birth_date_conflicts(con: duckdb.DuckDBPyConnection) -> int:
    """Split the persons that would hold two different known birth dates, or both sides of an
    unmerge (:mod:`crm_assets.warehouse.unmerge`); persons split.

    A pair is never confirmed across two known birth dates, but a chain can be: namesakes sharing
    a household phone, one of them without a birth date, link a son to his father through it.
    The few components holding two birth dates are built again from their edges, strongest rule
    first (then in node order, so the same input always gives the same persons), refusing any
    union that would join two birth dates. Records that already share an id stay together (an id
    is never split). Edges refused are dropped from ``_identity_confirmed``, so ``match_rule``
    names only evidence that was used. Python runs over those components' edges only.

    An unmerge's decision is kept the same way: a chain through a new record that would join the
    records it split off with those it kept is refused at its weakest link.
    """
    conflicted = con.execute("""
        select n.node, l.label, s.birth_date, n.source_customer_id
        from _identity_labels as l
        inner join _identity_nodes as n using (node)
        left join staging.customers as s using (source_customer_id)
        where l.label in (
            select l2.label from _identity_labels as l2
            inner join _identity_nodes as n2 using (node)
            inner join staging.customers as s2 using (source_customer_id)
            group by l2.label having count(distinct s2.birth_date) > 1
            union
            select l3.label from _identity_labels as l3
            inner join _identity_nodes as n3 using (node)
            inner join meta.identity_splits as x using (source_customer_id)
            group by l3.label, x.split_id having count(distinct x.side) > 1)""").fetchall()
    if not conflicted:
        return 0
    births = {node: birth for node, _, birth, _ in conflicted}
    source_of = {node: src for node, _, _, src in conflicted}
    splits: dict[str, list[tuple]] = {}
    for source, split_id, side in con.execute(
            "select source_customer_id, split_id, side from meta.identity_splits "
            "where source_customer_id in (select unnest($sources))",
            {"sources": list(source_of.values())}).fetchall():
        splits.setdefault(source, []).append(("split", split_id, side))
    priority = {rule: i for i, rule in enumerate(sql.RULE_PRIORITY)}
    edges = con.execute("""
        select na.node, nb.node, c.rule
        from _identity_confirmed as c
        inner join _identity_nodes as na on na.source_customer_id = c.a
        inner join _identity_nodes as nb on nb.source_customer_id = c.b
        where na.node in (select unnest($nodes)) and nb.node in (select unnest($nodes))""",
                        {"nodes": list(births)}).fetchall()
    same_id = con.execute("""
        select n.node, min(n.node) over (partition by ci.customer_id)
        from core.customer_identity as ci
        inner join _identity_nodes as n using (source_customer_id)
        where n.node in (select unnest($nodes))""", {"nodes": list(births)}).fetchall()
    parent = {node: node for node in births}
    known = {node: ({("birth", b)} if b is not None else set()) | set(splits.get(source_of[node],
                                                                               ()))
             for node, b in births.items()}

    def root(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    def union(a: int, b: int, forced: bool) -> bool:
        ra, rb = root(a), root(b)
        if ra == rb:
            return True
        if not forced and _conflict(known[ra] | known[rb]):
            return False
        low, high = min(ra, rb), max(ra, rb)
        parent[high] = low
        known[low] |= known.pop(high)
        return True

    for a, b in same_id:
        union(a, b, forced=True)
    refused = [(source_of[a], source_of[b]) for a, b, rule in
               sorted(edges, key=lambda e: (priority[e[2]], min(e[0], e[1]), max(e[0], e[1])))
               if not union(a, b, forced=False)]
    groups = {node: root(node) for node in births}
    con.execute("create or replace temp table _identity_relabel (node bigint, label bigint)")
    con.executemany("insert into _identity_relabel values (?, ?)", list(groups.items()))
    con.execute("update _identity_labels as l set label = r.label from _identity_relabel as r "
                "where l.node = r.node")
    if refused:
        con.executemany("delete from _identity_confirmed where a = ? and b = ?",
                        [(min(a, b), max(a, b)) for a, b in refused])
    con.execute("drop table _identity_relabel")
    return len(set(groups.values())) - len({label for _, label, _, _ in conflicted})


def _assign(con: duckdb.DuckDBPyConnection, stamp: datetime, batch: int) -> dict[str, int]:
    """Ids for the components: survivors kept, merges recorded, new records and ids added."""
    con.execute(sql.ASSIGN_SQL)
    (merges,) = con.execute(sql.MERGES_SQL, [stamp, batch]).fetchone()
    con.execute(
        """
        update core.customer_identity as ci
        set customer_id = a.customer_id, _batch = $batch
        from _identity_assigned as a
        where ci.source_customer_id = a.source_customer_id and ci.customer_id <> a.customer_id
        """, {"batch": batch}
    )
    con.execute(
        """
        update core.customer_identity as ci
        set match_rule = a.match_rule, _batch = $batch
        from _identity_assigned as a
        where ci.source_customer_id = a.source_customer_id
            and a.match_rule is not null
            and ci.match_rule is distinct from a.match_rule
        """, {"batch": batch}
    )
    (new_records,) = con.execute(
        """
        insert into core.customer_identity
            (source_customer_id, customer_id, first_seen_at, match_rule, _batch)
        select source_customer_id, customer_id, ?::timestamptz, match_rule, ?
        from _identity_assigned
        where old_id is null
        order by customer_id, source_customer_id
        """,
        [stamp, batch],
    ).fetchone()
    (new_ids,) = con.execute(
        "select count(distinct customer_id) from _identity_assigned where is_fresh"
    ).fetchone()
    (records,) = con.execute("select count(*) from staging.customers").fetchone()
    (persons,) = con.execute(
        "select count(distinct customer_id) from core.customer_identity"
    ).fetchone()
    return {"records": records, "new_records": new_records, "persons": persons,
            "new_ids": new_ids, "merges": merges}


def resolve_customer_id(con: duckdb.DuckDBPyConnection, customer_id: int) -> int:
    """Return the id that ``customer_id`` stands for today, following merge chains to the end.

    An id that was never merged is its own answer, so callers can resolve any id they hold (an
    exported trigger, an old history row) without knowing whether it moved.
    """
    row = con.execute(
        "select to_customer_id from core.customer_id_redirects where from_customer_id = ?",
        [customer_id],
    ).fetchone()
    return int(row[0]) if row else customer_id
