"""The SQL catalogue: hostile files refused, tricky valid files accepted, versions, the graph.

Every hostile case is one bad file dropped into a copy of the project's ``sql/``; the catalogue
must report exactly one line ``path:line:col: message`` for it (two for a cycle, one per file) and
nothing about the good files around it. The messages are spelled out in full on purpose: they are
what a data engineer reads, and a change to one should be a visible diff here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
import sqlglot
from conftest import PROJECT_DIR, make_project

from crm_assets.catalog import CatalogError, clear_parse_cache, fingerprint, load_catalog
from crm_assets.cli.main import main as crm
from crm_assets.project import external_tables

SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "asset_graph.json"

SEG = "sql/segments"

# (file under sql/, its text, the exact problems expected). ``{f}`` is the file's own path.
HOSTILE: dict[str, tuple[str, str, list[str]]] = {
    "create_table": (
        "segments/bad.sql", "create table segments.bad as select 1 as customer_id\n",
        ["{f}:1:1: only a read-only SELECT is allowed; found CREATE statement"]),
    "drop": (
        "segments/bad.sql", "-- description: x\ndrop table core.orders;\n",
        ["{f}:2:1: only a read-only SELECT is allowed; found DROP statement"]),
    "insert": (
        "segments/bad.sql", "insert into core.orders select * from core.orders\n",
        ["{f}:1:1: only a read-only SELECT is allowed; found INSERT statement"]),
    "insert_after_cte": (
        "segments/bad.sql",
        "with x as (select 1 as customer_id)\ninsert into core.customers select * from x\n",
        ["{f}:1:1: only a read-only SELECT is allowed; found INSERT statement"]),
    "update": (
        "segments/bad.sql", "update core.orders set status = 'cancelled'\n",
        ["{f}:1:1: only a read-only SELECT is allowed; found UPDATE statement"]),
    "delete": (
        "segments/bad.sql", "delete from core.orders\n",
        ["{f}:1:1: only a read-only SELECT is allowed; found DELETE statement"]),
    "copy": (
        "segments/bad.sql", "copy core.customers to '/tmp/customers.csv'\n",
        ["{f}:1:1: only a read-only SELECT is allowed; found COPY statement"]),
    "export": (
        "segments/bad.sql", "export database '/tmp/everything'\n",
        ["{f}:1:1: only a read-only SELECT is allowed; found EXPORT statement"]),
    "staging_problem_without_grain": (
        "staging/bad.sql",
        "-- description: x\nselect nullif(trim(store_id), '') as store_id, _source_file, "
        "_row_number, _loaded_at,\n    null::varchar as _problem\nfrom raw.stores\n",
        ["{f}:3:22: a staging model that outputs '_problem' must declare its grain: the latest "
         "version of each grain is kept"]),
    "staging_problem_without_loaded_at": (
        "staging/bad.sql",
        "-- grain: [store_id]\nselect store_id, _source_file, _row_number, null::varchar as "
        "_problem\nfrom raw.stores\n",
        ["{f}:2:62: a staging model that outputs '_problem' must output '_loaded_at', to pick "
         "the latest version of each grain"]),
    "staging_problem_and_reject_reason": (
        "staging/bad.sql",
        "-- grain: [store_id]\nselect store_id, _source_file, _row_number, _loaded_at, "
        "null::varchar as _problem,\n    null::varchar as _reject_reason\nfrom raw.stores\n",
        ["{f}:2:74: output '_problem' (the latest version of each grain is kept) or "
         "'_reject_reason' (rows kept as they are), not both"]),
    "staging_problem_dedupes_by_hand": (
        "staging/bad.sql",
        "-- grain: [store_id]\nselect store_id, _source_file, _row_number, _loaded_at,\n"
        "    case when row_number() over (partition by store_id order by _loaded_at desc) > 1\n"
        "        then 'older' end as _problem\nfrom raw.stores\n",
        ["{f}:2:1: a staging model that outputs '_problem' judges each raw row on its own (a "
         "night judges only new rows and those a changed reference concerns): a window function "
         "combines rows; keep the latest version to the framework (grain) or do it in core"]),
    "staging_problem_counts_rows": (
        "staging/bad.sql",
        "-- grain: [store_id]\nselect store_id, _source_file, _row_number, _loaded_at,\n"
        "    case when store_id in (select store_id from raw.stores group by 1\n"
        "        having count(*) > 1) then 'repeated' end as _problem\nfrom raw.stores\n",
        ["{f}:2:1: a staging model that outputs '_problem' judges each raw row on its own (a "
         "night judges only new rows and those a changed reference concerns): GROUP BY "
         "combines rows; keep the latest version to the framework (grain) or do it in core"]),
    "attach": (
        "segments/bad.sql", "attach '/tmp/other.duckdb' as other\n",
        ["{f}:1:1: only a read-only SELECT is allowed; found ATTACH statement"]),
    "install": (
        "segments/bad.sql", "install httpfs\n",
        ["{f}:1:1: only a read-only SELECT is allowed; found INSTALL statement"]),
    "load": (
        "segments/bad.sql", "load httpfs\n",
        ["{f}:1:1: only a read-only SELECT is allowed; found LOAD statement"]),
    "pragma": (
        "segments/bad.sql", "pragma database_list\n",
        ["{f}:1:1: only a read-only SELECT is allowed; found PRAGMA statement"]),
    "set": (
        "segments/bad.sql", "set enable_external_access = true\n",
        ["{f}:1:1: only a read-only SELECT is allowed; found SET statement"]),
    "call": (
        "segments/bad.sql", "call pragma_version()\n",
        ["{f}:1:1: only a read-only SELECT is allowed; found CALL statement"]),
    "summarize": (
        "segments/bad.sql", "summarize core.customers\n",
        ["{f}:1:1: only a read-only SELECT is allowed; found SUMMARIZE statement"]),
    "two_statements": (
        "segments/bad.sql",
        "select customer_id from core.customers;\nselect customer_id from core.customers;\n",
        ["{f}:2:1: expected exactly one SELECT statement, found 2 statements"]),
    "select_then_drop": (
        "segments/bad.sql", "select customer_id from core.customers;\ndrop table core.orders;\n",
        ["{f}:2:1: only a read-only SELECT is allowed; found DROP statement"]),
    "string_as_table": (
        "segments/bad.sql", "select customer_id\nfrom 'customers.csv'\n",
        ["{f}:2:6: a string used as a table ('customers.csv'): a definition may read only "
         "catalogue tables, not files"]),
    "read_csv": (
        "segments/bad.sql", "select customer_id\nfrom read_csv('/etc/passwd')\n",
        ["{f}:2:6: table function 'read_csv()' is not allowed: a definition may read only "
         "catalogue tables (no files, no other databases)"]),
    "read_parquet_in_subquery": (
        "segments/bad.sql",
        "select customer_id\nfrom core.customers\nwhere customer_id in (\n"
        "    select customer_id from read_parquet('s3://bucket/x.parquet'))\n",
        ["{f}:4:29: table function 'read_parquet()' is not allowed: a definition may read only "
         "catalogue tables (no files, no other databases)"]),
    "read_text": (
        "segments/bad.sql", "select 1 as customer_id, content\nfrom read_text('/etc/hosts')\n",
        ["{f}:2:6: table function 'read_text()' is not allowed: a definition may read only "
         "catalogue tables (no files, no other databases)"]),
    "glob": (
        "segments/bad.sql", "select 1 as customer_id, file\nfrom glob('/home/*')\n",
        ["{f}:2:6: table function 'glob()' is not allowed: a definition may read only "
         "catalogue tables (no files, no other databases)"]),
    "query": (
        "segments/bad.sql",
        "select customer_id\nfrom query('select customer_id from core.customers')\n",
        ["{f}:2:6: table function 'query()' is not allowed: a definition may read only "
         "catalogue tables (no files, no other databases)"]),
    "query_table": (
        "segments/bad.sql", "select customer_id\nfrom query_table('core.customers')\n",
        ["{f}:2:6: table function 'query_table()' is not allowed: a definition may read only "
         "catalogue tables (no files, no other databases)"]),
    "getenv": (
        "segments/bad.sql", "select\n    customer_id,\n    getenv('HOME') as home\n"
                            "from core.customers\n",
        ["{f}:3:5: function 'getenv()' is not on the allow-list of SQL functions"]),
    "getenv_after_unicode": (  # DuckDB counts bytes; messages count characters
        "segments/bad.sql",
        "select customer_id, 'Москва' as city, getenv('HOME') as home\nfrom core.customers\n",
        ["{f}:1:39: function 'getenv()' is not on the allow-list of SQL functions"]),
    "current_setting": (
        "segments/bad.sql",
        "select customer_id, current_setting('s3_secret_access_key') as s\nfrom core.customers\n",
        ["{f}:1:21: function 'current_setting()' is not on the allow-list of SQL functions"]),
    "clock_keyword": (  # the answer would change with the day it runs, not the as-of date
        "segments/bad.sql",
        "select customer_id\nfrom core.customer_features\n"
        "where last_order_at >= current_date - interval 30 day\n",
        ["{f}:3:24: 'current_date' reads the clock: a definition must give the same rows for the "
         "same as-of date (a rebuild of a past day gives that day's answer); use as_of_date() "
         "(the as-of day) or as_of_end() (the end of that day, an instant)"]),
    "clock_function": (
        "events/bad.sql",
        "-- grain: [customer_id, occurred_at]\nselect customer_id, now() as occurred_at\n"
        "from core.customers\n",
        ["{f}:2:21: 'now()' reads the clock: a definition must give the same rows for the same "
         "as-of date (a rebuild of a past day gives that day's answer); use as_of_date() (the "
         "as-of day) or as_of_end() (the end of that day, an instant)"]),
    "chance": (
        "segments/bad.sql", "select customer_id\nfrom core.customers\nwhere random() < 0.1\n",
        ["{f}:3:7: 'random()' differs on every run: a definition must give the same rows for the "
         "same inputs; for a stable sample, use hash() of the id with a seed"]),
    "undefined_table": (
        "segments/bad.sql", "select customer_id\nfrom core.customer\n",
        ["{f}:2:6: table core.customer is not defined by any file or source; did you mean "
         "core.customers?"]),
    "unqualified_table": (
        "segments/bad.sql", "select customer_id\nfrom customers\n",
        ["{f}:2:6: table 'customers' must be qualified with its layer (e.g. staging.customers)"]),
    "double_quoted_file_name": (
        "segments/bad.sql", 'select customer_id\nfrom "customers.csv"\n',
        ["{f}:2:6: table 'customers.csv' must be qualified with its layer "
         "(e.g. staging.customers.csv)"]),
    "later_layer": (
        "core/bad.sql", "select customer_id\nfrom segments.croissant_buyers\n",
        ["{f}:2:6: core may not read segments.croissant_buyers from the later layer 'segments'"]),
    "other_database": (
        "segments/bad.sql", "select customer_id\nfrom other.main.customers\n",
        ["{f}:2:6: table 'other.main.customers' names a database; a definition may read only "
         "catalogue tables"]),
    "syntax_error": (
        "segments/bad.sql", "select customer_id\nfrom core.customers\nwhere and city = 'x'\n",
        ['{f}:3:7: syntax error at or near "and"']),
    "select_star": (
        "segments/bad.sql", "select *\nfrom core.customers\n",
        ["{f}:1:8: SELECT * is not allowed in a segment: list the output columns"]),
    "select_star_event": (
        "events/bad.sql", "select o.*, o.ordered_at as occurred_at\nfrom core.orders as o\n",
        ["{f}:1:8: SELECT * is not allowed in a event: list the output columns"]),
    "no_customer_id": (
        "segments/bad.sql",
        "with c as (\n    select email from core.customers\n)\n\nselect email\nfrom c\n",
        ["{f}:5:1: a segment must output a 'customer_id' column"]),
    "naive_occurred_at": (
        "events/bad.sql",
        "select\n    customer_id,\n    ordered_at_local as occurred_at\nfrom core.orders\n",
        ["{f}:3:25: 'occurred_at' must be TIMESTAMP WITH TIME ZONE (an instant, not a local "
         "time), found TIMESTAMP"]),
    "duplicate_output": (
        "segments/bad.sql",
        "select\n    customer_id,\n    city as customer_id\nfrom core.customers\n",
        ["{f}:3:13: duplicate output column 'customer_id'"]),
    "unknown_column": (
        "segments/bad.sql", "select\n    customer_id,\n    favourite_colour\nfrom core.customers\n",
        ['{f}:3:5: referenced column "favourite_colour" not found in FROM clause']),
    "unknown_column_long_line": (
        "segments/bad.sql",
        "select customer_id, " + ", ".join(f"email as e{i:02d}" for i in range(20))
        + ", nope from core.customers\n",
        ['{f}:1:301: referenced column "nope" not found in FROM clause']),
    "bad_header_yaml": (
        "segments/bad.sql",
        "-- description: Customers.\n-- tags: [a, b\nselect customer_id from core.customers\n",
        ["{f}:2:4: header is not valid YAML: did not find expected ',' or ']'"]),
    "prose_before_header": (
        "segments/bad.sql",
        "-- Customers who buy a lot.\n-- owner: growth@bakery.example\n"
        "select customer_id from core.customers\n",
        ["{f}:2:9: header is not valid YAML: mapping values are not allowed in this context"]),
    "unknown_header_key": (
        "segments/bad.sql",
        "-- description: Customers.\n-- colour: blue\nselect customer_id from core.customers\n",
        ["{f}:2:4: unknown header key 'colour'; allowed: columns, description, grain, "
         "incremental, kind, name, owner, params, references, tags, tests, variants"]),
    "header_name_mismatch": (
        "segments/bad.sql", "-- name: good\nselect customer_id from core.customers\n",
        ["{f}:1:4: header name 'good' does not match the file name 'bad'"]),
    "unknown_kind": (
        "segments/bad.sql", "-- kind: view\nselect customer_id from core.customers\n",
        ["{f}:1:4: unknown kind 'view'; expected one of model, segment, event"]),
    "bad_test_entry": (
        "segments/bad.sql",
        "-- description: x\n-- tests:\n--   - not_null: customer_id\n--   - not_null\n"
        "select customer_id from core.customers\n",
        ["{f}:4:8: bad test: test 'not_null' needs arguments, e.g. '- not_null: column'"]),
    "unknown_test_kind": (
        "segments/bad.sql",
        "-- tests:\n--   - positive: amount\nselect customer_id from core.customers\n",
        ["{f}:2:8: bad test: each test names exactly one of not_null, unique, accepted_values, "
         "relationships, expression (and optionally severity); got positive"]),
    "test_on_missing_column": (
        "segments/bad.sql",
        "-- tests:\n--   - not_null: email_address\nselect customer_id from core.customers\n",
        ["{f}:2:8: test not_null_email_address: column 'email_address' is not an output column "
         "of segments.bad"]),
    "test_expression_getenv": (
        "segments/bad.sql",
        "-- tests:\n--   - expression: \"getenv('HOME') is not null\"\n"
        "select customer_id from core.customers\n",
        ["{f}:2:8: test expression_getenv_home_is_not_null: function 'getenv()' is not on the "
         "allow-list of SQL functions"]),
    "test_expression_reads_file": (
        "segments/bad.sql",
        "-- tests:\n--   - expression: \"customer_id in (select 1 from read_csv('x.csv'))\"\n"
        "select customer_id from core.customers\n",
        ["{f}:2:8: test expression_customer_id_in_select_1_from_read_csv_x_csv: table "
         "function 'read_csv()' is not allowed"]),
    "test_expression_unknown_column": (
        "segments/bad.sql",
        "-- tests:\n--   - expression: {name: positive, sql: amount > 0}\n"
        "select customer_id from core.customers\n",
        ['{f}:2:8: test expression_positive: referenced column "amount" not found in FROM '
         "clause"]),
    "test_expression_injection": (
        "segments/bad.sql",
        "-- tests:\n--   - expression: \"true)); drop table core.orders; select ((1\"\n"
        "select customer_id from core.customers\n",
        ["{f}:2:8: test expression_true_drop_table_core_orders_select_1: the expression must "
         "be one SQL condition"]),
    "test_relationship_unknown_table": (
        "segments/bad.sql",
        "-- tests:\n--   - relationships: {column: customer_id, to: core.people}\n"
        "select customer_id from core.customers\n",
        ["{f}:2:8: test relationships_customer_id_core_people: table core.people is not "
         "defined by any file or source"]),
    "grain_not_output": (
        "segments/bad.sql",
        "-- grain: [customer_id, city]\nselect customer_id from core.customers\n",
        ["{f}:1:4: grain column 'city' is not an output column"]),
    "python_built_table": (
        "core/customer_identity.sql", "select 1 as customer_id\n",
        ["{f}:1:1: duplicate definition of core.customer_identity: it is built by Python code "
         "(ingest or identity)"]),
    "unknown_layer": (
        "reports/bad.sql", "select 1 as x\n",
        ["{f}:1:1: unknown layer folder 'reports'; expected one of staging, core, segments, "
         "events, marts"]),
    "file_name": (
        "segments/Coffee-Lovers.sql", "select customer_id from core.customers\n",
        ["{f}:1:1: file name 'Coffee-Lovers' must be lower_snake_case (it becomes a table name)"]),
    "empty": (
        "segments/bad.sql", "-- description: nothing here yet\n",
        ["{f}:1:1: file holds no query; expected one SELECT statement"]),
}


@pytest.fixture(scope="module")
def external():
    return external_tables()


def _project_sql(tmp_path: Path) -> Path:
    sql = tmp_path / "sql"
    shutil.copytree(PROJECT_DIR / "sql", sql)
    return sql


def _tables(sql: Path) -> int:
    """The definitions of the files under ``sql``: one per file, one per variant of a file with
    variants."""
    from crm_assets.catalog.header import parse_header

    def variants(path: Path) -> int:
        found = parse_header(path.read_text(encoding="utf-8"))[0].get("variants")
        return len(found) if found else 1

    return sum(variants(p) for p in sql.glob("*/*.sql"))


def _problems(sql: Path, external, **kwargs) -> list[str]:
    return [str(p) for p in load_catalog(sql, external, **kwargs).problems]


def test_the_project_catalogue_is_valid(external):
    catalog = load_catalog(PROJECT_DIR / "sql", external)
    assert [str(p) for p in catalog.problems] == []
    # a file with variants is one definition per variant
    files = sorted((PROJECT_DIR / "sql").glob("*/*.sql"))
    assert sorted({d.path for d in catalog.definitions}) == files
    variants = {d.table for d in catalog.definitions if d.variant is not None}
    assert {"segments.rfm_at_risk", "segments.lifecycle_lapsed", "segments.value_tier_gold",
            "segments.women_25_34_kazan"} <= variants
    with_variants = {d.path for d in catalog.definitions if d.variant is not None}
    assert len(catalog.definitions) == len(files) - len(with_variants) + len(variants)


@pytest.mark.parametrize("case", sorted(HOSTILE), ids=str)
def test_hostile_file_is_refused_with_one_exact_message(case, tmp_path, external):
    relative, text, expected = HOSTILE[case]
    sql = _project_sql(tmp_path)
    target = sql / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    shown = f"sql/{relative}"
    assert _problems(sql, external) == [m.format(f=shown) for m in expected]


def test_cycle_names_both_files(tmp_path, external):
    sql = _project_sql(tmp_path)
    (sql / "segments" / "ping.sql").write_text(
        "select customer_id\nfrom segments.pong\n")
    (sql / "segments" / "pong.sql").write_text(
        "-- description: the other half\nselect p.customer_id from segments.ping as p\n")
    cycle = "dependency cycle: sql/segments/ping.sql -> sql/segments/pong.sql -> " \
            "sql/segments/ping.sql"
    assert _problems(sql, external) == [
        f"{SEG}/ping.sql:2:6: {cycle}",
        f"{SEG}/pong.sql:2:27: {cycle}",
    ]


def test_duplicate_name_names_both_files(tmp_path, external):
    sql = _project_sql(tmp_path)
    elsewhere = tmp_path / "drafts" / "segments" / "croissant_buyers.sql"
    elsewhere.parent.mkdir(parents=True)
    elsewhere.write_text("select customer_id from core.customers\n")
    assert _problems(sql, external, paths=[elsewhere], root=tmp_path) == [
        "drafts/segments/croissant_buyers.sql:1:1: duplicate definition of "
        "segments.croissant_buyers: also defined by sql/segments/croissant_buyers.sql"]


def test_a_file_reading_an_invalid_file_is_not_checked_and_says_why(tmp_path, external):
    sql = _project_sql(tmp_path)
    (sql / "segments" / "broken.sql").write_text("select customer_id, nope\nfrom core.customers\n")
    (sql / "marts" / "reads_broken.sql").write_text(
        "select count(*) as members\nfrom segments.broken\n")
    assert _problems(sql, external) == [
        "sql/marts/reads_broken.sql:2:6: not checked: it reads segments.broken, which is invalid",
        f'{SEG}/broken.sql:1:21: referenced column "nope" not found in FROM clause',
    ]


def test_all_bad_files_are_reported_in_one_pass_by_crm_validate(tmp_path, monkeypatch, capsys):
    root = tmp_path / "project"
    sql = _project_sql(root)
    expected = []
    chosen = ["drop", "export", "read_csv", "getenv", "select_star", "unknown_column",
              "bad_test_entry", "naive_occurred_at"]
    for i, case in enumerate(chosen):
        relative, text, messages = HOSTILE[case]
        relative = relative.replace("bad.sql", f"bad_{i}.sql")
        (sql / relative).write_text(text, encoding="utf-8")
        expected += [m.format(f=f"sql/{relative}") for m in messages]
    monkeypatch.setenv("CRM_PROJECT_DIR", str(root))
    monkeypatch.chdir(root)
    assert crm(["validate"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == sorted(expected)
    assert f"{len(chosen)} invalid file(s), {len(chosen)} problem(s)" in err

    # naming files reports on those only
    assert crm(["validate", "sql/segments/bad_0.sql"]) == 1
    out, _ = capsys.readouterr()
    assert out.splitlines() == [expected[0]]

    for relative in sql.glob("*/bad_*.sql"):
        relative.unlink()
    assert crm(["validate"]) == 0
    out, _ = capsys.readouterr()
    assert out.strip().startswith(f"{_tables(sql)} definition(s) valid")


# --------------------------------------------------------------------------------------------
# tricky valid files


TRICKY_VALID = {
    "segments/literal_drop.sql": (
        "-- description: A string literal that holds SQL is data, not a statement.\n"
        "select customer_id, 'drop table core.orders; delete from core.customers' as note\n"
        "from core.customers\n",
        ["core.customers"]),
    "segments/comments_with_sql.sql": (
        "-- delete from core.orders;\n"
        "-- insert into core.customers values (1)\n"
        "select\n"
        "    customer_id  -- drop table core.orders\n"
        "    /* copy core.customers to '/tmp/x.csv'; attach 'x.db'; */\n"
        "from core.customers; -- select * from read_csv('/etc/passwd')\n",
        ["core.customers"]),
    "segments/window_qualify.sql": (
        "select customer_id, order_id, ordered_at\n"
        "from core.orders\n"
        "where customer_id is not null\n"
        "qualify row_number() over (partition by customer_id order by ordered_at desc) = 1\n",
        ["core.orders"]),
    "segments/cte_named_like_a_table.sql": (
        "with orders as (\n"
        "    select customer_id, order_id from core.orders where status = 'completed'\n"
        "),\n\n"
        "customers as (\n"
        "    select customer_id from orders group by customer_id\n"
        ")\n\n"
        "select customer_id from customers\n",
        ["core.orders"]),
    "segments/chained_ctes.sql": (
        "with a as (select customer_id, city from core.customers),\n"
        "b as (select customer_id from a where city = 'Москва'),\n"
        "c as (select b.customer_id from b join core.orders as o using (customer_id))\n"
        "select distinct customer_id from c\n",
        ["core.customers", "core.orders"]),
    "segments/nested_subqueries.sql": (
        "select customer_id\n"
        "from core.customers\n"
        "where customer_id in (\n"
        "    select customer_id from core.orders\n"
        "    where store_id in (select store_id from staging.stores where timezone like 'Asia/%')\n"
        ")\n"
        "and exists (\n"
        "    select 1 from core.sessions as s where s.customer_id = customers.customer_id)\n",
        ["core.customers", "core.orders", "core.sessions", "staging.stores"]),
    "segments/union.sql": (
        "select customer_id from core.orders where channel = 'app'\n"
        "union\n"
        "select customer_id from core.sessions where device = 'ios'\n",
        ["core.orders", "core.sessions"]),
    "segments/quoted_and_unicode.sql": (
        'select "customer_id", \'Москва\' as "City"\nfrom "core"."customers";\n',
        ["core.customers"]),
    "marts/range_table_function.sql": (
        "select cast(r.range as integer) as day_offset, count(c.customer_id) as customers\n"
        "from range(10) as r\n"
        "left join core.customers as c\n"
        "    on date_diff('day', c.registered_at, as_of_end()) = r.range\n"
        "group by r.range\n",
        ["core.customers"]),
    "marts/unnest_tags.sql": (
        "select customer_id, unnest(['new', 'vip']) as tag, t.x\n"
        "from core.customers, unnest([1, 2]) as t(x)\n",
        ["core.customers"]),
    "events/zoned_occurrence.sql": (
        "-- description: each session start, as an instant\n"
        "-- grain: [session_id]\n"
        "-- tests:\n"
        "--   - accepted_values: {column: device, values: [ios, android, web]}\n"
        "--   - expression: {name: positive_views, sql: page_views >= 0}\n"
        "--   - relationships: {column: customer_id, to: core.customers}\n"
        "select customer_id, started_at as occurred_at, session_id, device, page_views\n"
        "from core.sessions\n"
        "where customer_id is not null\n",
        ["core.sessions"]),
}


def test_tricky_valid_files_are_accepted_with_the_right_dependencies(tmp_path, external):
    sql = _project_sql(tmp_path)
    for relative, (text, _) in TRICKY_VALID.items():
        (sql / relative).write_text(text, encoding="utf-8")
    catalog = load_catalog(sql, external)
    assert [str(p) for p in catalog.problems] == []
    by_table = catalog.by_table()
    for relative, (_, deps) in TRICKY_VALID.items():
        table = relative.removesuffix(".sql").replace("/", ".")
        assert by_table[table].deps == deps, table
    # the statement the factory runs has no trailing ';' nor what follows it
    assert by_table["segments.comments_with_sql"].body.rstrip().endswith("from core.customers")
    assert by_table["segments.quoted_and_unicode"].schema == [
        ("customer_id", "BIGINT"), ("City", "VARCHAR")]
    event = by_table["events.zoned_occurrence"]
    assert [decl.name for decl, _ in event.declarations] == [
        "grain_session_id", "accepted_values_device",
        "expression_positive_views", "relationships_customer_id_core_customers"]


@pytest.mark.parametrize(("sql", "deps"), [
    ("select customer_id from core.orders", ["core.orders"]),
    ("with orders as (select 1 as customer_id) select customer_id from orders", []),
    ("with orders as (select customer_id from core.orders) select customer_id from orders",
     ["core.orders"]),
    ("with x as (select customer_id from core.orders), y as (select customer_id from x) "
     "select customer_id from y", ["core.orders"]),
    ("select order_id from (select order_id from (select order_id from staging.orders) s1) s2",
     ["staging.orders"]),
    ("select (select max(session_id) from core.sessions) as m from core.orders",
     ["core.orders", "core.sessions"]),
    ("select customer_id from core.orders o join core.customers c using (customer_id) "
     "where exists (select 1 from staging.stores)",
     ["core.customers", "core.orders", "staging.stores"]),
    ("select customer_id from CORE.Orders", ["core.orders"]),
    ('select "customer_id" from "core"."orders"', ["core.orders"]),
    ("select range as a from range(3)", []),
    ("select customer_id from core.orders union all select customer_id from core.sessions",
     ["core.orders", "core.sessions"]),
    # a CTE is visible after its definition: the second one reads the first, not core.orders
    ("with orders as (select customer_id from core.orders), "
     "o2 as (select customer_id from orders) select customer_id from o2", ["core.orders"]),
    ("select customer_id from core.orders where customer_id in "
     "(with s as (select customer_id from core.sessions) select customer_id from s)",
     ["core.orders", "core.sessions"]),
])
def test_dependency_extraction(sql, deps, tmp_path, external):
    root = _project_sql(tmp_path)
    (root / "marts" / "probe.sql").write_text(sql + "\n")
    catalog = load_catalog(root, external)
    assert catalog.problems == []
    assert catalog.by_table()["marts.probe"].deps == deps


# --------------------------------------------------------------------------------------------
# versions


BASE = """
select customer_id, count(*) as orders
from core.orders
where status = 'completed'
group by customer_id
"""

SAME_VERSION = {
    "whitespace": "select customer_id,count(*) as orders from core.orders "
                  "where status='completed' group by customer_id",
    "comments": "-- description: changed words only\n" + BASE.replace(
        "from core.orders", "from core.orders -- the orders\n/* block */"),
    "keyword_case": "SELECT customer_id, COUNT(*) AS orders FROM core.orders "
                    "WHERE status = 'completed' GROUP BY customer_id",
    "identifier_quoting": BASE.replace("customer_id", '"customer_id"').replace(
        "core.orders", '"core"."orders"'),
    # identifiers that are not output names: DuckDB reads them case-insensitively
    "identifier_case": BASE.replace("core.orders", "Core.Orders").replace(
        "where status", "where Status").replace("group by customer_id", "group by Customer_ID"),
    # an unaliased output column is published under its table's name, whatever the case here
    "output_column_case": BASE.replace("select customer_id", "select Customer_ID"),
    "trailing_semicolon": BASE + ";\n-- end\n",
}

NEW_VERSION = {
    "literal": BASE.replace("'completed'", "'cancelled'"),
    "extra_condition": BASE.replace("where status = 'completed'",
                                    "where status = 'completed' and channel = 'app'"),
    "output_name": BASE.replace("as orders", "as order_count"),
    # the table's column becomes "Orders": a reader (BI, Parquet) sees the new name
    "output_name_case": BASE.replace("as orders", "as Orders"),
    "table": BASE.replace("core.orders", "core.order_items"),
}


def _version(tmp_path: Path, text: str, external) -> str:
    root = tmp_path / "sql"
    if not root.exists():
        _project_sql(tmp_path)
    (root / "marts" / "v.sql").write_text(text)
    catalog = load_catalog(root, external)
    assert catalog.problems == []
    return catalog.by_table()["marts.v"].version


@pytest.mark.parametrize("variant", sorted(SAME_VERSION))
def test_layout_comments_case_and_quoting_keep_the_version(variant, tmp_path, external):
    assert _version(tmp_path, SAME_VERSION[variant], external) == _version(tmp_path, BASE,
                                                                            external)


@pytest.mark.parametrize("variant", sorted(NEW_VERSION))
def test_a_logic_change_makes_a_new_version(variant, tmp_path, external):
    assert _version(tmp_path, NEW_VERSION[variant], external) != _version(tmp_path, BASE,
                                                                            external)


def test_the_version_is_the_same_in_another_process(tmp_path):
    here = fingerprint(sqlglot.parse_one(BASE, read="duckdb"))
    code = ("import sqlglot, sys; from crm_assets.catalog import fingerprint; "
            "print(fingerprint(sqlglot.parse_one(sys.stdin.read(), read='duckdb')))")
    for seed in ("0", "12345"):
        other = subprocess.run([sys.executable, "-c", code], input=BASE, capture_output=True,
                               text=True, check=True,
                               env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip()
        assert other == here
    assert len(here) == 64 and int(here, 16) >= 0  # a sha256 hex digest


def test_fingerprint_leaves_the_tree_as_it_was():
    tree = sqlglot.parse_one('select "Customer_ID" from Core.Orders -- note', read="duckdb")
    before = tree.sql(dialect="duckdb", comments=True)
    fingerprint(tree)
    assert tree.sql(dialect="duckdb", comments=True) == before


def test_a_second_load_reuses_unchanged_files_and_sees_changed_ones(tmp_path, external):
    sql = _project_sql(tmp_path)
    first = load_catalog(sql, external).by_table()
    again = load_catalog(sql, external).by_table()
    assert {t: d.version for t, d in again.items()} == {t: d.version for t, d in first.items()}
    assert {t: d.schema for t, d in again.items()} == {t: d.schema for t, d in first.items()}
    path = sql / "segments" / "croissant_buyers.sql"
    path.write_text(path.read_text().replace("croissant_orders", "orders_with_croissant"))
    changed = load_catalog(sql, external).by_table()["segments.croissant_buyers"]
    assert changed.version != first["segments.croissant_buyers"].version
    assert "orders_with_croissant" in [n for n, _ in changed.schema]


# --------------------------------------------------------------------------------------------
# the disk cache: what the next process (code server, run, step) finds


def _load_as_a_new_process(sql: Path, external, cache: Path):
    """Load as a new process does: nothing in memory, only what the disk cache holds."""
    clear_parse_cache()
    return load_catalog(sql, external, cache_path=cache)


def _summary(catalog) -> list[tuple]:
    return [(d.table, d.version, d.deps, d.schema, d.header, d.body, d.kind,
             [decl.name for decl, _ in d.declarations]) for d in catalog.definitions]


def test_a_new_process_takes_everything_from_the_disk_cache(tmp_path, external):
    sql = _project_sql(tmp_path)
    cache = tmp_path / "target" / "catalog_cache.json"
    first = _load_as_a_new_process(sql, external, cache)
    n = _tables(sql)
    assert (first.parsed, first.bound, first.problems) == (n, n, [])
    assert cache.is_file()

    again = _load_as_a_new_process(sql, external, cache)
    assert (again.parsed, again.bound, again.problems) == (0, 0, [])
    assert _summary(again) == _summary(first)
    # the sqlglot tree is not stored: it is parsed again when lineage or compile asks for it
    restored = again.by_table()["segments.croissant_buyers"].ast
    assert restored.sql(dialect="duckdb") == (
        first.by_table()["segments.croissant_buyers"].ast.sql(dialect="duckdb"))


def test_the_disk_cache_never_hides_a_change(tmp_path, external):
    sql = _project_sql(tmp_path)
    cache = tmp_path / "target" / "catalog_cache.json"
    _load_as_a_new_process(sql, external, cache)

    # an edited file is parsed and bound again; nothing reads croissant_buyers
    segment = sql / "segments" / "croissant_buyers.sql"
    segment.write_text(segment.read_text().replace("croissant_orders", "orders_with_croissant"))
    edited = _load_as_a_new_process(sql, external, cache)
    assert (edited.parsed, edited.bound, edited.problems) == (1, 1, [])
    assert "orders_with_croissant" in [
        n for n, _ in edited.by_table()["segments.croissant_buyers"].schema]

    # an upstream column renamed: the three unchanged files reading core.order_items all use the
    # old name, and each now fails although its own text did not change
    upstream = sql / "core" / "order_items.sql"
    upstream.write_text(upstream.read_text().replace("    p.category,",
                                                     "    p.category as product_category,"))
    renamed = _load_as_a_new_process(sql, external, cache)
    assert renamed.parsed == 1
    bad = sorted({p.path for p in renamed.problems if "category" in p.message})
    assert bad == ["sql/core/customer_features.sql", "sql/events/croissant_purchase.sql",
                   "sql/segments/croissant_buyers.sql"]


def test_a_broken_or_unwritable_disk_cache_costs_time_only(tmp_path, external):
    sql = _project_sql(tmp_path)
    n = _tables(sql)
    cache = tmp_path / "target" / "catalog_cache.json"
    cache.parent.mkdir()
    cache.write_bytes(b"\x80\x05 torn in the middle of a write")
    loaded = _load_as_a_new_process(sql, external, cache)
    assert (loaded.parsed, loaded.problems) == (n, [])
    assert _load_as_a_new_process(sql, external, cache).parsed == 0  # rewritten

    blocked = tmp_path / "a_file" / "catalog_cache.json"  # its folder is a file: not writable
    blocked.parent.write_text("")
    assert _load_as_a_new_process(sql, external, blocked).problems == []
    assert _load_as_a_new_process(sql, external, blocked).parsed == n


def test_crm_validate_in_a_second_process_uses_the_cache(tmp_path):
    root = tmp_path / "project"
    _project_sql(root)
    env = {**os.environ, "CRM_PROJECT_DIR": str(root)}
    env.pop("CRM_CATALOG_CACHE", None)
    n = _tables(root / "sql")

    def validate(**extra) -> str:
        done = subprocess.run([sys.executable, "-m", "crm_assets.cli", "validate"], cwd=root,
                              env={**env, **extra}, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    assert validate() == f"{n} definition(s) valid"
    assert (root / "target" / "catalog_cache.json").is_file()
    assert validate() == (f"{n} definition(s) valid (0 parsed, 0 bound; the rest unchanged, "
                          "from the cache)")
    assert validate(CRM_CATALOG_CACHE="off") == f"{n} definition(s) valid"


# --------------------------------------------------------------------------------------------
# the asset graph


def _asset_graph(defs: dg.Definitions) -> dict[str, list[str]]:
    graph = defs.resolve_asset_graph()
    return {key.to_user_string(): sorted(p.to_user_string() for p in graph.get(key).parent_keys)
            for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string())}


def test_asset_graph_matches_the_snapshot(tmp_path):
    """Asset keys and their dependencies. After an intended change: UPDATE_SNAPSHOTS=1 pytest."""
    graph = _asset_graph(make_project(tmp_path).definitions())
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(json.dumps(graph, indent=2, sort_keys=True) + "\n")
    assert graph == json.loads(SNAPSHOT.read_text()), (
        "the asset graph changed; if that is intended, run UPDATE_SNAPSHOTS=1 pytest "
        "tests/test_catalog.py and commit tests/snapshots/asset_graph.json")


# --------------------------------------------------------------------------------------------
# one file is one asset


COFFEE = textwrap.dedent("""\
    -- description: Customers who bought a coffee, up to the end of the as-of day.
    -- owner: growth@bakery.example
    -- tags: [behavioural]
    -- tests:
    --   - not_null: last_coffee_at
    with coffee_lines as (
        select customer_id, order_id, ordered_at
        from core.order_items
        where category = 'coffee'
            and status = 'completed'
            and ordered_at < as_of_end()
    )

    select
        customer_id,
        max(ordered_at) as last_coffee_at,
        count(distinct order_id) as coffee_orders
    from coffee_lines
    group by customer_id
    """)


def test_adding_one_valid_file_adds_an_asset_that_materialises(tmp_path):
    project = make_project(tmp_path)
    before = _asset_graph(project.definitions())
    (project.sql_dir / "segments" / "coffee_once.sql").write_text(COFFEE)
    defs = project.definitions()
    after = _asset_graph(defs)
    assert after.pop("segments/coffee_once") == ["core/order_items"]
    assert set(before) <= set(after)
    # history and sizes read every segment, so they now also depend on the new one
    changed = {k for k in before if before[k] != after[k]}
    assert all("segments/coffee_once" in after[k] for k in changed)

    result = project.build(as_of=date(2025, 3, 12))
    assert result.success, result.error
    # O2 (C2, merged into person 1) is the only completed order with a coffee (P2)
    assert project.query("SELECT customer_id, coffee_orders FROM segments.coffee_once") == [
        (1, 1)]
    event = project.instance.get_latest_materialization_event(
        dg.AssetKey(["segments", "coffee_once"]))
    metadata = event.asset_materialization.metadata
    assert metadata["dagster/row_count"].value == 1
    assert [c.name for c in metadata["dagster/column_schema"].schema.columns] == [
        "customer_id", "last_coffee_at", "coffee_orders"]
    assert metadata["upstream_tables"].value == ["core.order_items"]
    assert "count(distinct order_id)" in metadata["sql"].value
    spec = defs.resolve_assets_def(dg.AssetKey(["segments", "coffee_once"])).specs_by_key[
        dg.AssetKey(["segments", "coffee_once"])]
    assert set(spec.kinds) == {"duckdb", "sql"}


def test_adding_one_hostile_file_fails_validation_and_starts_no_run(tmp_path, monkeypatch,
                                                                     capsys):
    project = make_project(tmp_path)
    (project.sql_dir / "segments" / "exfiltrate.sql").write_text(
        "-- description: looks harmless\n"
        "select customer_id, content\n"
        "from core.customers, read_text('/etc/passwd')\n")
    message = ("sql/segments/exfiltrate.sql:3:22: table function 'read_text()' is not allowed: "
               "a definition may read only catalogue tables (no files, no other databases)")
    monkeypatch.setenv("CRM_PROJECT_DIR", str(project.settings.project_dir))
    monkeypatch.chdir(project.settings.project_dir)
    assert crm(["validate"]) == 1
    assert capsys.readouterr().out.splitlines() == [message]

    with pytest.raises(CatalogError) as raised:
        project.build(as_of=date(2025, 3, 12))
    assert [str(p) for p in raised.value.problems] == [message]
    assert not project.settings.warehouse_path.exists()
    assert project.instance.get_runs() == []
