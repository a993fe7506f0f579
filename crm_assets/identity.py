"""Identity resolution: which source customer records are one person, under a stable
``customer_id``.

The CRM holds one person many times (re-registrations, a second card, typing errors). Everything
downstream of ``core`` keys on ``customer_id``, and segment histories, event rows and triggers that
were already exported carry it, so an id must never silently move from one person to another.

Contract
--------
``resolve_identity`` reads ``staging.customers`` and updates, in place and in one transaction:

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
from pathlib import Path

import duckdb

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

_DDL = """
create schema if not exists core;
create schema if not exists meta;
create table if not exists core.customer_identity (
    source_customer_id varchar primary key,
    customer_id bigint not null,
    first_seen_at timestamptz,
    match_rule varchar
);
create table if not exists meta.customer_merges (
    from_customer_id bigint,
    to_customer_id bigint,
    merged_at timestamptz,
    reason varchar
);
create or replace view core.customer_id_redirects as
with recursive chain (from_customer_id, to_customer_id, depth) as (
    select from_customer_id, to_customer_id, 1
    from meta.customer_merges
    union all
    select chain.from_customer_id, merges.to_customer_id, chain.depth + 1
    from chain
    inner join meta.customer_merges as merges
        on merges.from_customer_id = chain.to_customer_id
    where chain.depth < 1000
)
select distinct chain.from_customer_id, chain.to_customer_id
from chain
where not exists (
    select 1 from meta.customer_merges as later
    where later.from_customer_id = chain.to_customer_id
);
"""

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
"""

_GENERIC_SQL = f"""
create or replace temp table _identity_shared_contacts as
select 'email' as kind, email_key as value
from staging.customers
where email_key is not null
group by email_key
having count(distinct name_key) > {MAX_NAMES_PER_CONTACT} or count(*) > {MAX_RECORDS_PER_CONTACT}
union all
select 'phone' as kind, phone as value
from staging.customers
where phone is not null
group by phone
having count(distinct name_key) > {MAX_NAMES_PER_CONTACT} or count(*) > {MAX_RECORDS_PER_CONTACT}
"""

_CONFIRMED_SQL = """
create or replace temp table _identity_confirmed as
with candidates as (
    select a.source_customer_id as a, b.source_customer_id as b, 'email' as via
    from _identity_records as a
    inner join _identity_records as b
        on a.email_key = b.email_key and a.source_customer_id < b.source_customer_id
    where a.email_key not in (
        select value from _identity_shared_contacts where kind = 'email'
    )
    union all
    select a.source_customer_id, b.source_customer_id, 'phone'
    from _identity_records as a
    inner join _identity_records as b
        on a.phone = b.phone and a.source_customer_id < b.source_customer_id
    where a.phone not in (select value from _identity_shared_contacts where kind = 'phone')
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
with all_records as (
    select source_customer_id, registered_at from staging.customers
    union all
    select ci.source_customer_id, null::timestamptz
    from core.customer_identity as ci
    where ci.source_customer_id not in (select source_customer_id from staging.customers)
)
select
    source_customer_id,
    row_number() over (order by registered_at nulls last, source_customer_id) as node
from all_records
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
        when m.source_customer_id in (select source_customer_id from staging.customers)
            then coalesce(list_extract({rules}, br.priority), '{no_match}')
    end as match_rule
from members as m
inner join components as c using (label)
left join fresh as f using (label)
left join best_rule as br on br.record = m.source_customer_id
"""

