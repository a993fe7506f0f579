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

Merges are never undone: a component that once shared an id stays together even if a later run would
no longer link it (e.g. a contact that became shared by many names). Splitting would hand records a
new id, which the contract forbids; a wrong merge is a data fix, not something a run decides.

Matching rule
-------------
A *candidate pair* is two records sharing ``email_key`` or ``phone``. A contact value carried by
more than :data:`MAX_NAMES_PER_CONTACT` distinct ``name_key`` values or by more than
:data:`MAX_RECORDS_PER_CONTACT` records is a shared contact (company mailbox, reception phone, a
placeholder staging missed) and is no evidence at all. A shared contact only *proposes* a pair; it
is *confirmed* by the other fields, because a household phone or a family mailbox is shared by
different people while name, birth date and gender belong to one:

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
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from crm_assets.quoting import literal
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

MAX_NAMES_PER_CONTACT = 3
"""A contact value seen with more distinct ``name_key`` values than this is shared, not evidence.

One person rarely appears under more than two spellings; a company mailbox appears under many names.
"""

MAX_RECORDS_PER_CONTACT = 20
"""A contact value on more records than this is shared; it also bounds the pairs one value makes."""

MAX_ITERATIONS = 10_000
"""Safety stop for label propagation; a real graph of people converges in a handful of rounds."""

_CYRILLIC = "абвгдежзийклмнопрстуфхцчшщъыьэюяё"
_ONE_BYTE = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345F"  # ё folds like е; name_key is lower case already

RULE_PRIORITY = (
    "email+name",
    "phone+name",
    "email+name_typo",
    "phone+name_typo",
    "email+birth_date",
    "phone+birth_date",
)
"""Confirmed-match rules, strongest first; a record's ``match_rule`` is its strongest edge."""

NO_MATCH = "no_match"
"""``match_rule`` of a record no confirmed evidence links to another record."""

_RECORDS_SQL = f"""
create or replace temp table _identity_records as
select
    source_customer_id,
    case when len(string_split(name_key, ' ')) >= 2 then name_key end as full_name_key,
    name_key,
    string_split(name_key, ' ') as name_tokens,
    translate(name_key, '{_CYRILLIC}', '{_ONE_BYTE}') as name_fold,
    array_to_string(
        list_reverse(string_split(translate(name_key, '{_CYRILLIC}', '{_ONE_BYTE}'), ' ')), ' '
    ) as name_fold_reversed,
    email_key,
    phone,
    gender,
    birth_date
from staging.customers
semi join _identity_hood using (source_customer_id)
"""

_USABLE_SQL = f"""
create or replace temp table _identity_usable as
with holders as (
    select 'email' as kind, email_key as value, name_key
    from _identity_records
    where email_key is not null
    union all
    select 'phone', phone, name_key
    from _identity_records
    where phone is not null
)

select kind, value
from holders
semi join _identity_values using (kind, value)
group by kind, value
having count(distinct name_key) <= {MAX_NAMES_PER_CONTACT} and count(*) <= {MAX_RECORDS_PER_CONTACT}
"""

_CONFIRMED_SQL = """
create or replace temp table _identity_confirmed as
with candidates as (
    select a.source_customer_id as a, b.source_customer_id as b, 'email' as via
    from _identity_records as a
    inner join _identity_records as b
        on a.email_key = b.email_key and a.source_customer_id < b.source_customer_id
    where a.email_key in (select value from _identity_usable where kind = 'email')
    union all
    select a.source_customer_id, b.source_customer_id, 'phone'
    from _identity_records as a
    inner join _identity_records as b
        on a.phone = b.phone and a.source_customer_id < b.source_customer_id
    where a.phone in (select value from _identity_usable where kind = 'phone')
),

evidence as (
    select
        c.a,
        c.b,
        c.via,
        ra.full_name_key is not null and ra.full_name_key = rb.full_name_key as same_name,
        ra.full_name_key is not null and rb.full_name_key is not null
        and least(
            damerau_levenshtein(ra.name_fold, rb.name_fold),
            damerau_levenshtein(ra.name_fold, rb.name_fold_reversed)
        ) <= 1 as name_typo,
        ra.birth_date = rb.birth_date as same_birth_date,
        coalesce(ra.birth_date <> rb.birth_date, false) as birth_date_conflict,
        coalesce(ra.gender <> rb.gender, false) as gender_conflict,
        ra.name_key is null or rb.name_key is null
        or list_has_any(ra.name_tokens, rb.name_tokens) as names_overlap
    from candidates as c
    inner join _identity_records as ra on ra.source_customer_id = c.a
    inner join _identity_records as rb on rb.source_customer_id = c.b
),

rules as (
    select
        a,
        b,
        case
            when birth_date_conflict then null
            when same_name then via || '+name'
            when name_typo and not gender_conflict then via || '+name_typo'
            when same_birth_date and not gender_conflict and names_overlap
                then via || '+birth_date'
        end as rule
    from evidence
)

select a, b, rule
from rules
where rule is not null
"""

