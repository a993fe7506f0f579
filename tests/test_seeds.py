"""The shipped demo data: reproducible from the generator, and identity meets its bars on it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

from crm_assets.catalog import load_catalog
from crm_assets.demo import generate
from crm_assets.identity import dedupe_report, resolve_identity
from crm_assets.ingest.loader import load_source
from crm_assets.project import external_tables
from crm_assets.warehouse import ensure_framework_tables, prepare_connection
from crm_assets.warehouse.contacts import check_contacts
from crm_assets.warehouse.models import materialize_model

PROJECT = Path(__file__).resolve().parents[1]
SEEDS = PROJECT / "seeds"


def _digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.csv"))}


def test_seeds_are_what_the_generator_makes(tmp_path):
    """`crm generate --customers 3000 --seed 42 --out seeds` made them, byte for byte, and small
    (``seeds/reference/``, the project's own reference data, aside)."""
    generate(tmp_path / "seeds", customers=3000, seed=42)
    shipped = {p: d for p, d in _digests(SEEDS).items() if not p.startswith("reference/")}
    assert _digests(tmp_path / "seeds") == shipped
    assert sum(p.stat().st_size for p in SEEDS.rglob("*") if p.is_file()) < 5 * 2**20


@pytest.fixture(scope="module")
def resolved(tmp_path_factory):
    con = duckdb.connect(str(tmp_path_factory.mktemp("seeds") / "crm.duckdb"))
    prepare_connection(con)
    ensure_framework_tables(con)
    for table in ("stores", "customers"):
        load_source(con, table, SEEDS)
    by_table = load_catalog(PROJECT / "sql", external_tables()).by_table()
    check_contacts(con, "test")
    for table in ("staging.stores", "staging.customers"):
        materialize_model(con, by_table[table], run_id="test")
    resolve_identity(con)
    yield con
    con.close()


def test_identity_meets_the_bars_on_the_seeds(resolved):
    rows = {r["label"]: r for r in dedupe_report(resolved, SEEDS / "_truth" / "customers.csv")}
    overall = rows["all"]
    assert overall["precision"] >= 0.99
    assert overall["recall"] >= 0.95
    # the traps: nobody is merged with a different person through a shared or fake contact
    for trap in ("household_phone", "company_email", "placeholder_contact", "namesake"):
        row = rows[trap]
        assert row["records"] > 0, f"the seeds must contain {trap} records"
    assert rows["excluded_not_in_staging"]["records"] == 0
    # ... except namesakes living together (one name, one phone) where a record has no birth
    # date: nothing tells those apart. Every false merge is such a pair; none joins two known,
    # different birth dates, not even through a chain.
    resolved.execute(f"""CREATE OR REPLACE TEMP TABLE truth AS SELECT customer_id AS source_id,
        person_id, dirt FROM read_csv('{SEEDS / "_truth" / "customers.csv"}', all_varchar=true)""")
    wrong = resolved.execute("""
        WITH r AS (SELECT i.source_customer_id AS id, i.customer_id, t.person_id, t.dirt,
                          s.birth_date
                   FROM core.customer_identity i JOIN truth t ON t.source_id = i.source_customer_id
                   JOIN staging.customers s USING (source_customer_id))
        SELECT a.dirt, b.dirt, a.birth_date, b.birth_date
        FROM r a JOIN r b ON a.customer_id = b.customer_id AND a.id < b.id
        WHERE a.person_id <> b.person_id""").fetchall()
    assert wrong, "the seeds hold namesakes living together, one of them without a birth date"
    for dirt_a, dirt_b, birth_a, birth_b in wrong:
        assert "namesake_household" in dirt_a and "namesake_household" in dirt_b
        assert birth_a is None or birth_b is None
    births = resolved.execute("""SELECT max(n) FROM (SELECT i.customer_id,
        count(DISTINCT s.birth_date) AS n FROM core.customer_identity i
        JOIN staging.customers s USING (source_customer_id) GROUP BY 1)""").fetchone()[0]
    assert births == 1


def test_every_source_record_has_exactly_one_person(resolved):
    staged, mapped, distinct = resolved.execute(
        "SELECT (SELECT count(*) FROM staging.customers), count(*), "
        "count(DISTINCT source_customer_id) FROM core.customer_identity").fetchone()
    assert staged == mapped == distinct
