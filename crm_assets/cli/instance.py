"""The Dagster instance every command runs on, and ``crm dev``."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from crm_assets.settings import Settings, load_settings


def psycopg2_url(url: str) -> str:
    """``url`` with the psycopg2 driver named: SQLAlchemy 2.1 reads a plain ``postgresql://`` as
    psycopg 3, on which dagster-postgres' ``NOTIFY run_events, %(id)s`` is a syntax error."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg2://" + url[len(plain):]
    return url


def ensure_dagster_home(settings: Settings) -> Path:
    """Point ``DAGSTER_HOME`` at ``<project>/.dagster_home`` (unless set) holding dagster.yaml.

    With ``DAGSTER_PG_URL`` set, the instance stores runs and events in that PostgreSQL
    database (``dagster.postgres.yaml``) instead of SQLite files under ``DAGSTER_HOME``.
    """
    home = Path(os.environ.get("DAGSTER_HOME") or settings.project_dir / ".dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    url = os.environ.get("DAGSTER_PG_URL")
    if url:
        os.environ["DAGSTER_PG_URL"] = psycopg2_url(url)
    config = "dagster.postgres.yaml" if url else "dagster.yaml"
    source = settings.project_dir / config
    target = home / "dagster.yaml"
    if source.exists() and (not target.exists() or target.read_bytes() != source.read_bytes()):
        shutil.copyfile(source, target)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def cmd_dev(args: argparse.Namespace) -> int:
    """``dagster dev`` on this project, with the same instance set-up as every other command."""
    settings = load_settings()
    ensure_dagster_home(settings)
    dagster = Path(sys.executable).with_name("dagster")
    os.chdir(settings.project_dir)
    os.execv(dagster, [str(dagster), "dev", "-w", "workspace.yaml", *args.dagster_args])
    return 0  # not reached: the process is now dagster dev
