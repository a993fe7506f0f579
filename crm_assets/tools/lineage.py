"""``crm lineage``: a column's upstream columns through the catalogue, as a tree down to raw.

Each definition's lineage comes from :func:`crm_assets.catalog.lineage.column_lineage`, computed at
most once per definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crm_assets.catalog import Catalog
from crm_assets.catalog.lineage import ColumnLineage, column_lineage


@dataclass
class LineageNode:
    """``table.column`` and the upstream columns that feed it (empty at a source)."""

    table: str
    column: str
    upstream: list[LineageNode] = field(default_factory=list)
    note: str = ""


class LineageTracer:
    """Traces columns through the catalogue, one definition's lineage computed at most once."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.by_table = catalog.by_table()
        self._cache: dict[str, ColumnLineage] = {}

    def of(self, table: str) -> ColumnLineage:
        if table not in self._cache:
            d = self.by_table[table]
            schemas = {dep: self.catalog.schema_of(dep) for dep in d.deps}
            self._cache[table] = column_lineage(d, schemas)
        return self._cache[table]

    def tree(self, table: str, column: str) -> LineageNode:
        """The column and, recursively, its upstream columns down to tables no SQL file defines.

        Raises:
            KeyError: ``column`` is not an output column of ``table``.
        """
        return self._tree(table, column, ())

    def _tree(self, table: str, column: str, path: tuple[str, ...]) -> LineageNode:
        here = f"{table}.{column}"
        node = LineageNode(table, column)
        if table not in self.by_table:
            node.note = "source" if table.startswith("raw.") else "built by Python code"
            return node
        if here in path:
            node.note = "cycle"
            return node
        traced = self.of(table)
        if column not in traced.deps:
            if column in traced.errors:
                node.note = f"lineage unknown: {traced.errors[column]}"
                return node
            if path:
                node.note = "not an output column"
                return node
            names = ", ".join(n for n, _ in self.by_table[table].schema)
            raise KeyError(f"{table} has no column {column!r}; its columns: {names}")
        if not traced.deps[column]:
            node.note = "computed from no column"
        for up_table, up_column in traced.deps[column]:
            node.upstream.append(self._tree(up_table, up_column, (*path, here)))
        return node


def format_tree(node: LineageNode) -> str:
    """The tree as text, one column per line, children indented under their parent."""
    lines = [f"{node.table}.{node.column}" + (f"  ({node.note})" if node.note else "")]

    def walk(n: LineageNode, prefix: str) -> None:
        for i, child in enumerate(n.upstream):
            last = i == len(n.upstream) - 1
            note = f"  ({child.note})" if child.note else ""
            lines.append(f"{prefix}{'└── ' if last else '├── '}{child.table}.{child.column}{note}")
            walk(child, prefix + ("    " if last else "│   "))

    walk(node, "")
    return "\n".join(lines)
