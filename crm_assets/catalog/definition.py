"""What the catalogue is made of: definitions, their problems, and the catalogue itself.

A :class:`Definition` is one ``sql/<layer>/<name>.sql`` file: its header, its query, what it reads
and what it produces. Loading (:mod:`~crm_assets.catalog.loader`) fills it in; everything else
reads it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from crm_assets.catalog.data_tests import TestDeclaration
from crm_assets.clv.functions import CLV_FUNCTIONS
from crm_assets.functions.allow_list import CLEANING_FUNCTIONS

DIALECT = "duckdb"
DUCKDB = Dialect.get_or_raise(DIALECT)

KINDS = ("model", "segment", "event")
DEFAULT_KIND = {"staging": "model", "core": "model", "segments": "segment", "events": "event",
                "marts": "model"}
SQL_LAYERS = tuple(DEFAULT_KIND)
REQUIRED_COLUMNS = {"segment": {"customer_id": None},
                    "event": {"customer_id": None, "occurred_at": "TIMESTAMP WITH TIME ZONE"}}
REJECT_COLUMNS = ("_problem", "_reject_reason")
"""Staging outputs split off into ``staging.rejects`` (:mod:`crm_assets.warehouse.models`)."""
VERSION_COLUMNS = ("_source_file", "_row_number", "_loaded_at")
"""What a staging model outputting ``_problem`` needs to pick the latest version of a grain."""

Schema = list[tuple[str, str]]
Position = tuple[int, int]


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with one file, printable as ``path:line:col: message``."""

    path: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


class CatalogError(Exception):
    """Raised when the catalogue has problems; carries every one of them."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class Incremental:
    """A model merged by its grain instead of rebuilt: which keys change when.

    Attributes:
        source: the table its rows come from, holding the grain columns: the keys of its rows
            written since the model last ran are computed again, from those rows only.
        via: other tables the query joins to ``source``, each by one column present in both: a
            row of theirs written since makes the ``source`` rows holding its value change.
        removed: ``table.column`` of keys that disappear (merged away): deleted from the model.
    """

    source: str
    via: dict[str, str]
    removed: str | None = None


@dataclass
class Definition:
    """One SQL file: its header, its query, what it reads and what it produces.

    ``ast`` is sqlglot's parse of the query (``None`` when the file is not a valid query); it may
    be shared between loads of an unchanged file (see :func:`clear_parse_cache`), so treat it as
    read-only and ``.copy()`` it to transform it. A definition restored from the on-disk cache
    parses its query again the first time ``ast`` is asked for.
    """

    path: Path
    display_path: str
    layer: str
    name: str
    text: str
    body: str = ""
    header: dict = field(default_factory=dict)
    kind: str = "model"
    deps: list[str] = field(default_factory=list)
    version: str = ""
    schema: Schema = field(default_factory=list)
    variant: str | None = None
    """The variant of the file this table is (``None``: the file itself); see
    :mod:`~crm_assets.catalog.variants`."""
    params: dict = field(default_factory=dict)
    """The values its ``param()`` calls were replaced by."""
    _ast: exp.Expression | None = field(default=None, repr=False, compare=False)
    # where things are in ``text``, for messages: header keys and ``tests[i]`` entries (line, col),
    # the first reference to each dependency, each output column and the final SELECT (offsets)
    positions: dict[str, Position] = field(default_factory=dict, repr=False)
    dep_offsets: dict[str, int] = field(default_factory=dict, repr=False)
    output_offsets: dict[str, int] = field(default_factory=dict, repr=False)
    select_offset: int = field(default=0, repr=False)
    # the data tests of the header (grain tests first), each with where it is declared
    declarations: list[tuple[TestDeclaration, Position]] = field(default_factory=list, repr=False)

    @property
    def table(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def uses_as_of(self) -> bool:
        """Whether the query calls ``as_of_date()`` or ``as_of_end()`` (its result depends on the
        as-of date of the run)."""
        return self.ast is not None and any(
            f.name.lower() in ("as_of_date", "as_of_end") for f in self.ast.find_all(exp.Anonymous))

    @property
    def uses_plausible_dates(self) -> bool:
        """Whether the query calls ``earliest_plausible_date()`` or ``latest_plausible()``
        (settings of the project)."""
        return self.ast is not None and any(
            f.name.lower() in ("earliest_plausible_date", "latest_plausible")
            for f in self.ast.find_all(exp.Anonymous))

    @property
    def calls_cleaning(self) -> bool:
        """Whether the query calls a ``crm_*`` cleaning function (registered only when needed)."""
        return self.ast is not None and any(
            f.name.lower() in CLEANING_FUNCTIONS for f in self.ast.find_all(exp.Anonymous))

    @property
    def calls_clv(self) -> bool:
        """Whether the query scores people with a model (:mod:`crm_assets.clv.functions`)."""
        return self.ast is not None and any(
            f.name.lower() in CLV_FUNCTIONS for f in self.ast.find_all(exp.Anonymous))

    @property
    def splits_rejects(self) -> bool:
        """A staging model whose rows with a reason go to ``staging.rejects``: it outputs
        ``_problem`` (the factory keeps the latest version of each grain) or ``_reject_reason``."""
        return self.layer == "staging" and any(n in REJECT_COLUMNS for n, _ in self.schema)

    @property
    def keeps_versions(self) -> bool:
        """A staging model that outputs ``_problem``: the latest version of each grain key is
        kept, and a night judges only new raw rows (:mod:`crm_assets.warehouse.staging`)."""
        return self.layer == "staging" and any(n == "_problem" for n, _ in self.schema)

    @property
    def incremental(self) -> Incremental | None:
        """How a model is merged by key instead of rebuilt (its header's ``incremental``)."""
        spec = self.header.get("incremental")
        if not isinstance(spec, dict) or not isinstance(spec.get("from"), str):
            return None
        via = spec.get("via") or {}
        return Incremental(source=spec["from"].lower(),
                           via={str(t).lower(): str(c) for t, c in via.items()}
                           if isinstance(via, dict) else {},
                           removed=str(spec["removed"]) if spec.get("removed") else None)

    @property
    def references(self) -> dict[str, str]:
        """Staging: output column -> the staging table whose key it holds (header
        ``references``): a change of that key judges the rows holding it again."""
        refs = self.header.get("references") or {}
        return {str(c): str(t).lower() for c, t in refs.items()} if isinstance(refs, dict) else {}

    @property
    def batched(self) -> bool:
        """Whether the table carries ``_batch`` (the batch that last wrote each row), so tables
        reading it can take in only what is new to them."""
        return self.keeps_versions or self.incremental is not None

    @property
    def published_schema(self) -> Schema:
        """The columns of the table the factory writes: without the reject columns, with
        ``_batch`` when the table is written incrementally."""
        columns = [(n, t) for n, t in self.schema if not self.splits_rejects
                   or n not in REJECT_COLUMNS]
        return columns + [("_batch", "BIGINT")] if self.batched else columns

    @property
    def ast(self) -> exp.Expression | None:
        if self._ast is None and self.version:  # a valid query, restored from the disk cache
            self._ast = DUCKDB.parse(self.body)[0]
        return self._ast

    @property
    def description(self) -> str:
        return str(self.header.get("description") or "").strip()

    @property
    def owner(self) -> str | None:
        return self.header.get("owner")

    @property
    def tags(self) -> list[str]:
        tags = self.header.get("tags") or []
        return [tags] if isinstance(tags, str) else [str(t) for t in tags]

    @property
    def grain(self) -> list[str]:
        grain = self.header.get("grain")
        if grain is None:
            return ["customer_id"] if self.kind == "segment" else []
        return [grain] if isinstance(grain, str) else [str(g) for g in grain]

    @property
    def column_docs(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.header.get("columns") or {}).items()}

    @property
    def tests(self) -> list:
        return list(self.header.get("tests") or [])


