"""How good identity resolution is: pairwise precision and recall against a truth file.

The demo generator writes ``_truth/customers.csv`` (which person each source record belongs to, and
what dirt it carries); :func:`dedupe_report` scores ``core.customer_identity`` against it, overall
and per kind of dirt, and :func:`report_markdown` formats it for the Dagster UI.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

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


def cell(value: float | int | None) -> str:
    """A figure of the report as text: ``-`` when undefined, ratios to four decimals."""
    return "-" if value is None else (f"{value:.4f}" if isinstance(value, float) else str(value))


def report_markdown(rows: list[dict]) -> str:
    """:func:`dedupe_report`'s rows as a Markdown table."""
    lines = ["| label | records | true pairs | predicted | correct | precision | recall |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {cell(r.get('records'))} | {cell(r.get('true_pairs'))} | "
                     f"{cell(r.get('predicted_pairs'))} | {cell(r.get('correct_pairs'))} | "
                     f"{cell(r.get('precision'))} | {cell(r.get('recall'))} |")
    return "\n".join(lines)
