"""Data tests declared in a SQL file's header, run as Dagster asset checks next to the data.

dbt-style generic tests, each a query counting the failing rows (0 = pass)::

    -- grain: [order_id]                      # unique and not null on the grain, for free
    -- tests:
    --   - not_null: customer_id
    --   - unique: [order_id, line_number]
    --   - accepted_values: {column: channel, values: [in_store, app, web, delivery]}
    --   - relationships: {column: customer_id, to: core.customers, field: customer_id}
    --   - expression: {name: amount_not_negative, sql: "total_amount >= 0"}
    --   - {not_null: email, severity: warn}

A test is blocking (severity ``error``, the default) unless it says ``severity: warn``: a failing
blocking check stops everything downstream of the asset from being built on bad data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crm_assets.quoting import identifier as _q
from crm_assets.quoting import literal as _lit

KNOWN = ("not_null", "unique", "accepted_values", "relationships", "expression")


class TestDeclarationError(ValueError):
    """A ``tests:`` entry the framework cannot understand."""


@dataclass(frozen=True)
class TestDeclaration:
    """One declared test, checked but not yet bound to an asset: what the catalogue validates.

    Building it needs no Dagster, so ``crm validate`` and the catalogue loader check every
    ``tests:`` entry of every file when they load it, not when a run first executes the check;
    :mod:`crm_assets.defs.checks` turns it into an asset check.
    """

    __test__ = False  # not a pytest test class

    name: str
    kind: str
    args: dict
    blocking: bool

    @property
    def columns(self) -> list[str]:
        """The columns of the tested table this test names (each must be an output column)."""
        if self.kind in ("not_null", "unique", "grain"):
            return list(self.args["columns"])
        if self.kind in ("accepted_values", "relationships"):
            return [self.args["column"]]
        return []

    def failing_count_sql(self, relation: str, written: str | None = None) -> str:
        """A query counting the rows of ``relation`` that fail the test (0: it passes).

        Args:
            written: a condition on ``relation``'s rows selecting those a run wrote: only they
                are tested (for ``unique``: the keys they hold), the others having passed when
                they were written.
        """
        a = self.args
        if self.kind == "grain":  # one check, one scan each: a key missing, or held twice
            parts = [TestDeclaration(self.name, kind, a, True).failing_count_sql(relation, written)
                     for kind in ("not_null", "unique")]
            return f"SELECT ({parts[0]}) + ({parts[1]})"
        if written is not None and self.kind == "unique":
            cols = ", ".join(_q(c) for c in a["columns"])
            same = " AND ".join(f"t.{_q(c)} = w.{_q(c)}" for c in a["columns"])
            return (f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {relation} "
                    f"AS t SEMI JOIN (SELECT {cols} FROM {relation} WHERE {written}) AS w ON "
                    f"{same} GROUP BY {', '.join('t.' + _q(c) for c in a['columns'])} "
                    "HAVING count(*) > 1)")
        if written is not None:
            relation = f"(SELECT * FROM {relation} WHERE {written})"
        if self.kind == "not_null":
            cols = a["columns"]
            cond = " OR ".join(f"{_q(c)} IS NULL" for c in cols)
            return f"SELECT count(*) FROM {relation} WHERE {cond}"
        if self.kind == "unique":
            cols = ", ".join(_q(c) for c in a["columns"])
            return (f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {relation} "
                    f"GROUP BY {cols} HAVING count(*) > 1)")
        if self.kind == "accepted_values":
            values = ", ".join(_lit(v) for v in a["values"])
            col = _q(a["column"])
            return (f"SELECT count(*) FROM {relation} WHERE {col} IS NOT NULL AND {col} NOT IN "
                    f"({values})")
        if self.kind == "relationships":
            col, field = _q(a["column"]), _q(a.get("field", a["column"]))
            return (f"SELECT count(*) FROM {relation} AS child WHERE child.{col} IS NOT NULL AND "
                    f"NOT EXISTS (SELECT 1 FROM {a['to']} AS parent WHERE parent.{field} = "
                    f"child.{col})")
        if self.kind == "expression":
            return f"SELECT count(*) FROM {relation} WHERE NOT coalesce(({a['sql']}\n), false)"
        raise AssertionError(self.kind)


def _columns(value) -> list[str]:
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return value
    raise TestDeclarationError(f"expected a column name or a list of them, got {value!r}")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")[:60]


def grain_declaration(columns: list[str]) -> TestDeclaration:
    """The test a ``grain`` gives for free: no row without the key, no key twice (one check
    rather than a ``unique`` and a ``not_null``: half the bookkeeping of every run)."""
    return TestDeclaration(name=f"grain_{'_'.join(columns)}", kind="grain",
                           args={"columns": list(columns)}, blocking=True)


def parse_declaration(entry) -> TestDeclaration:
    """One header ``tests:`` entry to a :class:`TestDeclaration`; raises TestDeclarationError.

    Only the shape is checked here; that the columns exist and that an ``expression`` binds and
    calls only allowed functions is checked by the catalogue, which knows the output schema.
    """
    if isinstance(entry, str):
        if entry in KNOWN:
            raise TestDeclarationError(
                f"test {entry!r} needs arguments, e.g. '- {entry}: column'")
        raise TestDeclarationError(
            f"unknown test {entry!r}; expected one of {', '.join(KNOWN)}")
    if not isinstance(entry, dict):
        raise TestDeclarationError(f"cannot read test {entry!r}; expected '- kind: arguments'")
    entry = dict(entry)
    severity = str(entry.pop("severity", "error"))
    if severity not in ("error", "warn"):
        raise TestDeclarationError(f"severity must be error or warn, got {severity!r}")
    kinds = [k for k in entry if k in KNOWN]
    extra = [str(k) for k in entry if k not in KNOWN]
    if len(kinds) != 1 or extra:
        raise TestDeclarationError(
            f"each test names exactly one of {', '.join(KNOWN)} (and optionally severity); "
            f"got {', '.join(map(str, entry)) or 'nothing'}")
    kind = kinds[0]
    value = entry[kind]
    if kind in ("not_null", "unique"):
        args = {"columns": _columns(value)}
        name = f"{kind}_{'_'.join(args['columns'])}"
    elif kind == "accepted_values":
        if (not isinstance(value, dict) or "column" not in value
                or not isinstance(value.get("values"), list) or not value["values"]):
            raise TestDeclarationError("accepted_values needs {column: ..., values: [...]}")
        args = {"column": str(value["column"]), "values": list(value["values"])}
        name = f"accepted_values_{args['column']}"
    elif kind == "relationships":
        if not isinstance(value, dict) or "column" not in value or "to" not in value:
            raise TestDeclarationError("relationships needs {column: ..., to: layer.table}")
        if not re.fullmatch(r"[a-z_]+\.[a-z0-9_]+", str(value["to"])):
            raise TestDeclarationError(
                f"relationships 'to' must be layer.table, got {value['to']!r}")
        args = {"column": str(value["column"]), "to": str(value["to"]),
                "field": str(value.get("field", value["column"]))}
        name = f"relationships_{args['column']}_{args['to'].replace('.', '_')}"
    else:
        if isinstance(value, str):
            value = {"sql": value}
        if not isinstance(value, dict) or not str(value.get("sql") or "").strip():
            raise TestDeclarationError("expression needs a SQL condition: '- expression: a >= 0'")
        args = {"sql": str(value["sql"])}
        name = "expression_" + _slug(str(value.get("name") or value["sql"]))
    return TestDeclaration(name=name, kind=kind, args=args, blocking=severity == "error")