_NODES_SQL = """
create or replace temp table _identity_nodes as
with touched_ids as (
    select distinct ci.customer_id
    from core.customer_identity as ci
    semi join _identity_hood using (source_customer_id)
),

all_records as (
    select source_customer_id from _identity_hood
    union
    select ci.source_customer_id
    from core.customer_identity as ci
    semi join touched_ids using (customer_id)
)

select
    a.source_customer_id,
    row_number() over (order by s.registered_at nulls last, a.source_customer_id) as node
from all_records as a
left join staging.customers as s using (source_customer_id)
"""

_SCOPE_SQL = """
create or replace temp table _identity_changed as
select source_customer_id from staging.customers where _batch > $since;

create or replace temp table _identity_affected as
with changed_now as (
    select email_key, phone from staging.customers semi join _identity_changed
        using (source_customer_id)
),

changed_before as (
    select email_key, phone from meta.identity_evidence semi join _identity_changed
        using (source_customer_id)
),

both_sides as (
    select * from changed_now
    union all
    select * from changed_before
)

select distinct 'email' as kind, email_key as value from both_sides where email_key is not null
union
select distinct 'phone', phone from both_sides where phone is not null;

create or replace temp table _identity_scope as
select source_customer_id from _identity_changed
union
select s.source_customer_id from staging.customers as s
semi join _identity_affected as a on a.kind = 'email' and a.value = s.email_key
union
select s.source_customer_id from staging.customers as s
semi join _identity_affected as a on a.kind = 'phone' and a.value = s.phone;

create or replace temp table _identity_values as
select distinct 'email' as kind, email_key as value
from staging.customers semi join _identity_scope using (source_customer_id)
where email_key is not null
union
select distinct 'phone', phone
from staging.customers semi join _identity_scope using (source_customer_id)
where phone is not null;

create or replace temp table _identity_hood as
select source_customer_id from _identity_scope
union
select s.source_customer_id from staging.customers as s
semi join _identity_values as v on v.kind = 'email' and v.value = s.email_key
union
select s.source_customer_id from staging.customers as s
semi join _identity_values as v on v.kind = 'phone' and v.value = s.phone;
"""

_FULL_SCOPE_SQL = """
create or replace temp table _identity_changed as
select source_customer_id from staging.customers;

create or replace temp table _identity_scope as
select source_customer_id from staging.customers;

create or replace temp table _identity_values as
select distinct 'email' as kind, email_key as value from staging.customers
where email_key is not null
union
select distinct 'phone', phone from staging.customers where phone is not null;

create or replace temp table _identity_hood as
select source_customer_id from staging.customers
union
select source_customer_id from core.customer_identity;
"""

_EDGES_SQL = """
create or replace temp table _identity_edges as
with id_members as (
    select
        ci.customer_id,
        n.node,
        min(n.node) over (partition by ci.customer_id) as anchor
    from core.customer_identity as ci
    inner join _identity_nodes as n using (source_customer_id)
),

undirected as (
    select na.node as a, nb.node as b
    from _identity_confirmed as c
    inner join _identity_nodes as na on na.source_customer_id = c.a
    inner join _identity_nodes as nb on nb.source_customer_id = c.b
    union
    select node, anchor from id_members where node <> anchor
)

select a as node, b as neighbour from undirected
union
select b, a from undirected
"""

_PROPAGATE_SQL = """
update _identity_labels
set label = best.label
from (
    select e.node, min(l.label) as label
    from _identity_edges as e
    inner join _identity_labels as l on l.node = e.neighbour
    group by e.node
) as best
where _identity_labels.node = best.node and best.label < _identity_labels.label
"""

