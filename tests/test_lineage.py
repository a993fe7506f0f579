"""Column lineage: traced by sqlglot when an asset materialises, and printed by ``crm lineage``.

The materialisation test runs real assets of the real definitions on a real Dagster instance, over
empty typed upstream tables (lineage depends on the SQL and the upstream schemas, not on rows), and
reads back the ``dagster/column_lineage`` metadata Dagster stored.
"""

from __future__ import annotations

import dataclasses
from datetime import date

import dagster as dg
import pytest
import sqlglot.lineage
from conftest import make_project

from crm_assets.catalog import lineage as lineage_module
from crm_assets.catalog.lineage import column_lineage, passed_through
from crm_assets.cli.main import main
from crm_assets.defs.partitions import partition_range_tags
from crm_assets.defs.resources import Warehouse
from crm_assets.project import load_project_catalog
from crm_assets.settings import load_settings
from crm_assets.tools.lineage import LineageTracer, format_tree

SEGMENT = dg.AssetKey(["segments", "croissant_buyers"])
EVENT = dg.AssetKey(["events", "croissant_purchase"])
STORES = dg.AssetKey(["staging", "stores"])
SIZES = dg.AssetKey(["marts", "segment_sizes_daily"])


@pytest.fixture(scope="module")
def catalog():
    return load_project_catalog(load_settings())


def _deps(metadata) -> dict[str, set[tuple[str, str]]]:
    lineage = metadata["dagster/column_lineage"].value
    return {column: {(dep.asset_key.to_user_string(), dep.column_name) for dep in deps}
            for column, deps in lineage.deps_by_column.items()}


def test_materialisation_attaches_column_lineage_and_survives_a_failing_column(
        tmp_path, monkeypatch):
    project = make_project(tmp_path)
    catalog = load_project_catalog(project.settings)
    warehouse = Warehouse(database=str(project.settings.warehouse_path))
    with warehouse.connect() as con:  # empty typed upstream tables
        for table in ("core.order_items", "raw.stores"):
            cols = ", ".join(f'"{n}" {t}' for n, t in catalog.schema_of(table))
            con.execute(f"CREATE TABLE {table} ({cols})")

    real = sqlglot.lineage.lineage

    def flaky(column, sql, *args, **kwargs):  # sqlglot failing on one column of the segment
        if "croissant_lines" in str(sql) and column in (None, "croissant_orders"):
            raise sqlglot.errors.SqlglotError("simulated failure")
        return real(column, sql, *args, **kwargs)

    monkeypatch.setattr(lineage_module, "lineage", flaky)
    job = project.definitions().resolve_job_def("build_all")
    result = job.execute_in_process(
        instance=project.instance, asset_selection=[SEGMENT, EVENT, STORES, SIZES],
        tags={"crm/as_of_date": "2025-03-12",
              **partition_range_tags(date(2025, 3, 11), date(2025, 3, 12))})
    assert result.success

    def metadata(key):
        return project.instance.get_latest_materialization_event(key).asset_materialization.metadata

    segment = _deps(metadata(SEGMENT))
    assert segment["first_croissant_at"] == {("core/order_items", "ordered_at")}
    assert segment["customer_id"] == {("core/order_items", "customer_id")}
    assert "croissant_orders" not in segment  # skipped, logged, the run went on
    event = _deps(metadata(EVENT))
    assert event["occurred_at"] == event["event_date"] == {("core/order_items", "ordered_at")}
    assert event["croissants"] == {("core/order_items", "quantity")}
    stores = _deps(metadata(STORES))
    assert stores["timezone"] == {("raw/stores", "timezone")}
    assert "_reject_reason" not in stores  # split off into staging.rejects, not in the table
    # it reads only the segment history and runs, written by every segment asset and not assets
    # of their own: no column lineage rather than a dependency on a key that does not exist
    assert "dagster/column_lineage" not in metadata(SIZES)


def test_column_lineage_traces_through_ctes_joins_and_aggregates(catalog):
    d = catalog.by_table()["core.order_items"]
    traced = column_lineage(d, {dep: catalog.schema_of(dep) for dep in d.deps})
    assert not traced.errors
    assert traced.deps["line_amount"] == [("staging.order_items", "quantity"),
                                          ("staging.order_items", "unit_price")]
    assert traced.deps["category"] == [("staging.products", "category")]
    assert traced.deps["customer_id"] == [("core.orders", "customer_id")]


def test_tree_goes_down_to_raw(catalog):
    tree = format_tree(LineageTracer(catalog).tree("segments.croissant_buyers",
                                                    "first_croissant_at"))
    lines = tree.splitlines()
    assert lines[0] == "segments.croissant_buyers.first_croissant_at"
    assert lines[1] == "└── core.order_items.ordered_at"
    # store-local time read in the store's zone: both feed the instant
    assert any(line.endswith("raw.orders.ordered_at  (source)") for line in lines)
    assert any(line.endswith("raw.stores.timezone  (source)") for line in lines)


def test_unknown_column_names_the_columns(catalog):
    with pytest.raises(KeyError, match="has no column 'nope'; its columns: customer_id"):
        LineageTracer(catalog).tree("segments.croissant_buyers", "nope")


def test_crm_lineage_cli(capsys):
    assert main(["lineage", "croissant_buyers.croissant_orders"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "segments.croissant_buyers.croissant_orders",
        "└── core.order_items.order_id",
        "    └── staging.order_items.order_id",
        "        └── raw.order_items.order_id  (source)",
    ]


def test_passed_through_names_the_columns_a_value_is_copied_from(catalog):
    """A night builds a window-function event for the people with a row in its day only when
    ``occurred_at`` is a column copied unchanged (the shipped first_purchase and reactivation)."""
    by_table = catalog.by_table()
    schemas = {t: catalog.schema_of(t) for t in ("core.orders", "core.interactions")}

    def traced(sql: str) -> list[tuple[str, str]] | None:
        d = dataclasses.replace(by_table["events.first_purchase"], body=sql, _ast=None,
                                deps=["core.orders", "core.interactions"])
        return passed_through(d, schemas, "occurred_at")

    assert passed_through(by_table["events.reactivation"], schemas, "occurred_at") == [
        ("core.orders", "ordered_at")]
    # renamed in a CTE, then from a union of two tables: both
    assert traced("with o as (select customer_id, ordered_at as t from core.orders) "
                  "select customer_id, t as occurred_at from o union all "
                  "select customer_id, occurred_at from core.interactions") == [
        ("core.interactions", "occurred_at"), ("core.orders", "ordered_at")]
    # computed, cast or aggregated: an occurrence's instant need not be a row's
    assert traced("select customer_id, ordered_at + interval 30 day as occurred_at "
                  "from core.orders") is None
    assert traced("select customer_id, cast(ordered_at as timestamptz) as occurred_at "
                  "from core.orders") is None
    assert traced("select customer_id, max(ordered_at) as occurred_at from core.orders "
                  "group by 1") is None
    assert traced("select customer_id, coalesce(o.ordered_at, i.occurred_at) as occurred_at "
                  "from core.orders o join core.interactions i using (customer_id)") is None
