"""The segment and event catalogue on a fixture of seven people, every answer computed by hand.

``fixtures/catalogue`` (its README says who is who): business time zone Europe/Berlin, as of
2025-06-30, event days 2025-01-01 to 2025-06-30. The RFM scores are quintiles by percent rank
among the four buyers of the last 365 days (K1, K2, K3, K7):

====  ========  ======  =======  =====================================
who   recency   orders  revenue  R F M -> named segment
====  ========  ======  =======  =====================================
K1    81 days   2       200      1 2 2 -> hibernating
K2    81 days   2       300      1 2 4 -> hibernating
K7    10 days   1       50       4 1 1 -> promising
K3    5 days    4       24000    5 5 5 -> champions
====  ========  ======  =======  =====================================
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime

import dagster as dg
import duckdb
import pytest
from conftest import FIXTURES, PROJECT_DIR, Project, make_project, materialized

from crm_assets.catalog import load_catalog
from crm_assets.defs.runs import run_job
from crm_assets.project import external_tables
from crm_assets.tools.dialects import compile_definition
from crm_assets.warehouse.reference import ReferenceDataError, load_rfm_map
from crm_assets.warehouse.tables import ensure_framework_tables

AS_OF = date(2025, 6, 30)
D = date.fromisoformat
RFM_NAMES = {"champions", "loyal", "potential_loyalist", "new", "promising", "need_attention",
             "about_to_sleep", "at_risk", "cant_lose_them", "hibernating", "lost"}


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> Project:
    project = make_project(tmp_path_factory.mktemp("catalogue"), FIXTURES / "catalogue",
                           business_timezone="Europe/Berlin", partition_start=D("2025-01-01"))
    result = project.build(as_of=AS_OF, first_day=D("2025-01-01"), last_day=AS_OF)
    assert result.success, result.error
    return project


def members(project: Project, segment: str, *columns: str) -> list[tuple]:
    """``(source id, *columns)`` of each member, by source id."""
    extra = "".join(f", s.{c}" for c in columns)
    return project.query(
        f"SELECT i.source_customer_id{extra} FROM segments.{segment} s "
        "JOIN core.customer_identity i USING (customer_id) ORDER BY 1")


def ids(project: Project, segment: str) -> list[str]:
    return [r[0] for r in members(project, segment)]


def events(project: Project, event: str, *columns: str) -> list[tuple]:
    extra = "".join(f", e.{c}" for c in columns)
    return project.query(
        f"SELECT i.source_customer_id, e.event_date{extra} FROM events.{event} e "
        "JOIN core.customer_identity i USING (customer_id) ORDER BY ALL")


# ----------------------------------------------------------------------------------------------
# the RFM map


def _map_connection(tmp_path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp_path / "map.duckdb"))
    ensure_framework_tables(con)
    return con


def test_the_rfm_map_puts_each_of_the_125_combinations_in_exactly_one_named_segment(tmp_path):
    con = _map_connection(tmp_path)
    shipped = PROJECT_DIR / "seeds" / "reference" / "rfm_segment_map.csv"
    assert load_rfm_map(con, shipped) == (13, True)
    assert load_rfm_map(con, shipped) == (13, False)  # the same file again: nothing written
    found = con.execute(
        """SELECT r, f, m, list(DISTINCT x.rfm_segment) AS names, count(*) AS ranges
           FROM range(1, 6) r(r), range(1, 6) f(f), range(1, 6) m(m)
           LEFT JOIN core.rfm_segment_map x
             ON r BETWEEN recency_min AND recency_max AND f BETWEEN frequency_min AND frequency_max
            AND m BETWEEN monetary_min AND monetary_max
           GROUP BY ALL ORDER BY ALL""").fetchall()
    assert len(found) == 125
    assert all(ranges == 1 and len(names) == 1 for *_, names, ranges in found)
    named = {(r, f, m): names[0] for r, f, m, names, _ in found}
    assert set(named.values()) == RFM_NAMES
    # a few cells read off the map by hand
    assert named[5, 5, 1] == "champions" and named[4, 4, 4] == "loyal"
    assert named[1, 4, 5] == "cant_lose_them" and named[1, 4, 3] == "at_risk"
    assert named[1, 1, 5] == "lost" and named[2, 1, 1] == "hibernating"
    assert named[3, 3, 3] == "need_attention" and named[5, 1, 1] == "new"


def test_a_map_with_a_gap_or_an_overlap_is_refused_and_the_old_map_kept(tmp_path):
    con = _map_connection(tmp_path)
    shipped = PROJECT_DIR / "seeds" / "reference" / "rfm_segment_map.csv"
    load_rfm_map(con, shipped)
    lines = shipped.read_text().splitlines()
    overlap = tmp_path / "overlap.csv"  # Can't Lose Them from M3: at risk too
    overlap.write_text("\n".join(
        line.replace(",1,2,4,5,4,5", ",1,2,4,5,3,5") if line.startswith("cant_lose_them")
        else line for line in lines) + "\n")
    with pytest.raises(ReferenceDataError) as err:
        load_rfm_map(con, overlap)
    assert str(err.value) == (
        f"{overlap}: every (recency, frequency, monetary) combination must be in exactly one "
        "segment: R1 F4 M3 in at_risk and cant_lose_them; R1 F5 M3 in at_risk and "
        "cant_lose_them; R2 F4 M3 in at_risk and cant_lose_them; R2 F5 M3 in at_risk and "
        "cant_lose_them")
    gap = tmp_path / "gap.csv"  # no Lost
    gap.write_text("\n".join(line for line in lines if not line.startswith("lost")) + "\n")
    with pytest.raises(ReferenceDataError,
                       match=r"R1 F1 M1 in no segment; .* R1 F1 M5 in no segment"):
        load_rfm_map(con, gap)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([*lines[:2], lines[2].replace(",3,4,", ",4,3,")]) + "\n")
    with pytest.raises(ReferenceDataError,
                       match=r"bad.csv:3: segment 'loyal': needs a name, a label and each score "
                             r"range within 1-5 with min <= max"):
        load_rfm_map(con, bad)
    assert con.execute("SELECT count(*), count(DISTINCT rfm_segment) FROM core.rfm_segment_map"
                       ).fetchone() == (13, 11)


# ----------------------------------------------------------------------------------------------
# variants


def _sql_with(tmp_path, name: str, text: str):
    sql = tmp_path / "sql"
    shutil.copytree(PROJECT_DIR / "sql", sql)
    (sql / "segments" / name).write_text(text, encoding="utf-8")
    return sql


CITY_VARIANTS = """\
-- description: People of a city.
-- params: {min_orders: 1}
-- variants:
--   moscow: {city: Москва}
--   kazan: {city: Казань, min_orders: 3}
select customer_id, orders_total
from core.customer_features
where city = param('city') and orders_total >= param('min_orders')
"""


def test_variants_are_definitions_of_their_own(tmp_path):
    sql = _sql_with(tmp_path, "city_buyers.sql", CITY_VARIANTS)
    catalog = load_catalog(sql, external_tables())
    assert [str(p) for p in catalog.problems] == []
    tables = catalog.by_table()
    assert "segments.city_buyers" not in tables
    moscow, kazan = tables["segments.city_buyers_moscow"], tables["segments.city_buyers_kazan"]
    assert (moscow.variant, moscow.params) == ("moscow", {"min_orders": 1, "city": "Москва",
                                                          "variant": "moscow"})
    assert "where city = 'Москва' and orders_total >= 1" in moscow.body
    assert "where city = 'Казань' and orders_total >= 3" in kazan.body
    assert moscow.version != kazan.version and moscow.deps == ["core.customer_features"]
    assert [n for n, _ in kazan.schema] == ["customer_id", "orders_total"]
    compiled = compile_definition(kazan, "postgres", as_of=AS_OF, business_timezone="UTC")
    assert "city = 'Казань' AND orders_total >= 3" in compiled.sql


def test_a_param_without_a_value_or_a_value_never_used_is_reported_where_it_is(tmp_path):
    text = CITY_VARIANTS.replace("kazan: {city: Казань, min_orders: 3}",
                                 "kazan: {min_orders: 3, town: Казань}")
    sql = _sql_with(tmp_path, "city_buyers.sql", text)
    problems = [str(p) for p in load_catalog(sql, external_tables()).problems]
    f = "sql/segments/city_buyers.sql"
    assert problems == [
        f"{f}:5:6: variant 'kazan': sets 'town', which the query never uses"]
    text = CITY_VARIANTS.replace("kazan: {city: Казань, min_orders: 3}", "kazan: {min_orders: 3}")
    sql = _sql_with(tmp_path / "2", "city_buyers.sql", text)
    assert [str(p) for p in load_catalog(sql, external_tables()).problems] == [
        f"{f}:8:14: param 'city' has no value in variant 'kazan': give it under 'params:' "
        "(a default) or in every variant"]


# ----------------------------------------------------------------------------------------------
# segments, on the fixture


def test_rfm_scores_and_named_segments(catalogue):
    assert catalogue.query(
        "SELECT i.source_customer_id, rfm_recency, rfm_frequency, rfm_monetary, rfm_cell, "
        "rfm_segment, rfm_segment_label FROM core.customer_rfm JOIN core.customer_identity i "
        "USING (customer_id) ORDER BY 1") == [
        ("K1", 1, 2, 2, "122", "hibernating", "Hibernating"),
        ("K2", 1, 2, 4, "124", "hibernating", "Hibernating"),
        ("K3", 5, 5, 5, "555", "champions", "Champions"),
        ("K7", 4, 1, 1, "411", "promising", "Promising")]
    assert ids(catalogue, "rfm_hibernating") == ["K1", "K2"]
    assert ids(catalogue, "rfm_champions") == ["K3"]
    assert ids(catalogue, "rfm_promising") == ["K7"]
    for name in RFM_NAMES - {"hibernating", "champions", "promising"}:
        assert ids(catalogue, f"rfm_{name}") == [], name


def test_system_segments(catalogue):
    assert ids(catalogue, "lifecycle_active") == ["K1", "K2", "K3"]
    assert ids(catalogue, "lifecycle_new") == ["K7"]  # first order 10 days ago
    assert ids(catalogue, "lifecycle_prospect") == ["K4", "K5", "K6"]
    assert ids(catalogue, "lifecycle_at_risk") == ids(catalogue, "lifecycle_lapsed") == []
    # percent rank of the 365-day spend among the 4 buyers: 0, 1/3, 2/3, 1
    assert ids(catalogue, "value_tier_bronze") == ["K1", "K7"]
    assert ids(catalogue, "value_tier_silver") == ["K2"]
    assert ids(catalogue, "value_tier_gold") == []
    assert ids(catalogue, "value_tier_platinum") == ["K3"]
    assert [ids(catalogue, f"preferred_channel_{c}") for c in
            ("in_store", "app", "web", "delivery")] == [["K1"], ["K2"], ["K3"], ["K7"]]
    assert catalogue.query("SELECT age_band, gender, customers, buyers_365d FROM "
                           "marts.demographic_distribution ORDER BY 1, 2") == [
        ("25-34", "female", 3, 2), ("35-44", "female", 1, 1), ("35-44", "male", 1, 1),
        ("45-54", "male", 1, 0), ("55-64", "male", 1, 0)]
    assert catalogue.query("SELECT city, customers, buyers_365d, revenue_365d FROM "
                           "marts.geographic_distribution ORDER BY 1") == [
        ("Казань", 3, 2, 24300), ("Москва", 4, 2, 250)]


def test_custom_segments(catalogue):
    assert ids(catalogue, "women_25_34_moscow") == ["K1", "K7"]
    assert ids(catalogue, "women_25_34_kazan") == ["K5"]  # K3 is 35
    assert members(catalogue, "regular_big_spenders", "orders_365d", "avg_order_value") == [
        ("K3", 4, 6000.0)]
    # opens since 1 January (6 months before the end of 30 June): K4 5, K5 4
    assert members(catalogue, "email_openers", "emails_opened") == [("K4", 5)]
    # a month back from the end of 30 June (Berlin): from 1 June
    assert members(catalogue, "recent_buyers", "orders_last_month") == [("K3", 2), ("K7", 1)]
    # W2 lasted exactly 180 s: not more than 3 minutes
    assert members(catalogue, "long_web_visitors", "longest_session_seconds") == [("K1", 200)]
    # K5 opened 5 e-mails but 6 pushes in the year: push is their channel
    assert members(catalogue, "prefers_email", "email_responses", "other_responses") == [
        ("K4", 6, 0)]


def test_each_variant_is_its_own_asset_and_a_run_can_take_one(catalogue, tmp_path):
    project = catalogue.copy(tmp_path)
    defs = project.definitions()
    graph = defs.resolve_asset_graph()
    rfm = [k for k in graph.get_all_asset_keys() if k.path[:1] == ["segments"]
           and k.path[-1].startswith("rfm_")]
    assert {k.path[-1] for k in rfm} == {f"rfm_{n}" for n in RFM_NAMES}
    assert graph.get(dg.AssetKey(["segments", "rfm_lost"])).code_version != graph.get(
        dg.AssetKey(["segments", "rfm_new"])).code_version
    result = run_job(defs, "build_all", instance=project.instance,
                     asset_selection=[dg.AssetKey(["segments", "rfm_lost"])],
                     tags={"crm/as_of_date": AS_OF.isoformat()})
    assert result.success, result.error
    assert materialized(project, result.run_id) == {"segments/rfm_lost"}


# ----------------------------------------------------------------------------------------------
# events


def test_reactivation_counts_business_days_across_a_clock_change(catalogue):
    # A1 on 10 January 23:30 (UTC+1), A2 on 10 April 00:30 (UTC+2): 90 days by the calendar of
    # Berlin, 89 days of elapsed time; K2's gap is 89 days by the calendar: no reactivation
    assert events(catalogue, "reactivation", "order_id", "gap_days", "occurred_at") == [
        ("K1", D("2025-04-10"), "A2", 90, datetime(2025, 4, 9, 22, 30, tzinfo=UTC))]


def test_other_events(catalogue):
    assert events(catalogue, "large_purchase", "order_id") == [
        ("K3", D("2025-05-01"), "C1"), ("K3", D("2025-05-20"), "C2"),
        ("K3", D("2025-06-05"), "C3"), ("K3", D("2025-06-25"), "C4")]
    # the days built start on 1 January: the December opens are before them
    assert [(who, day.month) for who, day in events(catalogue, "email_open")] == [
        ("K4", 2), ("K4", 3), ("K4", 4), ("K4", 5), ("K4", 6),
        ("K5", 2), ("K5", 3), ("K5", 4), ("K5", 5)]
    assert events(catalogue, "unsubscribed", "channel") == [("K5", D("2025-06-10"), "email")]
    assert events(catalogue, "long_web_session", "session_id", "duration_seconds") == [
        ("K1", D("2025-06-15"), "W1", 200)]


def test_segment_history_sees_segments_as_of_each_day_and_entries_and_exits_are_events(
        catalogue, tmp_path, monkeypatch, capsys):
    project = catalogue.copy(tmp_path)
    # a segment's first computed day is its starting population: nobody "entered" it
    assert project.scalar("SELECT count(*) FROM marts.segment_membership_history") > 0
    assert project.scalar("SELECT count(*) FROM events.segment_entered") == 0
    # a segment over another one: its members are recent_buyers' of the same day
    (project.sql_dir / "segments" / "recent_again.sql").write_text(
        "-- description: recent buyers, read from their segment\n"
        "select customer_id from segments.recent_buyers\n", encoding="utf-8")
    project.use_from_cli(monkeypatch)
    from crm_assets.cli.main import main

    # as of 5 May (from 5 April): K1, K2 (10 April), K3 (1 May); as of 10 June (from 10 May): K3;
    # as of 30 June: K3 and K7. recent_buyers is rebuilt with it, though not named.
    assert main(["segment-history", "recent_again", "--from", "2025-05-05", "--every", "36",
                 "-q"]) == 0
    for segment in ("recent_buyers", "recent_again"):
        assert project.query(
            "SELECT i.source_customer_id, valid_from, valid_to FROM "
            "marts.segment_membership_history h JOIN core.customer_identity i "
            "USING (customer_id) WHERE segment = ? ORDER BY 1", [segment]) == [
            ("K1", D("2025-05-05"), D("2025-06-10")), ("K2", D("2025-05-05"), D("2025-06-10")),
            ("K3", D("2025-05-05"), None), ("K7", AS_OF, None)], segment
        assert project.query(
            "SELECT i.source_customer_id, e.event_date FROM events.segment_entered e "
            "JOIN core.customer_identity i USING (customer_id) WHERE segment = ? ORDER BY 1",
            [segment]) == [("K7", AS_OF)]  # 5 May is now the first day: K1, K2, K3 were there
        assert project.query(
            "SELECT i.source_customer_id, e.event_date FROM events.segment_exited e "
            "JOIN core.customer_identity i USING (customer_id) WHERE segment = ? ORDER BY 1",
            [segment]) == [("K1", D("2025-06-10")), ("K2", D("2025-06-10"))]
    # the size of the segment over the as-of dates, for Dagster's plots
    observations = project.instance.fetch_observations(
        dg.AssetKey(["segments", "recent_again"]), limit=10).records
    assert sorted((o.asset_observation.metadata["as_of_date"].value,
                   o.asset_observation.metadata["members"].value) for o in observations) == [
        ("2025-05-05", 3), ("2025-06-10", 1), ("2025-06-30", 2)]


# ----------------------------------------------------------------------------------------------
# before publishing: crm sample, crm diff


def test_sample_is_reproducible_and_shows_the_columns_that_put_members_there(
        catalogue, monkeypatch, capsys):
    catalogue.use_from_cli(monkeypatch)
    from crm_assets.cli.main import main

    def sample(*args: str) -> list[str]:
        capsys.readouterr()
        assert main(["sample", *args]) == 0
        return capsys.readouterr().out.splitlines()

    out = sample("rfm_hibernating", "-n", "5")
    assert out[0] == "rfm_hibernating: 2 members as of 2025-06-30; 2 of them (seed 0):"
    assert out[1].split() == ["customer_id", "rfm_recency", "rfm_frequency", "rfm_monetary",
                              "rfm_cell", "revenue_365d"]
    assert sorted(line.split()[1:] for line in out[2:]) == [
        ["1", "2", "2", "122", "200.00"], ["1", "2", "4", "124", "300.00"]]
    picks = {tuple(sample("lifecycle_prospect", "-n", "1", "--seed", str(seed), "--csv"))
             for seed in range(12)}
    assert all(p[0] == "customer_id,first_order_at,last_order_at,recency_days,orders_total"
               for p in picks)
    assert len(picks) > 1  # another seed, another person (3 to pick from, 12 seeds)
    assert sample("lifecycle_prospect", "-n", "1", "--seed", "7") == sample(
        "lifecycle_prospect", "-n", "1", "--seed", "7")


def test_diff_runs_the_definition_on_disk_as_of_a_day_without_writing(
        catalogue, tmp_path, monkeypatch, capsys):
    project = catalogue.copy(tmp_path)
    project.use_from_cli(monkeypatch)
    from crm_assets.cli.main import main

    def diff(*args: str) -> list[str]:
        capsys.readouterr()
        assert main(["diff", *args]) == 0
        return capsys.readouterr().out.splitlines()

    person = dict(project.query("SELECT customer_id, source_customer_id "
                                "FROM core.customer_identity"))
    # as of 5 May the month back holds K1, K2 (10 April) and K3; published (30 June): K3, K7
    out = diff("recent_buyers", "--as-of", "2025-05-05")
    assert out[1] == "  published 2, would be 3: +2 entering, -1 leaving"
    assert sorted(person[int(line.split()[0])] for line in out[4:6]) == ["K1", "K2"]
    assert person[int(out[8].split()[0])] == "K7"
    # the features are computed as of that day: on 15 June K7 had not bought yet
    out = diff("lifecycle_new", "--as-of", "2025-06-15")
    assert out[1] == "  published 1, would be 0: +0 entering, -1 leaving"
    # a changed definition on disk: three months back instead of one
    path = project.sql_dir / "segments" / "recent_buyers.sql"
    path.write_text(path.read_text().replace("interval 1 month", "interval 3 month"))
    out = diff("recent_buyers")
    assert out[0].startswith("recent_buyers as of 2025-06-30 (definition ")
    assert out[1] == "  published 2, would be 4: +2 entering, -0 leaving"
    # nothing was written: the members, the history and the features are as they were
    assert ids(project, "recent_buyers") == ["K3", "K7"]
    assert ids(project, "lifecycle_new") == ["K7"]
    assert project.scalar("SELECT count(*) FROM marts.segment_membership_history WHERE "
                          "segment = 'recent_buyers'") == 2
