"""Reading CSV exports into raw: encodings, separators, malformed files, each file once, freshness.

What a file may be and what happens to it (see ``crm_assets/ingest.py``):

* loaded: UTF-8 with or without BOM, Windows-1251, ``,`` or ``;``, comma decimals, quoted newlines;
* loaded, one record flagged (and rejected by staging): a record with too few or too many fields,
  a last record cut inside a quoted field or inside a UTF-8 character;
* refused whole, nothing loaded, file left in place: empty, UTF-16, a UTF-8 file with a corrupt
  byte (never read as cp1251 mojibake), another Cyrillic code page, a missing required column.
"""

import csv
import io
import os
import shutil
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import pytest
from conftest import TINY, make_project
from test_staging import TABLES, query, stage_folder

from crm_assets.defs.checks import FRESHNESS_CHECK, freshness_result
from crm_assets.defs.resources import Warehouse
from crm_assets.ingest import reader
from crm_assets.ingest.contracts import SOURCES, SourceFileError
from crm_assets.ingest.files import table_of
from crm_assets.ingest.freshness import freshness
from crm_assets.ingest.loader import load_source, load_source_file
from crm_assets.ingest.reader import read_source_bytes

ORDERS = SOURCES["orders"]
HEADER = "order_id,customer_id,store_id,ordered_at,channel,status,total_amount\n"
ROW = "O1,C1,S1,2025-03-10 00:30:00,in_store,completed,10.00\n"


def rows(data: bytes) -> list[tuple]:
    """(order_id, status, total_amount, _parse_error, _row_number) per record, by record."""
    table = read_source_bytes(data, ORDERS, "orders.csv").rows.sort_by("_row_number")
    cols = ("order_id", "status", "total_amount", "_parse_error", "_row_number")
    return [tuple(r[c] for c in cols) for r in table.select(list(cols)).to_pylist()]


def refused(data: bytes) -> str:
    with pytest.raises(SourceFileError) as err:
        read_source_bytes(data, ORDERS, "orders.csv")
    return str(err.value)


def test_which_file_feeds_which_table():
    assert table_of("orders.csv") == "orders"
    assert table_of("orders_2026-07-01.csv") == "orders"
    assert table_of("orders/july.csv") == "orders"
    assert table_of("order_items_1.csv") == "order_items"  # the longest name wins
    assert table_of("ORDERS.CSV") is None  # table names are lower case
    assert table_of("orders.CSV") == "orders"
    for other in ("orders.csv.part", "~$orders.csv", ".orders.csv", "ordersx.csv",
                  "_truth/customers.csv", "orders/2026/07.csv", "unknown.csv"):
        assert table_of(other) is None, other


def test_cp1251_semicolon_twin_stages_the_same_rows_as_utf8(tmp_path):
    twin = tmp_path / "cp1251"
    twin.mkdir()
    for path in TINY.glob("*.csv"):
        out = io.StringIO()
        csv.writer(out, delimiter=";", lineterminator="\r\n").writerows(
            csv.reader(path.open(encoding="utf-8", newline="")))
        (twin / path.name).write_bytes(out.getvalue().encode("cp1251"))
    data = (twin / "orders.csv").read_bytes()
    assert b";300,00\r\n" in data and b",in_store," not in data  # `;`, comma decimal unquoted
    with pytest.raises(UnicodeDecodeError):
        (twin / "customers.csv").read_bytes().decode("utf-8")
    stage_folder(TINY, tmp_path / "utf8.duckdb")
    stage_folder(twin, tmp_path / "cp1251.duckdb")
    for table in TABLES:
        sql = (f"SELECT * EXCLUDE (_file_sha256, _loaded_at) FROM staging.{table} "
               "ORDER BY ALL")
        assert query(tmp_path / "utf8.duckdb", sql) == query(tmp_path / "cp1251.duckdb", sql)
    sql = "SELECT table_name, _source_file, _row_number, reason FROM staging.rejects ORDER BY ALL"
    assert query(tmp_path / "utf8.duckdb", sql) == query(tmp_path / "cp1251.duckdb", sql)
    assert query(tmp_path / "cp1251.duckdb", "SELECT first_name, city FROM staging.customers "
                 "WHERE source_customer_id = 'C1'") == [("Иван", "Москва")]


def test_encodings_and_separators_that_load():
    text = HEADER + 'O1,C1,S1,2025-03-10,"in\nstore",оплачен,"1,5"\n'
    expected = [("O1", "оплачен", "1,5", None, 1)]
    assert rows(text.encode("utf-8")) == expected
    assert rows(b"\xef\xbb\xbf" + text.encode("utf-8")) == expected
    semicolon = text.replace(",", ";").replace('"1;5"', "1,5")
    assert rows(semicolon.encode("cp1251")) == expected
    read = read_source_bytes(semicolon.encode("cp1251"), ORDERS)
    assert (read.encoding, read.delimiter) == ("cp1251", ";")
    assert read_source_bytes(b"\xef\xbb\xbf" + text.encode(), ORDERS).encoding == "utf-8-sig"
    assert rows(HEADER.encode()) == []  # a header alone is a valid file with no rows