@dataclass
class Catalog:
    """Every definition, in dependency order, and the tables they may read that are not SQL."""

    definitions: list[Definition]
    external: dict[str, Schema]
    problems: list[Problem]
    parsed: int = 0
    """Files this load parsed and checked; the others came from a cache (in memory or on disk)."""
    bound: int = 0
    """Queries this load bound in DuckDB; the others' schemas came from a cache."""

    @functools.cached_property
    def _tables(self) -> dict[str, Definition]:
        return {d.table: d for d in self.definitions}

    def by_table(self) -> dict[str, Definition]:
        """``{"segments.x": definition}`` (a new dict each call: callers may edit it)."""
        return dict(self._tables)

    def schema_of(self, table: str) -> Schema:
        """The columns of ``table``: an external table's, or what a definition publishes."""
        if table in self.external:
            return self.external[table]
        return self._tables[table].published_schema

    def raise_for_problems(self) -> None:
        if self.problems:
            raise CatalogError(self.problems)


class UnknownName(ValueError):
    """A name matches no table, or several (the message lists them)."""


def resolve_table(name: str, tables: Iterable[str]) -> str:
    """``layer.name`` for ``name``, given as ``layer.name`` or as a bare name if it is unique.

    Raises:
        UnknownName: no table has that name, or a bare name exists in several layers.
    """
    tables = sorted(set(tables))
    wanted = name.strip().lower()
    if "." in wanted:
        if wanted in tables:
            return wanted
        raise UnknownName(f"unknown definition {name!r}")
    matches = [t for t in tables if t.split(".", 1)[1] == wanted]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UnknownName(f"unknown definition {name!r}")
    raise UnknownName(f"{name!r} is ambiguous: {', '.join(matches)}; give the layer too")
