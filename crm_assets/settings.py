"""Project settings: where things are and which calendar the business lives on.

Values come from ``[tool.crm]`` in the project's ``pyproject.toml`` and can be overridden by
environment variables, read when :func:`load_settings` is called (never at import time), so tests
build definitions against a temporary warehouse without touching the process environment.

| setting | env var | default |
|---|---|---|
| ``project_dir`` | ``CRM_PROJECT_DIR`` | the folder holding ``crm_assets/`` |
| ``input_dir`` | ``CRM_INPUT_DIR`` | ``<project>/seeds`` |
| ``landing_dir`` | ``CRM_LANDING_DIR`` | ``<project>/landing`` (the ``landing`` sensor) |
| ``warehouse_path`` | ``CRM_WAREHOUSE`` | ``<project>/warehouse/crm.duckdb`` |
| ``business_timezone`` | ``CRM_TIMEZONE`` | ``Europe/Moscow`` |
| ``partition_start`` | ``CRM_PARTITION_START`` | ``2025-01-01`` |
| ``demo_as_of`` | ``CRM_DEMO_AS_OF`` | ``2026-06-30`` (the last day of the shipped seeds) |
| ``freshness_hours`` | (``[tool.crm.freshness_hours]``) | :data:`DEFAULT_FRESHNESS_HOURS` |
| ``max_reject_rate`` | ``CRM_MAX_REJECT_RATE``, ``[tool.crm.max_reject_rate]`` | 0.2 |
| ``serving_dir`` | ``CRM_SERVING_DIR`` | ``serving`` next to the warehouse file (BI reads it) |
| ``suppression_key_file`` | ``CRM_SUPPRESSION_KEY_FILE`` | ``suppression.key`` by the warehouse |
| ``contacts_dir`` | ``CRM_CONTACTS_DIR`` | ``contacts`` next to the warehouse file (campaigns) |
| ``rfm_segment_map`` | ``CRM_RFM_SEGMENT_MAP`` | ``seeds/reference/rfm_segment_map.csv`` |
| ``earliest_plausible_date`` | ``CRM_EARLIEST_DATE`` | ``1990-01-01`` (before: placeholders) |
| ``currency_code``, ``currency_symbol`` | ``CRM_CURRENCY``, ``CRM_CURRENCY_SYMBOL`` | RUB, ₽ |
| ``plausible_days_after_load`` | ``CRM_PLAUSIBLE_DAYS_AFTER_LOAD`` | 1 |
| ``lifecycle`` | (``[tool.crm.lifecycle]``) | new 30, active 60, lapsed 180 days |
| ``lock_wait_seconds`` | ``CRM_LOCK_WAIT_SECONDS`` | 120 (a step waits for an outside lock) |
| ``alert_log`` | ``CRM_ALERT_LOG`` | ``<project>/logs/alerts.log`` |
| ``alert_webhook`` | ``CRM_ALERT_WEBHOOK`` | none (alerts only in the log) |
| ``clv_holdout_days``, ``clv_fit_sample_size`` | (``[tool.crm.clv]``) | 182, 200000 |
| ``clv_monthly_discount_rate`` | (``[tool.crm.clv] monthly_discount_rate``) | 0.01 |
| ``catalog_cache_path`` | ``CRM_CATALOG_CACHE`` (``off``: none) | ``target/catalog_cache.json`` |
| ``memory_limit`` | ``CRM_MEMORY_LIMIT`` | ``2GB`` (DuckDB's memory in a run; beyond, it spills) |
| ``temp_directory`` | ``CRM_TEMP_DIRECTORY`` | ``<warehouse file>.tmp`` (where DuckDB spills) |
| ``threads`` | ``CRM_THREADS`` | every core |
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_PROJECT_DIR = PACKAGE_DIR.parent

DEFAULT_FRESHNESS_HOURS: dict[str, float] = {
    "customers": 36, "orders": 36, "order_items": 36, "interactions": 36, "sessions": 36,
    "stores": 24 * 30, "products": 24 * 30,
}
"""Hours a raw table may go without a newly loaded file before its freshness check warns: daily
exports get a day and a half (one missed night is late, not yet alarming), reference tables a month.
``[tool.crm.freshness_hours]`` overrides per table."""

DEFAULT_MEMORY_LIMIT = "2GB"
"""DuckDB's buffer pool of a run. Enough for 1M persons without spilling much (the whole build then
peaks near 3 GB of RAM); 10M persons run within it by spilling. Raise it on a machine that has RAM
to spare for a faster big build; DuckDB's own default, 80 % of RAM, lets one step starve the
machine."""

DEFAULT_MAX_REJECT_RATE = 0.2
"""The share of a run's new raw rows a staging table may reject before its blocking ``reject_rate``
check fails (a superseded version is not a reject). ``[tool.crm.max_reject_rate]`` overrides it,
``default = 0.3`` for every table or ``orders = 0.5`` for one known-dirty source."""


@dataclass(frozen=True)
class Settings:
    """Everything that differs between a laptop, CI and production, in one immutable value."""

    project_dir: Path
    input_dir: Path
    warehouse_path: Path
    business_timezone: str = "Europe/Moscow"
    partition_start: date = date(2025, 1, 1)
    demo_as_of: date = date(2026, 6, 30)
    freshness_hours: dict[str, float] = field(default_factory=dict)
    max_reject_rate: dict[str, float] = field(default_factory=dict)
    """Per staging table (or ``default``): see :data:`DEFAULT_MAX_REJECT_RATE`."""
    landing_dir: Path | None = None
    catalog_cache_path: Path | None = None
    """Where loads of the SQL catalogue keep what they parsed and bound, for the next process."""
    earliest_plausible_date: date = date(1990, 1, 1)
    """Orders before it are rejected and registrations nulled as placeholders (1900-01-01, the
    1970 epoch); move it back for older data."""
    plausible_days_after_load: int = 1
    """A date more than this many days after its file was loaded is a typo (2099-12-31)."""
    currency_code: str = "RUB"
    """The business's currency (ISO 4217): amounts in the data are in it (``currency_code()``)."""
    currency_symbol: str = "₽"
    lifecycle: dict[str, int] = field(default_factory=dict)
    """``new_days``, ``active_days``, ``lapsed_days`` (see ``DEFAULT_LIFECYCLE`` in
    :mod:`crm_assets.functions.registry`); the defaults for any not given."""
    lock_wait_seconds: float = 120
    """How long a step waits for the warehouse while a process outside Dagster holds it."""
    alert_log: Path | None = None
    """Where alerts are written (:mod:`crm_assets.defs.alerts`); default ``logs/alerts.log``."""
    alert_webhook: str | None = None
    """A URL alerts are POSTed to as JSON (a Slack incoming webhook, say)."""
    clv_holdout_days: int = 182
    """The customer-base models are fitted on data up to this many days before the fit's as-of
    day and checked against what those people bought since (``[tool.crm.clv] holdout_days``)."""
    clv_fit_sample_size: int = 200_000
    """At most this many buyers (a stable sample) enter a fit; all of them below it."""
    clv_monthly_discount_rate: float = 0.01
    """``clv_12m`` discounts each month's expected spend at this rate (1 % a month ~ 12.7 % a
    year)."""
    serving_dir: Path | None = None
    """Where BI reads a published snapshot (:mod:`crm_assets.serving.snapshot`); default: next to
    the warehouse file."""

    suppression_key_file: Path | None = None
    """The secret of erased people's keyed hashes; default ``suppression.key`` by the warehouse."""
    rfm_map_file: Path | None = None
    """The RFM map (:mod:`crm_assets.warehouse.reference`); default
    ``seeds/reference/rfm_segment_map.csv`` in the project."""
    contacts_dir: Path | None = None
    """Where campaign tools read the contacts snapshot and the trigger exports; default: next to
    the warehouse file."""
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    """DuckDB's ``memory_limit`` for a run's connections: a size (``2GB``) or a share of RAM
    (``40%``). Sorts, joins and windows bigger than it spill to :attr:`temp_directory`."""
    temp_directory: Path | None = None
    """Where DuckDB spills; default ``<warehouse file>.tmp`` beside it (same disk, emptied by
    DuckDB when the connection closes)."""
    threads: int | None = None
    """DuckDB's worker threads; default every core."""

    @property
    def duckdb_config(self) -> dict[str, str | int]:
        """The DuckDB settings a run opens the warehouse with: memory limit, spill folder and
        threads."""
        temp = self.temp_directory or self.warehouse_path.with_name(self.warehouse_path.name
                                                                    + ".tmp")
        return {"memory_limit": self.memory_limit, "temp_directory": str(temp),
                **({"threads": self.threads} if self.threads else {})}

    @property
    def serving_path(self) -> Path:
        return self.serving_dir or self.warehouse_path.parent / "serving"

    @property
    def rfm_segment_map(self) -> Path:
        return self.rfm_map_file or self.project_dir / "seeds" / "reference" / "rfm_segment_map.csv"

    @property
    def contacts_path(self) -> Path:
        return self.contacts_dir or self.warehouse_path.parent / "contacts"

    @property
    def suppression_key_path(self) -> Path:
        """The key of erased people's hashes (:mod:`crm_assets.warehouse.suppression`):
        ``CRM_SUPPRESSION_KEY_FILE``, else ``suppression.key`` next to the warehouse file."""
        return self.suppression_key_file or self.warehouse_path.parent / "suppression.key"

    @property
    def alert_log_path(self) -> Path:
        return self.alert_log or self.project_dir / "logs" / "alerts.log"

    @property
    def sql_dir(self) -> Path:
        return self.project_dir / "sql"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.business_timezone)

    def yesterday(self, now: datetime | None = None) -> date:
        """The default as-of date of a manual run: yesterday in the business time zone."""
        now = now or datetime.now(tz=self.zone)
        return now.astimezone(self.zone).date() - timedelta(days=1)

    def freshness_limit_hours(self, table: str) -> float:
        """The freshness limit of ``raw.<table>``: configured, else the default, else 36 hours."""
        return float(self.freshness_hours.get(table, DEFAULT_FRESHNESS_HOURS.get(table, 36)))

    def reject_rate_limit(self, table: str) -> float:
        """The largest share of new rows ``staging.<table>`` may reject (0 to 1)."""
        return float(self.max_reject_rate.get(
            table, self.max_reject_rate.get("default", DEFAULT_MAX_REJECT_RATE)))


