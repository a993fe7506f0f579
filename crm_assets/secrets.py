"""Secrets the project reads from the environment, and how they are kept out of what it prints.

``DAGSTER_PG_URL`` (the run storage's PostgreSQL, with its password) and ``CRM_ALERT_WEBHOOK`` (a
Slack-style URL whose path is the credential) come from the environment only, never from
``pyproject.toml`` or run config, so they are in no file of the project and no Dagster record.
Every message that could carry one goes through :func:`scrub` first.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

SECRET_VARIABLES = ("DAGSTER_PG_URL", "CRM_ALERT_WEBHOOK")


def mask_url(url: str) -> str:
    """``url`` with its password (and, for an http(s) URL, its path and query) replaced by
    ``***``: ``postgresql://crm:***@db:5432/crm``, ``https://hooks.slack.com/***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    if parts.scheme in ("http", "https"):
        return urlunsplit((parts.scheme, netloc.rsplit("@", 1)[-1], "/***" if parts.path
                           not in ("", "/") else parts.path, "", ""))
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def scrub(text: str, *more: str | None) -> str:
    """``text`` with every secret of the environment, and ``more`` (URLs), masked (a URL's
    password or path alone too)."""
    for value in [*(os.environ.get(v) for v in SECRET_VARIABLES), *more]:
        if not value:
            continue
        secrets = {value}
        try:
            parts = urlsplit(value)
            if parts.password:
                secrets.add(parts.password)
            if parts.scheme in ("http", "https") and parts.path not in ("", "/"):
                secrets.add(parts.path + (f"?{parts.query}" if parts.query else ""))
        except ValueError:
            pass
        for secret in sorted(secrets, key=len, reverse=True):
            text = text.replace(secret, mask_url(value) if secret == value else "***")
    return text
