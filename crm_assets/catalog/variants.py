"""Parameters and variants: one SQL file, several tables, no copy-paste.

A file's query may call ``param('name')``; the header gives the values::

    -- params: {min_orders: 3}                  # defaults
    -- variants:
    --   moscow: {city: Москва}
    --   kazan: {city: Казань, min_orders: 5}
    --   # or just names, each then param('variant'): variants: [moscow, kazan]
    select customer_id from core.customer_features
    where city = param('city') and orders_365d >= param('min_orders')

Without ``variants`` the file is one table (its name) with the defaults. With them it is one table
per variant, ``<file name>_<variant>`` (``segments.city_buyers_moscow``), each with the defaults
overridden by the variant's values; ``param('variant')`` is the variant's name. Each call is
replaced by the value as a SQL literal *before* anything else reads the text, so every variant is
an ordinary definition: checked, bound, versioned (a changed value is a new version of that
variant only), compiled and traced on its own.
The replacement keeps every line where it was, so messages point into the file as written.

Values are YAML scalars (text, numbers, booleans, dates) or lists of them (a DuckDB list,
``list_contains(param('cities'), city)``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

from crm_assets.catalog.definition import DUCKDB
from crm_assets.catalog.header import HeaderError, parse_header
from crm_assets.catalog.text import line_col
from crm_assets.quoting import literal

_MAYBE = re.compile(r"\bparam\s*\(|^\s*--\s*(params|variants)\s*:", re.IGNORECASE | re.MULTILINE)
_NAME = re.compile(r"[a-z][a-z0-9_]*")

@dataclass(frozen=True)
class Variant:
    """One table a file defines: its name, the variant (``None``: the file itself), the values
    of its parameters, and the text with every ``param()`` call replaced."""

    name: str
    variant: str | None
    text: str
    params: dict = field(default_factory=dict)


def expand(stem: str, text: str) -> tuple[list[Variant], list[tuple[int, int, str]]]:
    """The tables of one file (its name, or one per variant) and the problems of its parameters.

    A file whose header cannot be read comes back whole and as is: the checks report its header.
    """
    if not _MAYBE.search(text):
        return [Variant(stem, None, text)], []
    try:
        header, positions = parse_header(text)
    except HeaderError:
        return [Variant(stem, None, text)], []
    problems: list[tuple[int, int, str]] = []
    where = positions.get
    defaults = header.get("params") or {}
    variants = header.get("variants")
    if isinstance(variants, list) and all(isinstance(v, str) for v in variants):
        variants = dict.fromkeys(variants)  # names only: each variant is param('variant')
    if not isinstance(defaults, dict) or not all(_is_value(v) for v in defaults.values()):
        problems.append((*where("params", (1, 1)), "header 'params' must be a mapping of "
                         "name: value (text, number, boolean, date or a list of them)"))
        defaults = {}
    if variants is not None and not (isinstance(variants, dict) and variants and all(
            isinstance(v, dict) or v is None for v in variants.values())):
        problems.append((*where("variants", (1, 1)), "header 'variants' must map each variant "
                         "name to its values ({moscow: {city: Москва}, ...})"))
        variants = None
    try:
        calls = _calls(text)
    except TokenError:
        return [Variant(stem, None, text)], problems  # the checks report the query
    used = {name for _, _, name in calls}
    for name in sorted(set(defaults) - used):
        problems.append((*where("params", (1, 1)), f"param '{name}' is never used "
                         "(no param('" + name + "') in the query)"))
    sets: list[tuple[str, str | None, dict]] = []
    if variants is None:
        sets.append((stem, None, dict(defaults)))
    else:
        for variant, values in variants.items():
            values = values or {}
            label = f"variant '{variant}'"
            at = _line_of(text, where("variants", (1, 1)), str(variant))
            if not _NAME.fullmatch(str(variant)):
                problems.append((*at, f"{label}: a variant name must be lower_snake_case (it "
                                      "becomes part of a table name)"))
                continue
            bad = [k for k, v in values.items() if not _is_value(v)]
            unused = sorted(set(values) - used)
            if bad or unused:
                problems.append((*at, f"{label}: " + "; ".join(
                    [f"'{k}' must be a text, number, boolean, date or a list of them"
                     for k in bad] + [f"sets '{k}', which the query never uses" for k in unused])))
                continue
            sets.append((f"{stem}_{variant}", str(variant),
                         {**defaults, "variant": str(variant), **values}))
    out = []
    for name, variant, values in sets:
        missing = [(start, p) for start, _, p in calls if p not in values]
        for start, p in missing:
            whose = f" in variant '{variant}'" if variant else ""
            problems.append((*line_col(text, start), f"param '{p}' has no value{whose}: give it "
                             "under 'params:' (a default) or in every variant"))
        if not missing:
            out.append(Variant(name, variant, _render(text, calls, values), values))
    return out, problems


def _line_of(text: str, start: tuple[int, int], variant: str) -> tuple[int, int]:
    """Where ``variant:`` is written in the header, from the ``variants`` key on (or that key)."""
    pattern = re.compile(rf"^(\s*--\s*(?:-\s*)?){re.escape(variant)}\s*:")
    for number, line in enumerate(text.split("\n")[start[0] - 1:], start[0]):
        if not line.lstrip().startswith("--"):
            break
        found = pattern.match(line)
        if found:
            return number, found.end(1) + 1
    return start


def _is_value(value: object) -> bool:
    if isinstance(value, list):
        return all(_is_value(v) and not isinstance(v, list) for v in value)
    return isinstance(value, (str, int, float, bool, date)) or value is None


def _calls(text: str) -> list[tuple[int, int, str]]:
    """Each ``param('name')`` of the query: (start, end) offsets and the name."""
    tokens = DUCKDB.tokenize(text)
    calls = []
    for i in range(len(tokens) - 3):
        a, b, c, d = tokens[i:i + 4]
        if (a.token_type == TokenType.VAR and a.text.lower() == "param"
                and b.token_type == TokenType.L_PAREN and c.token_type == TokenType.STRING
                and d.token_type == TokenType.R_PAREN):
            calls.append((a.start, d.end + 1, c.text))
    return calls


def sql_value(value: object) -> str:
    """A parameter's value as a DuckDB literal."""
    if isinstance(value, list):
        return "[" + ", ".join(sql_value(v) for v in value) + "]"
    if isinstance(value, date):
        return f"DATE {literal(value.isoformat())}"
    return literal(value)


def _render(text: str, calls: list[tuple[int, int, str]], values: dict) -> str:
    parts, last = [], 0
    for start, end, name in calls:
        parts += [text[last:start], sql_value(values[name])]
        last = end
    return "".join([*parts, text[last:]])
