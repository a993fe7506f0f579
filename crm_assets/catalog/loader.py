"""Loading the SQL catalogue: every ``sql/<layer>/<name>.sql`` file is one definition.

Loading a catalogue never needs a warehouse. :func:`load_catalog` reads the files and checks each
one on its own (:mod:`~crm_assets.catalog.checks`: exactly one read-only ``SELECT``, only allowed
functions, no string used as a table, dependencies, output columns, fingerprint), then the graph
between them (:mod:`~crm_assets.catalog.graph`), then binds every definition in DuckDB
(:mod:`~crm_assets.catalog.binder`), which gives every output schema. All problems of all files
are collected in one pass as ``path:line:col: message``. What an earlier load found is reused
(:mod:`~crm_assets.catalog.cache`).
"""

from __future__ import annotations

import gc
import hashlib
import threading
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path

from crm_assets.catalog import cache
from crm_assets.catalog.binder import Binder, Validator, build_schemas, chunks
from crm_assets.catalog.checks import NAME, check_file
from crm_assets.catalog.definition import SQL_LAYERS, Catalog, Definition, Problem, Schema
from crm_assets.catalog.graph import dependency_order, graph_problems
from crm_assets.catalog.parse_tree import serialize
from crm_assets.catalog.variants import expand

_LOAD_LOCK = threading.RLock()


def discover(sql_dir: Path, paths: Iterable[Path] | None = None) -> list[Path]:
    """The files of ``sql_dir`` (sorted), then the extra ``paths`` not among them (sorted).

    The order matters for duplicates: a file of the catalogue wins over an extra one.
    """
    files = sorted({p.resolve() for p in sql_dir.glob("*/*.sql")})
    extra = {Path(p).resolve() for p in paths or [] if Path(p).suffix == ".sql"}
    return files + sorted(extra - set(files))


def _display(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when it is below it; both already resolved."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def load_catalog(sql_dir: Path, external: Mapping[str, Schema], *,
                 paths: Iterable[Path] | None = None, root: Path | None = None,
                 as_of: date | None = None, cache_path: Path | None = None) -> Catalog:
    """Read, check and bind every definition under ``sql_dir`` (plus ``paths``).

    Args:
        sql_dir: the ``sql/`` folder; each ``<layer>/<name>.sql`` below it is a definition.
        external: tables built by Python code (raw ingest, identity), ``{"raw.orders": schema}``.
        paths: extra files to check (e.g. a file not yet moved into ``sql/``); their layer is
            their parent folder's name.
        root: paths in messages are relative to it (default: the parent of ``sql_dir``).
        as_of: the date ``as_of_date()`` returns while validating.
        cache_path: a file keeping, across processes, what each file's text and each query's
            input schemas gave (dbt's partial parsing, for every process that loads the
            definitions: the code server, each run and each step). ``None``: this process only.

    Returns:
        The catalogue, in dependency order, with every problem found (empty when all is well).
        Files unchanged since an earlier load (in this process, or in the disk cache) are not
        parsed again, and queries over unchanged input schemas are not bound again.
    """
    with _LOAD_LOCK:  # loads share the caches (and the GC switch): one at a time
        return _load(sql_dir, external, paths, (root or sql_dir.parent).resolve(), as_of,
                     cache_path)


def _load(sql_dir: Path, external: Mapping[str, Schema], paths: Iterable[Path] | None,
          root: Path, as_of: date | None, cache_path: Path | None) -> Catalog:
    gc_was_enabled = gc.isenabled()
    gc.disable()  # parsing allocates many small objects; cyclic GC passes cost ~25% here
    if cache_path is not None:
        cache.read_disk(cache_path)
    validator = Validator(as_of)
    try:
        defs, problems, pending, file_keys = _read_files(sql_dir, paths, root)
        if pending:
            texts = chunks([d.text for d, _ in pending])
            trees = [t for chunk in validator.map(serialize, texts) for t in chunk]
            for (d, key), tree in zip([p for c in chunks(pending) for p in c], trees,
                                      strict=True):
                file_problems = check_file(d, validator.con, tree)
                cache.keep_file(d, key, file_problems)
                problems.extend(Problem(d.display_path, *p) for p in file_problems)
        between, duplicates = graph_problems(defs, external)
        problems.extend(between)
        defs = [d for d in defs if d not in duplicates]
        bad_paths = {p.path for p in problems}
        invalid = {d.table for d in defs if d.display_path in bad_paths}
        ordered = dependency_order(defs)
        binder = Binder(validator, dict(external))
        problems.extend(build_schemas(binder, ordered, invalid))
        if cache_path is not None:
            cache.write_disk(cache_path, file_keys, binder.used)
    finally:
        validator.close()
        if gc_was_enabled:
            gc.enable()
    return Catalog(definitions=ordered, external=dict(external), problems=sorted(set(problems)),
                   parsed=len(pending), bound=binder.bound)


def _read_files(sql_dir: Path, paths: Iterable[Path] | None, root: Path
                ) -> tuple[list[Definition], list[Problem], list[tuple[Definition, tuple]],
                           list[tuple]]:
    """Every file as a definition: restored from the cache when its text is known, else pending.

    Returns the definitions (those whose folder and name can make a table), the problems found
    so far (unreadable files, cached problems), the definitions still to check with their cache
    keys, and every file's cache key.
    """
    defs: list[Definition] = []
    problems: list[Problem] = []
    pending: list[tuple[Definition, tuple]] = []
    file_keys: list[tuple] = []
    for path in discover(sql_dir, paths):
        display = _display(path, root)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            problems.append(Problem(display, 1, 1, f"cannot read file: {err}"))
            continue
        tables, variant_problems = expand(path.stem, text)
        problems.extend(Problem(display, *p) for p in variant_problems)
        for table in tables:  # the file itself, or each of its variants
            d = Definition(path=path, display_path=display, layer=path.parent.name,
                           name=table.name, text=table.text, variant=table.variant,
                           params=table.params)
            key = (d.layer, d.name, hashlib.sha256(d.text.encode("utf-8")).hexdigest())
            file_keys.append(key)
            cached = cache.FILES.get(key)
            if cached is not None:
                cache.FILES.move_to_end(key)
                problems.extend(Problem(display, *p) for p in cache.restore_file(d, cached))
            else:
                pending.append((d, key))
            if d.layer in SQL_LAYERS and NAME.fullmatch(d.name):
                defs.append(d)
    return defs, problems, pending, file_keys
