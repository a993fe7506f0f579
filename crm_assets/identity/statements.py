"""The SQL of identity resolution, statement by statement (:mod:`crm_assets.identity.resolve`
runs them, in one transaction, and states the contract and the matching rule).

Each statement fills one temporary table: the records in scope (``_identity_hood``), the contact
values usable as evidence, the confirmed pairs, the graph's nodes and edges, the labels label
propagation settles on, the ids assigned, and the merges recorded.
"""

from __future__ import annotations

from crm_assets.quoting import literal
from crm_assets.warehouse.tables import HIGHEST_ID_SQL

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

RECORDS_SQL = """
create or replace temp table _identity_records as
select
    source_customer_id,
    case when len(string_split(name_key, ' ')) >= 2 then name_key end as full_name_key,
    name_key,
    string_split(name_key, ' ') as name_tokens,
    email_key,
    phone,
    gender,
    birth_date
from staging.customers
semi join _identity_hood using (source_customer_id)
"""


def _folded(name: str) -> str:
    """``name`` with one byte per Cyrillic letter: DuckDB counts edits in UTF-8 bytes, so a
    Cyrillic typo would otherwise cost 2-4."""
    return f"translate({name}, '{_CYRILLIC}', '{_ONE_BYTE}')"


def _reversed(name: str) -> str:
    """``name``'s tokens in the opposite order."""
    return f"array_to_string(list_reverse(string_split({name}, ' ')), ' ')"


USABLE_SQL = f"""
create or replace temp table _identity_usable as
with holders as (
    select 'email' as kind, email_key as value, name_key
    from _identity_records
    where email_key is not null
    union all
    select 'phone', phone, name_key
    from _identity_records
    where phone is not null
),

shared as (
    select kind, value
    from holders
    semi join _identity_values using (kind, value)
    group by kind, value
    having count(*) between 2 and {MAX_RECORDS_PER_CONTACT}
)

-- names counted only for the values on two records or more (a value on one record pairs nobody)
select kind, value
from holders
semi join shared using (kind, value)
group by kind, value
having count(distinct name_key) <= {MAX_NAMES_PER_CONTACT}
"""

CONFIRMED_SQL = f"""
create or replace temp table _identity_confirmed as
with holders as (
    select source_customer_id, 'email' as kind, email_key as value
    from _identity_records
    where email_key in (select value from _identity_usable where kind = 'email')
    union all
    select source_customer_id, 'phone', phone
    from _identity_records
    where phone in (select value from _identity_usable where kind = 'phone')
),

candidates as (
    select a.source_customer_id as a, b.source_customer_id as b, a.kind as via
    from holders as a
    inner join holders as b
        on a.kind = b.kind and a.value = b.value and a.source_customer_id < b.source_customer_id
),

evidence as (
    select
        c.a,
        c.b,
        c.via,
        ra.full_name_key is not null and ra.full_name_key = rb.full_name_key as same_name,
        ra.full_name_key as full_name_a,
        rb.full_name_key as full_name_b,
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
        -- the edit distance only where the rules before it did not decide (most pairs of one
        -- person have the same name), and not when the lengths alone rule a typo out (one
        -- edit, of a letter or of a byte, changes a name's length by one letter at most)
        case
            when birth_date_conflict then null
            when same_name then via || '+name'
            when full_name_a is not null and full_name_b is not null and not gender_conflict
                and abs(length(full_name_a) - length(full_name_b)) <= 1
                and (damerau_levenshtein({_folded("full_name_a")}, {_folded("full_name_b")}) <= 1
                     or damerau_levenshtein({_folded("full_name_a")},
                                            {_reversed(_folded("full_name_b"))}) <= 1)
                then via || '+name_typo'
            when same_birth_date and not gender_conflict and names_overlap
                then via || '+birth_date'
        end as rule
    from evidence
)

select a, b, rule
from rules
where rule is not null
"""

SPLIT_EDGES_SQL = """
delete from _identity_confirmed as c
where exists (
    select 1
    from meta.identity_splits as x
    inner join meta.identity_splits as y
        on y.split_id = x.split_id and y.side <> x.side
    where x.source_customer_id = c.a and y.source_customer_id = c.b
)
"""

NODES_SQL = """
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

SCOPE_SQL = """
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

FULL_SCOPE_SQL = """
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

EDGES_SQL = """
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

PROPAGATE_SQL = """
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

ASSIGN_SQL_TEMPLATE = """
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
        ({HIGHEST_ID_SQL}) + row_number() over (order by label) as fresh_id
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

ASSIGN_SQL = ASSIGN_SQL_TEMPLATE.format(
    rules="[" + ", ".join(literal(r) for r in RULE_PRIORITY) + "]", no_match=NO_MATCH,
    HIGHEST_ID_SQL=HIGHEST_ID_SQL.strip()
)

MERGES_SQL = """
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

TEMP_TABLES = (
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
