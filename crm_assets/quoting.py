"""Quoting names and values into DuckDB SQL text: the one place it is done, by sqlglot.

Every statement the framework composes (DDL, the staging wrapper, checks, publishes) quotes
table and column names with :func:`identifier` and values with :func:`literal`, so a name or a
value can never end a string or a name early, whatever it holds.
"""

from __future__ import annotations

from sqlglot import exp

DIALECT = "duckdb"


def identifier(name: str) -> str:
    """``name`` as a quoted DuckDB identifier: ``a"b`` -> ``"a""b"``."""
    return exp.to_identifier(str(name), quoted=True).sql(dialect=DIALECT)


def table(name: str) -> str:
    """``schema.table`` with both parts quoted: ``marts.x`` -> ``"marts"."x"``."""
    return ".".join(identifier(part) for part in name.split("."))


def literal(value: object) -> str:
    """``value`` as a DuckDB literal: text quoted (``'it''s'``), numbers and booleans as is,
    ``None`` as ``NULL``."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return exp.Literal.string(str(value)).sql(dialect=DIALECT)
