"""Definitions on other engines: ``crm compile`` (transpiled SQL) and ``crm spark`` (run there)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from crm_assets.catalog.definition import UnknownName, resolve_table
from crm_assets.cli.run import as_of
from crm_assets.functions.registry import configuration_values
from crm_assets.project import load_project_catalog
from crm_assets.settings import load_settings
from crm_assets.tools.dialects import compile_definition, format_compiled
from crm_assets.tools.spark import SparkRunError, run_definition, spark_session


def cmd_compile(args: argparse.Namespace) -> int:
    """One definition in another dialect; a non-portable one is printed with its reasons first."""
    settings = load_settings()
    catalog = load_project_catalog(settings)
    try:
        table = resolve_table(args.name, catalog.by_table())
        compiled = compile_definition(catalog.by_table()[table], args.dialect,
                                      as_of=as_of(args, settings),
                                      business_timezone=settings.business_timezone,
                                      configuration=configuration_values(
                                          settings.earliest_plausible_date,
                                          (settings.currency_code, settings.currency_symbol),
                                          settings.lifecycle))
    except (UnknownName, ValueError) as err:
        print(err, file=sys.stderr)
        return 1
    print(format_compiled(compiled))
    return 0


def cmd_spark(args: argparse.Namespace) -> int:
    """Run definitions on Spark over the BI snapshot's Parquet (``pip install '.[spark]'``)."""
    settings = load_settings()
    by_table = load_project_catalog(settings).by_table()
    try:
        tables = [resolve_table(name, by_table) for name in args.names]
    except UnknownName as err:
        print(err, file=sys.stderr)
        return 1
    day = as_of(args, settings)
    spark = spark_session(args.master)
    failed = 0
    try:
        for table in tables:
            try:
                run = run_definition(spark, by_table[table], settings.serving_path, Path(args.out),
                                     as_of=day, business_timezone=settings.business_timezone)
            except SparkRunError as err:
                print(err, file=sys.stderr)
                failed += 1
                continue
            print(f"{table}: {run.rows} rows as of {day} -> {run.path}")
    finally:
        spark.stop()
    return 1 if failed else 0
