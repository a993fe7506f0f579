"""What earlier loads found, kept for the next: in this process, and on disk for the next process.

Like dbt's partial parsing, for every process that loads the definitions (the code server, each
run, each step, the CLI): a file whose text did not change is not parsed and checked again, and a
query bound before over the same input schemas is not bound again, so a renamed upstream column
still fails every file that reads it.

The disk file is JSON (never pickle: nothing the project reads back from disk can run code), keyed
by a salt of this package's code and the versions of Python, DuckDB, sqlglot and PyYAML. A torn,
foreign or unreadable file is a cache miss, never an answer; deleting it is always safe.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import tempfile
from collections import OrderedDict
from datetime import date, datetime
from pathlib import Path

import duckdb
import sqlglot
import yaml

from crm_assets.catalog.data_tests import TestDeclaration
from crm_assets.catalog.definition import Definition, Schema

SCHEMAS: OrderedDict[tuple, Schema | str | None] = OrderedDict()
"""(query, input schemas) -> output schema; ("expression", sql, schema) -> problem or None."""
FILES: OrderedDict[tuple, dict] = OrderedDict()
"""(layer, name, sha256 of the text) -> the fields a check filled in, and its problems."""
EXPRESSION_READS: dict[str, bool] = {}
"""An expression test's SQL -> whether it reads a table besides its own (then never cached)."""
SIZE = 8192

CACHED_FIELDS = ("header", "positions", "kind", "body", "deps", "dep_offsets", "version", "_ast",
                 "output_offsets", "select_offset", "declarations")
"""What :func:`~crm_assets.catalog.checks.check_file` fills in (``_ast`` stays in memory)."""

_DISK_FORMAT = 2
_DISK_SEEN: dict[Path, tuple] = {}  # path -> (mtime_ns, size, keys) of what this process read


def clear() -> None:
    """Forget every file parsed and every schema bound by earlier loads in this process.

    The disk file is read again by the next load that names it; delete it to start from nothing.
    """
    FILES.clear()
    SCHEMAS.clear()
    EXPRESSION_READS.clear()
    _DISK_SEEN.clear()


def remember(cache: OrderedDict, key, value) -> None:
    cache[key] = value
    if len(cache) > SIZE:
        cache.popitem(last=False)


def keep_file(d: Definition, key: tuple, problems: list) -> None:
    """Remember what checking ``d`` gave, under ``key``."""
    remember(FILES, key, {"fields": {f: getattr(d, f) for f in CACHED_FIELDS},
                          "problems": problems})


def restore_file(d: Definition, cached: dict) -> list:
    """Fill ``d`` in from a cached check; its problems."""
    for name, value in cached["fields"].items():
        if isinstance(value, (list, dict)):
            value = type(value)(value)  # the graph step edits deps; keep the cache intact
        setattr(d, name, value)
    return cached["problems"]


# --------------------------------------------------------------------------------------------
# the disk file


@functools.cache
def _code_salt() -> str:
    """What every cached result depends on besides the files: this package's code and the
    versions of Python, DuckDB, sqlglot and PyYAML (a change to any of them empties the cache)."""
    digest = hashlib.sha256(f"{_DISK_FORMAT} {sys.version} {duckdb.__version__} "
                            f"{sqlglot.__version__} {yaml.__version__}".encode())
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


_TUPLE, _DATE, _DATETIME, _DECL, _MAP = "\0t", "\0d", "\0dt", "\0decl", "\0map"


def _encode(value):
    """``value`` as JSON-able data that :func:`_decode` turns back into the same value."""
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {_MAP: [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, TestDeclaration):
        return {_DECL: [value.name, value.kind, _encode(value.args), value.blocking]}
    if isinstance(value, datetime):
        return {_DATETIME: value.isoformat()}
    if isinstance(value, date):
        return {_DATE: value.isoformat()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot keep a {type(value).__name__} in the catalogue cache")


def _decode_object(obj: dict):
    if _TUPLE in obj:
        return tuple(obj[_TUPLE])
    if _MAP in obj:
        return {_hashable(k): v for k, v in obj[_MAP]}
    if _DECL in obj:
        name, kind, args, blocking = obj[_DECL]
        return TestDeclaration(name=name, kind=kind, args=args, blocking=blocking)
    if _DATETIME in obj:
        return datetime.fromisoformat(obj[_DATETIME])
    if _DATE in obj:
        return date.fromisoformat(obj[_DATE])
    return obj


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


def read_disk(path: Path) -> None:
    """Add what ``path`` holds to this process's caches (once per version of the file).

    A missing, unreadable or foreign file (another version of the code) is ignored: the cache
    only ever saves work, it never decides anything.
    """
    try:
        stat = path.stat()
    except OSError:
        return
    seen = _DISK_SEEN.get(path)
    if seen is not None and seen[:2] == (stat.st_mtime_ns, stat.st_size):
        return
    try:
        with path.open("rb") as fh:
            data = json.load(fh, object_hook=_decode_object)
        if data["salt"] != _code_salt():
            return
        files, schemas = dict(data["files"]), dict(data["schemas"])
    except Exception:  # noqa: BLE001 - a torn or foreign file is a cache miss, nothing more
        return
    for key, entry in files.items():
        FILES.setdefault(key, entry)
    for key, schema in schemas.items():
        SCHEMAS.setdefault(key, schema)
    _DISK_SEEN[path] = (stat.st_mtime_ns, stat.st_size, frozenset(files) | frozenset(schemas))


def write_disk(path: Path, file_keys: list[tuple], schema_keys: set[tuple]) -> None:
    """Keep exactly what this load used in ``path``, unless that is what it already holds.

    The file is replaced atomically, so a process reading it at the same moment sees the old
    or the new one; a folder that cannot be written only costs the next process the work.
    """
    files = {k: {"fields": {f: v for f, v in FILES[k]["fields"].items() if f != "_ast"},
                 "problems": FILES[k]["problems"]} for k in file_keys if k in FILES}
    schemas = {k: SCHEMAS[k] for k in schema_keys if k in SCHEMAS}
    keys = frozenset(files) | frozenset(schemas)
    seen = _DISK_SEEN.get(path)
    if seen is not None and seen[2] == keys:
        return
    tmp = None
    try:
        payload = json.dumps({"salt": _code_salt(), "files": _encode(files),
                              "schemas": _encode(schemas)}, ensure_ascii=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent,
                                         prefix=f".{path.name}.", suffix=".tmp",
                                         delete=False) as fh:
            tmp = fh.name
            fh.write(payload)
        os.replace(tmp, path)
        stat = path.stat()
    except (OSError, TypeError, ValueError):
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        return
    _DISK_SEEN[path] = (stat.st_mtime_ns, stat.st_size, keys)
