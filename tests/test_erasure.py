"""Erasure on request: a person with several source records and a merge is removed from every
table, snapshot and export, stays out when their records arrive again, and nobody else changes."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb

from crm_assets.cli.main import main
from crm_assets.serving.snapshot import MANIFEST_FILE, VIEWS_FILE
from crm_assets.warehouse.tables import HIGHEST_ID_SQL

D = date.fromisoformat
CUSTOMERS_HEADER = ("customer_id,first_name,last_name,email,phone,gender,birth_date,city,"
                    "home_store_id,registered_at,email_opt_in,sms_opt_in,push_opt_in,updated_at\n")
ORDERS_HEADER = "order_id,customer_id,store_id,ordered_at,channel,status,total_amount\n"
# what Ivan (C1, C2 in the tiny fixture; C10, C11 below) is known by
EMAILS = ("ivan@yandex.ru", "ivan.work@mail.ru")
PHONE_DIGITS = ("9161234567", "9995554433")
NAMES = ("иван", "петров")


def _hits(values: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(where, value) pairs that hold Ivan's e-mail, phone or name."""
    out = []
    for where, value in values:
        text = str(value).lower()
        digits = "".join(ch for ch in text if ch.isdigit())
        if (any(e in text for e in EMAILS) or any(p in digits for p in PHONE_DIGITS)
                or any(n == text.strip() or f" {n}" in f" {text}" for n in NAMES)):
            out.append((where, value))
    return out


