"""Data tests declared in a SQL file's header, run as Dagster asset checks next to the data.

dbt-style generic tests, each a query counting the failing rows (0 = pass)::

    -- grain: [order_id]                      # unique + not_null on the grain, for free
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

import dagster as dg

KNOWN = ("not_null", "unique", "accepted_values", "relationships", "expression")


def _q(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _lit(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


class TestDeclarationError(ValueError):
    """A ``tests:`` entry the framework cannot understand."""


@dataclass(frozen=True)
class TestSpec:
    """One declared test: the Dagster check spec and the SQL that counts failing rows."""

    __test__ = False  # not a pytest test class

    name: str
    kind: str
    args: dict
    blocking: bool
    spec: dg.AssetCheckSpec

    def failing_count_sql(self, relation: str) -> str:
        a = self.args
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
            return f"SELECT count(*) FROM {relation} WHERE {col} IS NOT NULL AND {col} NOT IN ({values})"
        if self.kind == "relationships":
            col, field = _q(a["column"]), _q(a.get("field", a["column"]))
            return (f"SELECT count(*) FROM {relation} AS child WHERE child.{col} IS NOT NULL AND "
                    f"NOT EXISTS (SELECT 1 FROM {a['to']} AS parent WHERE parent.{field} = "
                    f"child.{col})")
        if self.kind == "expression":
            return f"SELECT count(*) FROM {relation} WHERE NOT coalesce(({a['sql']}), false)"
        raise AssertionError(self.kind)


def _columns(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value) and value:
        return value
    raise TestDeclarationError(f"expected a column name or a list of them, got {value!r}")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")[:60]


def parse_test(entry, key: dg.AssetKey) -> TestSpec:
    """One header ``tests:`` entry to a :class:`TestSpec`; raises TestDeclarationError."""
    if isinstance(entry, str):
        raise TestDeclarationError(f"test {entry!r} needs arguments, e.g. '- not_null: column'")
    if not isinstance(entry, dict):
        raise TestDeclarationError(f"cannot read test {entry!r}")
    entry = dict(entry)
    severity = str(entry.pop("severity", "error"))
    if severity not in ("error", "warn"):
        raise TestDeclarationError(f"severity must be error or warn, got {severity!r}")
    kinds = [k for k in entry if k in KNOWN]
    if len(kinds) != 1:
        raise TestDeclarationError(
            f"each test names exactly one of {', '.join(KNOWN)}; got {', '.join(map(str, entry))}")
    kind = kinds[0]
    value = entry[kind]
    if kind in ("not_null", "unique"):
        args = {"columns": _columns(value)}
        name = f"{kind}_{'_'.join(args['columns'])}"
    elif kind == "accepted_values":
        if not isinstance(value, dict) or "column" not in value or "values" not in value:
            raise TestDeclarationError("accepted_values needs {column: ..., values: [...]}")
        args = {"column": str(value["column"]), "values": list(value["values"])}
        name = f"accepted_values_{args['column']}"
    elif kind == "relationships":
        if not isinstance(value, dict) or "column" not in value or "to" not in value:
            raise TestDeclarationError("relationships needs {column: ..., to: layer.table}")
        if not re.fullmatch(r"[a-z_]+\.[a-z0-9_]+", str(value["to"])):
            raise TestDeclarationError(f"relationships 'to' must be layer.table, got {value['to']!r}")
        args = {"column": str(value["column"]), "to": str(value["to"]),
                "field": str(value.get("field", value["column"]))}
        name = f"relationships_{args['column']}_{args['to'].replace('.', '_')}"
    else:
        if isinstance(value, str):
            value = {"sql": value}
        if not isinstance(value, dict) or "sql" not in value:
            raise TestDeclarationError("expression needs a SQL condition: '- expression: a >= 0'")
        args = {"sql": str(value["sql"])}
        name = "expression_" + _slug(str(value.get("name") or value["sql"]))
    blocking = severity == "error"
    spec = dg.AssetCheckSpec(name=name, asset=key, blocking=blocking,
                             description=f"{kind} {args}" + ("" if blocking else " (warn)"))
    return TestSpec(name=name, kind=kind, args=args, blocking=blocking, spec=spec)


def parse_tests(definition, key: dg.AssetKey) -> list[TestSpec]:
    """Grain tests (unique + not_null, blocking) followed by the header's declared tests."""
    specs: list[TestSpec] = []
    if definition.grain:
        specs.append(parse_test({"unique": definition.grain}, key))
        specs.append(parse_test({"not_null": definition.grain}, key))
    for entry in definition.tests:
        spec = parse_test(entry, key)
        if spec.name not in {s.name for s in specs}:
            specs.append(spec)
    return specs