def test_malformed_records_are_kept_flagged_and_the_rest_loads():
    # too few and too many fields: that record keeps its text, the others load
    assert rows((HEADER + "O1,C1\n" + ROW + ROW.replace("O1", "O3").rstrip() + ",x\n"
                 ).encode()) == [
        (None, None, None, "record 1: expected 7 fields, found 2: O1,C1", 1),
        ("O1", "completed", "10.00", None, 2),
        (None, None, None, "record 3: expected 7 fields, found 8: "
                           "O3,C1,S1,2025-03-10 00:30:00,in_store,completed,10.00,x", 3)]
    # cut inside a quoted last field: pyarrow would accept it silently; it is flagged
    assert rows((HEADER + ROW + 'O2,C1,S1,2025-03-10,app,completed,"12').encode()) == [
        ("O1", "completed", "10.00", None, 1),
        ("O2", "completed", "12", "record 2: the file ends inside a quoted field "
                                  "(unterminated quote; truncated file?)", 2)]
    # cut in the middle of a two-byte UTF-8 letter
    cut = (HEADER + ROW + "O2,C1,S1,2025-03-10,app,completed,12 руб").encode()[:-1]
    assert rows(cut) == [
        ("O1", "completed", "10.00", None, 1),
        ("O2", "completed", "12 ру", "record 2: the file ends in the middle of a UTF-8 "
                                     "character (truncated file?)", 2)]


def test_files_that_are_refused_whole():
    assert refused(b"") == "orders.csv: line 1: file is empty (expected a header row)"
    assert refused(b"\xef\xbb\xbf \r\n") == ("orders.csv: line 1: file is empty "
                                            "(expected a header row)")
    assert "UTF-16 is not supported" in refused((HEADER + ROW).encode("utf-16"))
    # a UTF-8 file with one corrupt byte is not read as cp1251 mojibake
    good = (HEADER + ROW + "O2,C1,S1,2025-03-10,app,оплачен,1\n").encode()
    corrupt = good.replace("оплачен".encode(), b"\xff" + "оплачен".encode()[1:])
    assert refused(corrupt) == (
        "orders.csv: line 3, byte 25 of the line: byte 0xFF is not valid UTF-8 (invalid start "
        "byte) in a file that is otherwise UTF-8; the file is damaged or mixes encodings: fix "
        "or re-export it (nothing of it was loaded)")
    # KOI8-R decodes as cp1251 without error, into gibberish: refused
    koi8 = (HEADER + ROW + "O2,C1,S1,2025-03-10,Доставка,Выполнен,1\n").encode("koi8_r")
    assert "not readable as Windows-1251 text either (KOI8-R? CP866?)" in refused(koi8)
    assert refused(b"order_id,customer_id,store_id\nO1,C1,S1\n") == (
        "orders.csv: line 1: missing required column(s) 'ordered_at' of table 'orders' "
        "(header has: order_id, customer_id, store_id)")
    assert refused((HEADER.replace("channel", "status") + ROW).encode()) == (
        "orders.csv: line 1, column 6: column 'status' appears twice")


def test_refused_file_leaves_everything_as_it_was_and_stays_in_place(tmp_path):
    folder = tmp_path / "in"
    (folder / "orders").mkdir(parents=True)
    (folder / "orders.csv").write_text(HEADER + ROW, encoding="utf-8")
    bad = folder / "orders" / "2025-03-11.csv"
    bad.write_bytes(HEADER.encode() + b"O2,C1,S1,2025-03-11,\xd0\xbf\xff,x,1\n")
    later = folder / "orders" / "2025-03-12.csv"
    later.write_text(HEADER + ROW.replace("O1", "O3"), encoding="utf-8")
    warehouse = Warehouse(database=str(tmp_path / "w.duckdb"))
    with warehouse.connect() as con:
        load = load_source(con, "orders", folder)
        assert [r.source_file for r in load.loaded] == ["orders.csv", "orders/2025-03-12.csv"]
        assert len(load.refused) == 1 and "2025-03-11.csv: line 2" in load.refused[0]
        assert con.execute("SELECT order_id FROM raw.orders ORDER BY 1").fetchall() == [
            ("O1",), ("O3",)]
        assert con.execute("SELECT source_file FROM meta.loaded_files ORDER BY 1").fetchall() == [
            ("orders.csv",), ("orders/2025-03-12.csv",)]
        assert bad.exists()
        # fixed, it loads; the others are not loaded again
        bad.write_text(HEADER + ROW.replace("O1", "O2"), encoding="utf-8")
        load = load_source(con, "orders", folder)
        assert [r.source_file for r in load.loaded] == ["orders/2025-03-11.csv"]
        assert [r.skipped for r in load.results] == [True, False, True]
        assert con.execute("SELECT count(*) FROM raw.orders").fetchone()[0] == 3