_ASSIGN_SQL_TEMPLATE = """
create or replace temp table _identity_assigned as
with members as (
    select n.source_customer_id, l.label, ci.customer_id as old_id
    from _identity_nodes as n
    inner join _identity_labels as l using (node)
    left join core.customer_identity as ci using (source_customer_id)
),

components as (
    select label, min(old_id) as survivor
    from members
    group by label
),

fresh as (
    select
        label,
        (
            select greatest(
                coalesce(max(customer_id), 0),
                (select coalesce(max(from_customer_id), 0) from meta.customer_merges)
            )
            from core.customer_identity
        ) + row_number() over (order by label) as fresh_id
    from components
    where survivor is null
),

best_rule as (
    select record, min(priority) as priority
    from (
        select c.a as record, list_position({rules}, c.rule) as priority
        from _identity_confirmed as c
        union all
        select c.b, list_position({rules}, c.rule) from _identity_confirmed as c
    )
    group by record
)

select
    m.source_customer_id,
    m.label,
    m.old_id,
    coalesce(c.survivor, f.fresh_id) as customer_id,
    c.survivor is null as is_fresh,
    case
        when m.source_customer_id in (select source_customer_id from _identity_scope)
            then coalesce(list_extract({rules}, br.priority), '{no_match}')
    end as match_rule
from members as m
inner join components as c using (label)
left join fresh as f using (label)
left join best_rule as br on br.record = m.source_customer_id
"""

_ASSIGN_SQL = _ASSIGN_SQL_TEMPLATE.format(
    rules="[" + ", ".join(literal(r) for r in RULE_PRIORITY) + "]", no_match=NO_MATCH
)

_MERGES_SQL = """
with moving as (
    select distinct old_id as from_customer_id, customer_id as to_customer_id
    from _identity_assigned
    where old_id <> customer_id
),

bridges as (
    select
        fa.old_id as from_customer_id,
        string_agg(distinct c.rule, ', ' order by c.rule) as rules,
        min(c.a || '~' || c.b) as example
    from _identity_confirmed as c
    inner join _identity_assigned as fa on fa.source_customer_id = c.a
    inner join _identity_assigned as fb on fb.source_customer_id = c.b
    where fa.old_id is distinct from fb.old_id
    group by fa.old_id
    union all
    select
        fb.old_id,
        string_agg(distinct c.rule, ', ' order by c.rule),
        min(c.a || '~' || c.b)
    from _identity_confirmed as c
    inner join _identity_assigned as fa on fa.source_customer_id = c.a
    inner join _identity_assigned as fb on fb.source_customer_id = c.b
    where fa.old_id is distinct from fb.old_id
    group by fb.old_id
),

evidence as (
    select
        from_customer_id,
        string_agg(distinct rules, ', ' order by rules) as rules,
        min(example) as example
    from bridges
    where from_customer_id is not null
    group by from_customer_id
)

insert into meta.customer_merges
select
    m.from_customer_id,
    m.to_customer_id,
    ?::timestamptz,
    'confirmed match: ' || coalesce(e.rules || ' (' || e.example || ')', 'shared component'),
    ?::bigint
from moving as m
left join evidence as e using (from_customer_id)
order by m.from_customer_id
"""

_TEMP_TABLES = (
    "_identity_changed",
    "_identity_affected",
    "_identity_scope",
    "_identity_values",
    "_identity_hood",
    "_identity_records",
    "_identity_usable",
    "_identity_confirmed",
    "_identity_nodes",
    "_identity_edges",
    "_identity_labels",
    "_identity_assigned",
)


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
        scope = _FULL_SCOPE_SQL if full else _SCOPE_SQL.replace("$since", str(int(since)))
        for statement in scope.split(";"):
            if statement.strip():
                con.execute(statement)
        (resolved,) = con.execute("select count(*) from _identity_hood").fetchone()
        iterations = _components(con)
        stats = _assign(con, stamp, batch)
        _keep_evidence(con, full)
        set_watermark(con, IDENTITY, STAGING, seen)
        set_built_version(con, IDENTITY, FRAMEWORK_VERSION, batch, ["source_customer_id"])
        for table in _TEMP_TABLES:
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
    con.execute(_RECORDS_SQL)
    con.execute(_USABLE_SQL)
    con.execute(_CONFIRMED_SQL)
    con.execute(_NODES_SQL)
    con.execute(_EDGES_SQL)
    con.execute(
        "create or replace temp table _identity_labels as "
        "select node, node as label from _identity_nodes"
    )
    iterations = 0
    while True:
        iterations += 1
        (changed,) = con.execute(_PROPAGATE_SQL).fetchone()
        if not changed:
            return iterations
        if iterations >= MAX_ITERATIONS:
            raise RuntimeError(f"label propagation did not converge in {iterations} rounds")


def _assign(con: duckdb.DuckDBPyConnection, stamp: datetime, batch: int) -> dict[str, int]:
    """Ids for the components: survivors kept, merges recorded, new records and ids added."""
    con.execute(_ASSIGN_SQL)
    (merges,) = con.execute(_MERGES_SQL, [stamp, batch]).fetchone()
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