_ASSIGN_SQL = _ASSIGN_SQL_TEMPLATE.format(
    rules="[" + ", ".join(f"'{r}'" for r in RULE_PRIORITY) + "]", no_match=NO_MATCH
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
    'confirmed match: ' || coalesce(e.rules || ' (' || e.example || ')', 'shared component')
from moving as m
left join evidence as e using (from_customer_id)
order by m.from_customer_id
"""

_TEMP_TABLES = (
    "_identity_records",
    "_identity_shared_contacts",
    "_identity_confirmed",
    "_identity_nodes",
    "_identity_edges",
    "_identity_labels",
    "_identity_assigned",
)


def ensure_identity_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``core.customer_identity``, ``meta.customer_merges`` and the redirect view if missing.

    Idempotent; the view is (re)created so a fresh warehouse and an old one resolve chains alike.
    """
    con.execute(_DDL)


def resolve_identity(
    con: duckdb.DuckDBPyConnection, *, now: datetime | None = None
) -> dict[str, int]:
    """Map every record of ``staging.customers`` to a stable ``customer_id``, updating in place.

    Runs in one transaction: readers see the identity map either before or after the run, never a
    half-merged state, and a failure leaves both tables untouched. Re-running on unchanged input
    changes nothing and writes no merge rows.

    Args:
        con: Read-write connection to the warehouse, not inside an open transaction.
        now: Timestamp written as ``first_seen_at`` of new records and ``merged_at`` of merges;
            defaults to the current time (UTC). Pass it to make a run reproducible.

    Returns:
        ``records`` (rows in ``staging.customers``), ``new_records`` (source ids mapped for the
        first time), ``persons`` (distinct ids in ``core.customer_identity`` after the run),
        ``new_ids`` (fresh ids handed out), ``merges`` (merge rows written), ``iterations``
        (label-propagation rounds).
    """
    stamp = now if now is not None else datetime.now(UTC)
    con.execute("begin transaction")
    try:
        ensure_identity_tables(con)
        con.execute(_RECORDS_SQL)
        con.execute(_GENERIC_SQL)
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
                break
            if iterations >= MAX_ITERATIONS:
                raise RuntimeError(f"label propagation did not converge in {iterations} rounds")
        con.execute(_ASSIGN_SQL)
        (merges,) = con.execute(_MERGES_SQL, [stamp]).fetchone()
        con.execute(
            """
            update core.customer_identity as ci
            set customer_id = a.customer_id
            from _identity_assigned as a
            where ci.source_customer_id = a.source_customer_id and ci.customer_id <> a.customer_id
            """
        )
        con.execute(
            """
            update core.customer_identity as ci
            set match_rule = a.match_rule
            from _identity_assigned as a
            where ci.source_customer_id = a.source_customer_id
                and a.match_rule is not null
                and ci.match_rule is distinct from a.match_rule
            """
        )
        (new_records,) = con.execute(
            """
            insert into core.customer_identity
            select source_customer_id, customer_id, ?::timestamptz, match_rule
            from _identity_assigned
            where old_id is null
            order by customer_id, source_customer_id
            """,
            [stamp],
        ).fetchone()
        (new_ids,) = con.execute(
            "select count(distinct customer_id) from _identity_assigned where is_fresh"
        ).fetchone()
        (records,) = con.execute("select count(*) from staging.customers").fetchone()
        (persons,) = con.execute(
            "select count(distinct customer_id) from core.customer_identity"
        ).fetchone()
        for table in _TEMP_TABLES:
            con.execute(f"drop table if exists {table}")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return {
        "records": records,
        "new_records": new_records,
        "persons": persons,
        "new_ids": new_ids,
        "merges": merges,
        "iterations": iterations,
    }


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


_REPORT_SQL = """
create or replace temp table _dedupe_truth as
select
    trim(t.customer_id) as source_customer_id,
    trim(t.person_id) as person_id,
    coalesce(t.dirt, '') as dirt,
    s.source_customer_id is not null as in_staging,
    ci.customer_id
from read_csv(?, header = true, all_varchar = true) as t
left join staging.customers as s on s.source_customer_id = trim(t.customer_id)
left join core.customer_identity as ci on ci.source_customer_id = trim(t.customer_id)
"""

_REPORT_OVERALL_SQL = """
with evaluated as (
    select * from _dedupe_truth where in_staging and customer_id is not null
),

true_groups as (select count(*) as n from evaluated group by person_id),
predicted_groups as (select count(*) as n from evaluated group by customer_id),
cells as (select count(*) as n from evaluated group by person_id, customer_id)

select
    (select count(*) from evaluated),
    (select coalesce(sum(n * (n - 1) // 2), 0) from true_groups),
    (select coalesce(sum(n * (n - 1) // 2), 0) from predicted_groups),
    (select coalesce(sum(n * (n - 1) // 2), 0) from cells)
"""

_REPORT_LABELS_SQL = """
with evaluated as (
    select * from _dedupe_truth where in_staging and customer_id is not null
),

labels as (
    select distinct source_customer_id, trim(label) as label
    from (select source_customer_id, unnest(string_split(dirt, ';')) as label from evaluated)
    where trim(label) <> ''
),

pairs as (
    select a.source_customer_id as a, b.source_customer_id as b
    from evaluated as a
    inner join evaluated as b
        on a.customer_id = b.customer_id and a.source_customer_id < b.source_customer_id
    union
    select a.source_customer_id, b.source_customer_id
    from evaluated as a
    inner join evaluated as b
        on a.person_id = b.person_id and a.source_customer_id < b.source_customer_id
),

judged as (
    select
        p.a,
        p.b,
        ta.person_id = tb.person_id as is_true,
        ta.customer_id = tb.customer_id as is_predicted
    from pairs as p
    inner join evaluated as ta on ta.source_customer_id = p.a
    inner join evaluated as tb on tb.source_customer_id = p.b
),

labelled as (
    -- two equi-joins, not one join on "in (a, b)", which DuckDB can only run as a nested loop
    select j.a, j.b, l.label, j.is_true, j.is_predicted
    from judged as j
    inner join labels as l on l.source_customer_id = j.a
    union
    select j.a, j.b, l.label, j.is_true, j.is_predicted
    from judged as j
    inner join labels as l on l.source_customer_id = j.b
),

per_label as (
    select
        label,
        count(*) filter (where is_true) as true_pairs,
        count(*) filter (where is_predicted) as predicted_pairs,
        count(*) filter (where is_true and is_predicted) as correct_pairs
    from labelled
    group by label
),

label_records as (
    select label, count(*) as records from labels group by label
)

select
    r.label,
    r.records,
    coalesce(p.true_pairs, 0),
    coalesce(p.predicted_pairs, 0),
    coalesce(p.correct_pairs, 0)
from label_records as r
left join per_label as p using (label)
order by r.label
"""


def _row(label: str, records: int, true_pairs: int, predicted: int, correct: int) -> dict:
    return {
        "label": label,
        "records": int(records),
        "true_pairs": int(true_pairs),
        "predicted_pairs": int(predicted),
        "correct_pairs": int(correct),
        "precision": correct / predicted if predicted else None,
        "recall": correct / true_pairs if true_pairs else None,
    }


def dedupe_report(con: duckdb.DuckDBPyConnection, truth_path: Path) -> list[dict]:
    """Pairwise precision and recall of ``core.customer_identity`` against the generator's truth.

    A pair is two source records; it is *true* when the truth gives them the same ``person_id`` and
    *predicted* when they share a ``customer_id``. Pairwise scores weigh a wrong merge of two big
    clusters by the harm it does, which record-level accuracy hides. Overall counts come from
    cluster sizes (n*(n-1)/2 per group), never from materialised pairs; per-label counts materialise
    only the pairs inside predicted clusters and true persons, which are small. A pair counts toward
    a label when either record carries it, so for trap labels (``household_phone``,
    ``company_email``, ``namesake``, ``placeholder_contact``) read ``precision``: lower means false
    merges.

    Args:
        con: Connection holding ``staging.customers`` and ``core.customer_identity``.
        truth_path: CSV with ``customer_id`` (the source id), ``person_id`` and ``dirt`` (labels
            separated by ``;``).

    Returns:
        One dict per row: ``label`` (``all`` first, then each dirt label alphabetically),
        ``records``, ``true_pairs``, ``predicted_pairs``, ``correct_pairs``, ``precision`` and
        ``recall`` (``None`` when undefined). A last row ``excluded_not_in_staging`` counts, in
        ``records``, truth records that staging rejected (or identity has not mapped yet); they are
        left out of every other row because no prediction exists for them.
    """
    con.execute(_REPORT_SQL, [str(truth_path)])
    try:
        records, true_pairs, predicted, correct = con.execute(_REPORT_OVERALL_SQL).fetchone()
        rows = [_row("all", records, true_pairs, predicted, correct)]
        rows += [_row(*r) for r in con.execute(_REPORT_LABELS_SQL).fetchall()]
        (excluded,) = con.execute(
            "select count(*) from _dedupe_truth where not in_staging or customer_id is null"
        ).fetchone()
    finally:
        con.execute("drop table if exists _dedupe_truth")
    rows.append(
        {
            "label": "excluded_not_in_staging",
            "records": int(excluded),
            "true_pairs": 0,
            "predicted_pairs": 0,
            "correct_pairs": 0,
            "precision": None,
            "recall": None,
        }
    )
    return rows


_GOLDEN_ATTRIBUTES = (
    "first_name",
    "last_name",
    "name_key",
    "email",
    "phone",
    "gender",
    "birth_date",
    "city",
    "home_store_id",
)
_CONSENTS = ("email_opt_in", "sms_opt_in", "push_opt_in")


def build_golden_customers_sql() -> str:
    """Return the ``SELECT`` that builds ``core.customers``: one golden record per ``customer_id``.

    Reads ``staging.customers`` inner-joined to ``core.customer_identity``. Survivorship, per field:

    * ``first_name``, ``last_name``, ``name_key``, ``email``, ``phone``, ``gender``, ``birth_date``,
      ``city``, ``home_store_id``: each independently, the most recent non-null value, recency being
      ``updated_at`` (unknown last), then the latest ``_loaded_at``, then the smallest
      ``source_customer_id`` -- the freshest thing the person told us, and a record that left a
      field empty does not erase what an older one knew.
    * ``email_opt_in``, ``sms_opt_in``, ``push_opt_in``: the most recent explicit choice by
      ``updated_at``; null means "not asked" and is skipped. On an ``updated_at`` tie an opt-out
      beats an opt-in (consent must be provable), so an opt-out is never overwritten by an older
      or equally old opt-in, while a newer opt-in does override an older opt-out.
    * ``registered_at``: the first registration (min), i.e. when the person became a customer.
    * ``updated_at``: the latest ``updated_at`` of any of the person's records.
    * ``source_record_count``: how many staged records the person has.
    """
    from crm_assets.settings import DEFAULT_PROJECT_DIR
    from crm_assets.sql_catalog import _statement_body

    # The SQL lives in sql/core/customers.sql (one file = one asset); this returns its query so
    # the survivorship rules are tested here against hand-written records.
    text = (DEFAULT_PROJECT_DIR / "sql" / "core" / "customers.sql").read_text(encoding="utf-8")
    return _statement_body(text)