def _tool_section(project_dir: Path) -> dict:
    pyproject = project_dir / "pyproject.toml"
    if not pyproject.exists():
        return {}
    with pyproject.open("rb") as fh:
        return tomllib.load(fh).get("tool", {}).get("crm", {})


def load_settings(**overrides) -> Settings:
    """Read settings from ``pyproject.toml`` and the environment; keyword arguments win."""
    project_dir = Path(overrides.pop("project_dir", None) or os.environ.get("CRM_PROJECT_DIR")
                       or DEFAULT_PROJECT_DIR).resolve()
    tool = _tool_section(project_dir)

    def pick(key: str, env: str, default):
        return os.environ.get(env) or tool.get(key) or default

    input_dir = Path(pick("input_dir", "CRM_INPUT_DIR", "seeds"))
    warehouse = Path(pick("warehouse_path", "CRM_WAREHOUSE", "warehouse/crm.duckdb"))
    landing = Path(pick("landing_dir", "CRM_LANDING_DIR", "landing"))
    serving = pick("serving_dir", "CRM_SERVING_DIR", None)
    contacts = pick("contacts_dir", "CRM_CONTACTS_DIR", None)
    rfm_map = pick("rfm_segment_map", "CRM_RFM_SEGMENT_MAP", None)
    key_file = os.environ.get("CRM_SUPPRESSION_KEY_FILE")  # never in pyproject.toml
    alert_log = pick("alert_log", "CRM_ALERT_LOG", None)
    temp_dir = pick("temp_directory", "CRM_TEMP_DIRECTORY", None)
    threads = pick("threads", "CRM_THREADS", None)
    cache = str(pick("catalog_cache_path", "CRM_CATALOG_CACHE", "target/catalog_cache.json"))
    cache_path = None if cache.lower() in ("off", "none", "false", "0") else Path(cache)
    clv = tool.get("clv", {})
    settings = Settings(
        project_dir=project_dir,
        input_dir=input_dir if input_dir.is_absolute() else project_dir / input_dir,
        warehouse_path=warehouse if warehouse.is_absolute() else project_dir / warehouse,
        business_timezone=pick("business_timezone", "CRM_TIMEZONE", "Europe/Moscow"),
        partition_start=date.fromisoformat(
            str(pick("partition_start", "CRM_PARTITION_START", "2025-01-01"))
        ),
        demo_as_of=date.fromisoformat(str(pick("demo_as_of", "CRM_DEMO_AS_OF", "2026-06-30"))),
        freshness_hours={k: float(v) for k, v in tool.get("freshness_hours", {}).items()},
        max_reject_rate={k: float(v) for k, v in {
            **tool.get("max_reject_rate", {}),
            **({"default": os.environ["CRM_MAX_REJECT_RATE"]}
               if os.environ.get("CRM_MAX_REJECT_RATE") else {})}.items()},
        landing_dir=landing if landing.is_absolute() else project_dir / landing,
        catalog_cache_path=(cache_path if cache_path is None or cache_path.is_absolute()
                            else project_dir / cache_path),
        alert_log=None if alert_log is None else (
            Path(alert_log) if Path(alert_log).is_absolute() else project_dir / alert_log),
        alert_webhook=os.environ.get("CRM_ALERT_WEBHOOK"),  # a secret: never in pyproject.toml
        lock_wait_seconds=float(pick("lock_wait_seconds", "CRM_LOCK_WAIT_SECONDS", 120)),
        memory_limit=str(pick("memory_limit", "CRM_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT)),
        temp_directory=None if temp_dir is None else (
            Path(temp_dir) if Path(temp_dir).is_absolute() else project_dir / temp_dir),
        threads=int(threads) if threads else None,
        lifecycle={k: int(v) for k, v in tool.get("lifecycle", {}).items()},
        plausible_days_after_load=int(pick("plausible_days_after_load",
                                           "CRM_PLAUSIBLE_DAYS_AFTER_LOAD", 1)),
        currency_code=pick("currency_code", "CRM_CURRENCY", "RUB"),
        currency_symbol=pick("currency_symbol", "CRM_CURRENCY_SYMBOL", "₽"),
        earliest_plausible_date=date.fromisoformat(str(pick(
            "earliest_plausible_date", "CRM_EARLIEST_DATE", "1990-01-01"))),
        clv_holdout_days=int(clv.get("holdout_days", 182)),
        clv_fit_sample_size=int(clv.get("fit_sample_size", 200_000)),
        clv_monthly_discount_rate=float(clv.get("monthly_discount_rate", 0.01)),
        serving_dir=None if serving is None else (
            Path(serving) if Path(serving).is_absolute() else project_dir / serving),
        suppression_key_file=Path(key_file) if key_file else None,
        rfm_map_file=None if rfm_map is None else (
            Path(rfm_map) if Path(rfm_map).is_absolute() else project_dir / rfm_map),
        contacts_dir=None if contacts is None else (
            Path(contacts) if Path(contacts).is_absolute() else project_dir / contacts),
    )
    ZoneInfo(settings.business_timezone)  # fail early on a misspelt zone
    return replace(settings, **overrides) if overrides else settings