def test_same_bytes_under_another_name_load_once(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "orders.csv").write_text(HEADER + ROW, encoding="utf-8")
    shutil.copyfile(folder / "orders.csv", folder / "orders_copy.csv")
    with Warehouse(database=str(tmp_path / "w.duckdb")).connect() as con:
        load = load_source(con, "orders", folder)
        assert [(r.source_file, r.rows, r.skipped) for r in load.results] == [
            ("orders.csv", 1, False), ("orders_copy.csv", 0, True)]
        assert con.execute("SELECT count(*) FROM raw.orders").fetchone()[0] == 1


def test_a_copy_under_another_name_is_read_once_then_never(tmp_path):
    """A file repeating bytes loaded under another name (a dated export and its "latest" copy)
    is hashed once, recorded in meta.duplicate_files, and then skipped unread like a loaded file:
    bytes changed behind its unchanged name, size and time are not read; another size is."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "orders.csv").write_text(HEADER + ROW, encoding="utf-8")
    copy = folder / "orders_latest.csv"
    shutil.copyfile(folder / "orders.csv", copy)
    fixed = (1_700_000_000_000_000_000, 1_700_000_000_000_000_000)
    os.utime(copy, ns=fixed)
    with Warehouse(database=str(tmp_path / "w.duckdb")).connect() as con:
        assert [r.rows for r in load_source(con, "orders", folder).results] == [1, 0]
        assert con.execute(
            "SELECT source_file, file_sha256 = (SELECT file_sha256 FROM meta.loaded_files), "
            "file_size, file_mtime_ns FROM meta.duplicate_files").fetchall() == [
            ("orders_latest.csv", True, copy.stat().st_size, fixed[1])]
        copy.write_text(HEADER + ROW.replace("O1", "O9"), encoding="utf-8")  # same size
        os.utime(copy, ns=fixed)
        assert [r.skipped for r in load_source(con, "orders", folder).results] == [True, True]
        assert con.execute("SELECT order_id FROM raw.orders").fetchall() == [("O1",)]
        copy.write_text(HEADER + ROW.replace("O1", "O10"), encoding="utf-8")  # another size
        assert [r.rows for r in load_source(con, "orders", folder).results] == [0, 1]
        assert con.execute("SELECT count(*) FROM meta.loaded_files").fetchone()[0] == 2
        assert con.execute("SELECT count(*) FROM meta.duplicate_files").fetchone()[0] == 0


def test_a_file_copied_again_is_read_once_more_then_never(tmp_path):
    """The same bytes with a new modification time (copied back without it, synced again) are
    hashed once and skipped; the run after that skips the file without reading it: bytes changed
    behind an unchanged name, size and time are not read (what a skip by name, size and time
    means), so the new time was remembered."""
    folder = tmp_path / "in"
    folder.mkdir()
    path = folder / "orders.csv"
    path.write_text(HEADER + ROW, encoding="utf-8")
    with Warehouse(database=str(tmp_path / "w.duckdb")).connect() as con:
        assert [r.rows for r in load_source(con, "orders", folder).results] == [1]
        os.utime(path, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
        assert [r.skipped for r in load_source(con, "orders", folder).results] == [True]
        path.write_text(HEADER + ROW.replace("O1", "O9"), encoding="utf-8")  # same size
        os.utime(path, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
        assert [r.skipped for r in load_source(con, "orders", folder).results] == [True]
        assert con.execute("SELECT order_id FROM raw.orders").fetchall() == [("O1",)]
        # another size: read, and loaded as new bytes
        path.write_text(HEADER + ROW.replace("O1", "O10"), encoding="utf-8")
        assert [r.rows for r in load_source(con, "orders", folder).results] == [1]


def test_freshness_against_a_controlled_clock(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + ROW, encoding="utf-8")
    loaded_at = datetime(2025, 3, 10, 6, 0, tzinfo=UTC)
    with Warehouse(database=str(tmp_path / "w.duckdb")).connect() as con:
        load_source_file(con, ORDERS, path, loaded_at=loaded_at)
        fresh = freshness(con, "orders", 36, now=loaded_at + timedelta(hours=35))
        stale = freshness(con, "orders", 36, now=loaded_at + timedelta(hours=37))
        never_optional = freshness(con, "sessions", 36, now=loaded_at)
        never_required = freshness(con, "customers", 36, now=loaded_at)
    assert (fresh.ok, fresh.age_hours, fresh.last_file) == (True, 35, "orders.csv")
    assert (stale.ok, stale.age_hours) == (False, 37)
    assert never_optional.ok and not never_required.ok
    result = freshness_result(stale)
    assert (result.check_name, result.passed, result.severity) == (
        FRESHNESS_CHECK, False, dg.AssetCheckSeverity.WARN)
    assert result.description == "last new file 37.0 h ago (orders.csv); limit 36 h: STALE"


def test_freshness_check_runs_on_its_own_in_dagster(tmp_path):
    """The ``check_freshness`` job alone, on a warehouse whose orders came 3 days ago."""
    project = make_project(tmp_path, freshness_hours={"orders": 36, "stores": 24 * 30})
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    with Warehouse(database=str(project.settings.warehouse_path)).connect() as con:
        for table in ("orders", "stores"):
            load_source_file(con, SOURCES[table], project.input_dir / f"{table}.csv",
                             loaded_at=three_days_ago)
    result = project.definitions().resolve_job_def("check_freshness").execute_in_process(
        instance=project.instance)
    assert result.success  # a stale table warns, it does not fail the run
    evaluations = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == set(SOURCES)
    assert not evaluations["orders"].passed
    assert evaluations["orders"].severity == dg.AssetCheckSeverity.WARN
    assert evaluations["stores"].passed  # 72 h is within a month
    assert not evaluations["customers"].passed  # required, never loaded
    assert evaluations["sessions"].passed  # optional, never loaded
    assert result.get_asset_materialization_events() == []
    con = duckdb.connect(str(project.settings.warehouse_path), read_only=True)
    con.close()  # the check's connection was released


def test_a_file_read_in_small_blocks_gives_the_rows_of_one_read(monkeypatch):
    """Streaming: malformed records, a quoted newline and a truncated last record come out the
    same, numbered the same, whether Arrow reads the file in one block or in many."""
    data = (HEADER + ROW + "O2,C1\n" + ROW.replace("O1", "O3") + '"O4\nx",C1,S1,,web,ok,1\n'
            + "O5,C1,S1,,web,ok,1,extra\n" * 3 + ROW.replace("O1", "O6") * 20
            + 'O7,C1,S1,,web,ok,"1').encode()
    whole = rows(data)
    monkeypatch.setattr(reader, "BLOCK_SIZE", 100)
    blocks = list(reader.SourceReader(io.BytesIO(data), len(data), ORDERS, "o.csv").batches())
    assert len(blocks) > 5
    assert rows(data) == whole
    assert [r[4] for r in whole] == list(range(1, 29))  # every record once, in file order
    assert [r[0] for r in whole if r[3] is not None] == [None, None, None, None, "O7"]
    assert whole[1][3].startswith("record 2: expected 7 fields, found 2")
    assert whole[27][3] == ("record 28: the file ends inside a quoted field (unterminated "
                            "quote; truncated file?)")
    assert whole[27][2] == "1"  # the open field keeps what it held, nothing of the sentinel


def test_a_file_larger_than_the_memory_limit_loads_completely_and_once(tmp_path):
    """A run's connection has the configured memory limit; an orders file three times larger
    than it streams in whole, each record once, and loads once."""
    input_dir = tmp_path / "in"
    shutil.copytree(TINY, input_dir)
    records = 800_000
    with duckdb.connect() as con:
        con.execute(f"""COPY (SELECT 'O' || i AS order_id, 'C' || (i % 1000) AS customer_id,
                                     'S1' AS store_id,
                                     TIMESTAMP '2025-03-01' + i * INTERVAL 1 SECOND AS ordered_at,
                                     'web' AS channel, 'completed' AS status,
                                     (i % 997) || '.50' AS total_amount,
                                     repeat('x', 50) AS note
                              FROM range(1, {records + 1}) r(i))
                        TO '{input_dir / "orders.csv"}' (HEADER)""")
    size = (input_dir / "orders.csv").stat().st_size
    project = make_project(tmp_path, input_dir, memory_limit="24MB")
    warehouse = project.definitions().resources["warehouse"]
    with warehouse.connect() as con:
        assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "22.8 MiB"
        assert size > 3 * 24 * 1000**2
        first = load_source(con, "orders", input_dir)
        again = load_source(con, "orders", input_dir)
        (input_dir / "orders.csv").touch()  # same bytes, new mtime: hashed, then skipped
        touched = load_source(con, "orders", input_dir)
    loaded = project.query("""SELECT count(*), count(DISTINCT _row_number), min(_row_number),
                                     max(_row_number), count(_parse_error),
                                     count(DISTINCT order_id)
                              FROM raw.orders""")[0]
    files = project.query("SELECT row_count FROM meta.loaded_files WHERE table_name = 'orders'")
    assert [r.rows for r in first.results] == [records]
    assert [r.skipped for r in again.results + touched.results] == [True, True]
    assert loaded == (records, records, 1, records, 0, records)
    assert files == [(records,)]
