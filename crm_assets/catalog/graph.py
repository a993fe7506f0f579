"""The graph of definitions: duplicates, unknown tables, layer order, cycles, dependency order.

Graph algorithms come from the standard library (:mod:`graphlib`); what is the project's own is only
what a data engineer reads: which file, where, and why.
"""

from __future__ import annotations

import difflib
import graphlib
import heapq
from collections.abc import Mapping

from crm_assets.catalog.definition import Definition, Problem, Schema
from crm_assets.catalog.text import first_code_offset, line_col
from crm_assets.layers import LAYERS, READABLE_FROM, SCHEMAS


def graph_problems(defs: list[Definition], external: Mapping[str, Schema]
                    ) -> tuple[list[Problem], list[Definition]]:
    """Problems between files (duplicates, unknown tables, layers, cycles), and the duplicates.

    A duplicate is a file defining a table that an earlier file (or Python code) already
    defines; it is reported and left out of the catalogue, so the files reading that table are
    still checked against the first definition.
    """
    problems: list[Problem] = []
    by_table: dict[str, Definition] = {}
    duplicates: list[Definition] = []
    for d in defs:
        if d.table in external:
            problems.append(Problem(d.display_path, 1, 1, f"duplicate definition of {d.table}: it "
                                    "is built by Python code (ingest or identity)"))
            duplicates.append(d)
        elif d.table in by_table:
            problems.append(Problem(d.display_path, 1, 1, f"duplicate definition of {d.table}: "
                                    f"also defined by {by_table[d.table].display_path}"))
            duplicates.append(d)
        else:
            by_table[d.table] = d
    known = sorted({*by_table, *external})
    for d in defs:
        if by_table.get(d.table) is not d:
            continue
        for dep in list(d.deps):
            schema = READABLE_FROM.get(dep, dep.split(".")[0])
            offset = d.dep_offsets.get(dep)
            where = line_col(d.text, offset if offset is not None else d.select_offset)
            if dep == d.table:
                problems.append(Problem(d.display_path, *where, f"{d.table} reads itself"))
                d.deps.remove(dep)
            elif dep not in by_table and dep not in external:
                hint = "" if schema in SCHEMAS else f" (unknown layer '{schema}')"
                close = difflib.get_close_matches(dep, known, n=1, cutoff=0.8)
                hint += f"; did you mean {close[0]}?" if close else ""
                problems.append(Problem(d.display_path, *where,
                                        f"table {dep} is not defined by any file or source{hint}"))
                d.deps.remove(dep)
            elif schema in LAYERS and LAYERS.index(schema) > LAYERS.index(d.layer):
                problems.append(Problem(d.display_path, *where,
                                        f"{d.layer} may not read {dep} from the later layer "
                                        f"'{schema}'" + (f" (it is written with {schema})"
                                                         if dep in READABLE_FROM else "")))
    for cycle in cycles(by_table):
        names = " -> ".join(by_table[t].display_path for t in [*cycle, cycle[0]])
        for t, nxt in zip(cycle, [*cycle[1:], cycle[0]], strict=True):
            d = by_table[t]
            where = line_col(d.text, d.dep_offsets.get(nxt, first_code_offset(d.text)))
            problems.append(Problem(d.display_path, *where, f"dependency cycle: {names}"))
    return problems, duplicates


def cycles(by_table: Mapping[str, Definition]) -> list[list[str]]:
    """Each dependency cycle once, in the order its edges run (a reads b reads ... reads a), from
    its smallest table, so messages name the files in the order the cycle runs."""
    graph = {t: {dep for dep in d.deps if dep in by_table} for t, d in by_table.items()}
    found: list[list[str]] = []
    while True:
        try:
            graphlib.TopologicalSorter(graph).prepare()
            return sorted(found)
        except graphlib.CycleError as err:
            # graphlib lists the cycle with each node a dependency of the next; we follow reads
            loop = list(reversed(err.args[1][:-1]))
            start = loop.index(min(loop))
            found.append(loop[start:] + loop[:start])
            for table in loop:  # one report per cycle; what remains may hold others
                graph.pop(table, None)
            for deps in graph.values():
                deps.difference_update(loop)


def dependency_order(defs: list[Definition]) -> list[Definition]:
    """``defs`` so that each comes after what it reads; ties by layer, then name (stable).

    A definition in a cycle (reported by :func:`graph_problems`) is placed as if it read nothing.
    """
    by_table = {d.table: d for d in defs}
    cyclic = {t for cycle in cycles(by_table) for t in cycle}
    rank = {d.table: (LAYERS.index(d.layer) if d.layer in LAYERS else 99, d.name) for d in defs}
    sorter = graphlib.TopologicalSorter(
        {d.table: [] if d.table in cyclic else [dep for dep in d.deps if dep in by_table]
         for d in defs})
    sorter.prepare()
    order: list[Definition] = []
    ready: list[tuple[tuple[int, str], str]] = []
    while sorter.is_active():  # always the earliest layer, then name, among those ready
        for table in sorter.get_ready():
            heapq.heappush(ready, (rank[table], table))
        _, table = heapq.heappop(ready)
        order.append(by_table[table])
        sorter.done(table)
    return order


def levels(defs: list[Definition]) -> list[list[Definition]]:
    """``defs`` (in dependency order) grouped so that nothing reads a table of its own group."""
    depth: dict[str, int] = {}
    grouped: list[list[Definition]] = []
    for d in defs:
        level = max((depth[dep] + 1 for dep in d.deps if dep in depth), default=0)
        depth[d.table] = level
        while len(grouped) <= level:
            grouped.append([])
        grouped[level].append(d)
    return grouped