def _warehouse_values(path: Path) -> list[tuple[str, str]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        columns = con.execute(
            "SELECT schema_name, table_name, column_name FROM duckdb_columns() c "
            "JOIN duckdb_tables() t USING (database_name, schema_name, table_name) "
            "WHERE c.database_name = current_database()").fetchall()
        return [(f"{s}.{t}.{c}", r[0]) for s, t, c in columns for r in con.execute(
            f'SELECT DISTINCT CAST("{c}" AS VARCHAR) FROM "{s}"."{t}" WHERE "{c}" IS NOT NULL'
        ).fetchall()]
    finally:
        con.close()


def _file_values(files: list[Path]) -> list[tuple[str, str]]:
    con = duckdb.connect()
    try:
        out = []
        for f in files:
            reader = "read_parquet" if f.suffix == ".parquet" else "read_csv"
            relation = f"{reader}('{f}'" + (", all_varchar = true)" if reader == "read_csv"
                                             else ")")
            for row in con.execute(f"SELECT * FROM {relation}").fetchall():
                out += [(str(f), str(v)) for v in row if v is not None]
        return out
    finally:
        con.close()


def _current_files(folder: Path) -> list[Path]:
    manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    return [Path(p) for files in manifest["tables"].values() for p in files]


def _everyone_else(project, ids: list[int], sources: list[str]) -> dict[str, list[tuple]]:
    where_id = f"customer_id NOT IN ({', '.join(map(str, ids))})"
    where_source = f"customer_id NOT IN ({', '.join(repr(s) for s in sources)})"
    return {t: project.query(f"SELECT * EXCLUDE (_batch) FROM {t} WHERE {w} ORDER BY ALL")
            if t.startswith("core") else project.query(f"SELECT * FROM {t} WHERE {w} ORDER BY ALL")
            for t, w in (("core.customers", where_id), ("core.orders", where_id),
                         ("events.croissant_purchase", where_id),
                         ("marts.segment_membership_history", where_id),
                         ("raw.customers", f"coalesce({where_source}, true)"),
                         ("raw.orders", f"coalesce({where_source}, true)"))}


def test_erase_a_merged_person_from_every_layer_and_keep_them_out(built, tmp_path, monkeypatch,
                                                                  capsys):
    project = built.copy(tmp_path)
    # Ivan signs up again with a work address (a new person), then a record links both: a merge
    (project.input_dir / "customers_2025-03-13.csv").write_text(
        CUSTOMERS_HEADER
        + "C10,Иван,Петров,ivan.work@mail.ru,+7 999 555-44-33,М,1990-03-15,Москва,S1,"
          "2025-03-13 10:00:00,true,true,false,2025-03-13 10:00:00\n", encoding="utf-8")
    (project.input_dir / "orders_2025-03-13.csv").write_text(
        ORDERS_HEADER + "O20,C10,S1,2025-03-13 11:00:00,in_store,completed,50.00\n",
        encoding="utf-8")
    assert project.nightly(D("2025-03-13")).success
    (project.input_dir / "customers_2025-03-14.csv").write_text(
        CUSTOMERS_HEADER
        + "C11,Иван,Петров,ivan.work@mail.ru,+7 916 123-45-67,М,1990-03-15,Москва,S1,"
          "2025-03-14 10:00:00,true,true,false,2025-03-14 10:00:00\n", encoding="utf-8")
    assert project.nightly(D("2025-03-14")).success
    ids = sorted({r[0] for r in project.query(
        "SELECT unnest([any_customer_id, customer_id]) FROM core.customer_ids WHERE customer_id = "
        "(SELECT customer_id FROM core.customer_identity WHERE source_customer_id = 'C1')")})
    sources = [r[0] for r in project.query(
        "SELECT source_customer_id FROM core.customer_identity WHERE customer_id = "
        "(SELECT customer_id FROM core.customer_identity WHERE source_customer_id = 'C1') "
        "ORDER BY 1")]
    assert sources == ["C1", "C10", "C11", "C2"] and len(ids) == 2  # a merge: two ids, one person
    assert project.scalar("SELECT count(*) FROM meta.customer_merges") == 1
    assert _hits(_warehouse_values(project.settings.warehouse_path))  # the search can find him
    others = _everyone_else(project, ids, sources)
    bi = duckdb.connect(str(project.settings.serving_path / VIEWS_FILE), read_only=True)
    orders_seen = bi.execute("SELECT count(*) FROM core.orders").fetchone()[0]

    project.use_from_cli(monkeypatch)
    assert main(["erase", "--email", "IVAN@Yandex.ru", "--reason", "request 42", "-q"]) == 0
    assert f"person {', '.join(map(str, ids))}: 4 source record(s)" in capsys.readouterr().out

    # a BI session open across the erasure keeps working on the snapshot it opened
    assert bi.execute("SELECT count(*) FROM core.orders").fetchone()[0] == orders_seen
    bi.close()
    # nowhere: no table of the warehouse, no file of the current snapshots, no export
    serving, contacts = project.settings.serving_path, project.settings.contacts_path
    exports = sorted((contacts / "exports").rglob("*.csv"))
    assert exports
    assert _hits(_warehouse_values(project.settings.warehouse_path)) == []
    assert _hits(_file_values(_current_files(serving) + _current_files(contacts) + exports)) == []
    # everyone else is as they were
    assert _everyone_else(project, ids, sources) == others
    # the request is recorded, without personal data
    (selector, reason, erased, records, deleted), = project.query(
        "SELECT selector, reason, customer_ids, source_records, rows_deleted FROM meta.erasures")
    assert (selector, reason, sorted(erased), records) == ("email", "request 42", ids, 4)
    assert json.loads(deleted)["raw.customers"] == 4
    assert _hits(_warehouse_values(project.settings.warehouse_path)) == []

    # twice is harmless
    assert main(["erase", "--email", "ivan@yandex.ru", "-q"]) == 0
    assert "nobody found" in capsys.readouterr().out
    # his records, a new record with his address and a new order of his arrive: nothing loads
    (project.input_dir / "customers_2025-03-15.csv").write_text(
        CUSTOMERS_HEADER
        + "C1,Иван,Петров,ivan@yandex.ru,+7 916 123-45-67,М,1990-03-15,Москва,S1,"
          "2025-01-05 10:00:00,true,true,false,2025-03-15 10:00:00\n"
        + "C30,Ivan,P,Ivan@YANDEX.ru,,,,,S1,2025-03-15 10:00:00,true,,,"
          "2025-03-15 10:00:00\n"
        + "C31,Мария,Кузнецова,maria@mail.ru,,Ж,,Москва,S1,2025-03-15 10:00:00,true,,,"
          "2025-03-15 10:00:00\n", encoding="utf-8")
    (project.input_dir / "orders_2025-03-15.csv").write_text(
        ORDERS_HEADER + "O30,C2,S1,2025-03-15 11:00:00,in_store,completed,70.00\n",
        encoding="utf-8")
    # and a day passes: the snapshots from before the erasure expire (pretend the day passed)
    for folder in (serving, contacts):
        manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
        for g in manifest["generations"]:
            if "expires_at" in g:
                g["expires_at"] = "2000-01-01T00:00:00+00:00"
        (folder / MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
    assert project.nightly(D("2025-03-15")).success
    assert project.query("SELECT source_file, suppressed_rows FROM meta.loaded_files "
                         "WHERE source_file LIKE '%2025-03-15%' ORDER BY 1") == [
        ("customers_2025-03-15.csv", 2), ("orders_2025-03-15.csv", 1)]
    assert project.scalar("SELECT count(*) FROM core.customer_identity "
                          "WHERE source_customer_id = 'C31'") == 1  # someone else: loaded
    assert _hits(_warehouse_values(project.settings.warehouse_path)) == []
    # after the retention delay no file under either folder holds him
    everything = sorted(serving.rglob("*.parquet")) + sorted(contacts.rglob("*.parquet"))
    assert everything and _hits(_file_values(everything)) == []


def test_erasing_an_unknown_id_erases_nobody_and_moves_no_id(built, tmp_path, monkeypatch, capsys):
    project = built.copy(tmp_path)
    highest = project.scalar("SELECT max(customer_id) FROM core.customer_identity")
    project.use_from_cli(monkeypatch)
    assert main(["erase", "--customer", "999999", "-q"]) == 0
    assert "nobody found" in capsys.readouterr().out
    assert project.query("SELECT customer_ids, source_records FROM meta.erasures") == [([], 0)]
    assert project.scalar("SELECT max(customer_id) FROM core.customer_identity") == highest
    assert project.scalar("SELECT 1 + (" + HIGHEST_ID_SQL + ")") == highest + 1
