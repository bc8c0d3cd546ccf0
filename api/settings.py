"""Every setting, read from the environment (or a ``.env`` file) in one place."""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from db.session import DEFAULT_MAX_OVERFLOW, DEFAULT_POOL_SIZE, DEFAULT_POOL_TIMEOUT, is_sqlite


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./data/cityscore.db"
    city_timezone: str = "America/New_York"
    city_name: str = "Boston"
    # Public base URL used in `next` links; empty means "from the request".
    public_base_url: str = ""
    rate_limit_enabled: bool = True
    rate_limit_reads_per_minute: int = 600
    rate_limit_writes_per_minute: int = 120
    redis_url: str = ""
    ingest_max_bytes: int = 10 * 1024 * 1024
    ingest_max_rows: int = 100_000
    # PostgreSQL connections per server process: kept open, extra under load, and how long a
    # request waits for one (seconds). workers x (pool + overflow) must fit max_connections.
    db_pool_size: int = Field(default=DEFAULT_POOL_SIZE, ge=1)
    db_max_overflow: int = Field(default=DEFAULT_MAX_OVERFLOW, ge=0)
    db_pool_timeout: float = Field(default=DEFAULT_POOL_TIMEOUT, gt=0)
    # CSV downloads draining the store at once per process (0: half of pool + overflow), so
    # bulk exports never take every connection; one waiting DB_POOL_TIMEOUT s gets a 503.
    export_slots: int = Field(default=0, ge=0)

    def export_concurrency(self) -> int:
        if self.export_slots:
            return self.export_slots
        return max(1, (self.db_pool_size + self.db_max_overflow) // 2)

    def engine_options(self) -> dict[str, Any]:
        """Pool options for the app's engine (an in-memory SQLite keeps SQLAlchemy's own)."""
        if is_sqlite(self.database_url) and make_url(self.database_url).database in (
            None,
            "",
            ":memory:",
        ):
            return {}
        return {
            "pool_size": self.db_pool_size,
            "max_overflow": self.db_max_overflow,
            "pool_timeout": self.db_pool_timeout,
        }

    # Admin writes (PUT/DELETE of departments, metrics, analyses) carry small bodies.
    admin_max_bytes: int = 1024 * 1024
    # A write body must arrive within this many seconds (408 otherwise).
    body_timeout_s: float = 30.0
    # A client must take each response chunk within this many seconds or is dropped.
    send_timeout_s: float = 60.0
    # Read replicas for public GETs (comma-separated PostgreSQL URLs), and the replication lag
    # past which a replica is passed over for the primary.
    database_read_url: str = ""
    # Each worker keeps the change versions behind ETags in memory, emptied by PostgreSQL
    # notifications or SQLite's data_version (api/changes/cache.py); off with read replicas.
    version_cache: bool = True
    read_max_lag_s: float = 30.0
    # Proxies whose X-Forwarded-For / -Proto are believed (comma-separated addresses or
    # networks). Never "*": any client could then pick its rate-limit bucket.
    forwarded_allow_ips: str = "127.0.0.1"
    # Requests with invalid API keys allowed per client address per minute (then 429).
    failed_auth_per_minute: int = 30
    # CKAN compatibility: datastore_search_sql answers 403 unless this is true.
    ckan_datastore_sql_enabled: bool = False
    # DCAT-US data.json: who answers questions about the catalogue.
    catalog_contact_name: str = "Performance analytics team"
    catalog_contact_email: str = "opendata@example.gov"
    # Level of the JSON logs on stderr (debug, info, warning, error).
    log_level: str = "info"
    # Record a CityScore run for today every day at this city-local time (HH:MM); empty: off.
    publish_daily_at: str = ""

    @field_validator("publish_daily_at")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        value = value.strip()
        if value and not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value):
            raise ValueError(f"PUBLISH_DAILY_AT must be a city-local time as HH:MM; got {value!r}")
        return value

    def publish_daily_time(self) -> dt.time | None:
        """When the daily run is recorded (city time), or None when it is off."""
        if not self.publish_daily_at:
            return None
        hour, minute = self.publish_daily_at.split(":")
        return dt.time(int(hour), int(minute))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.city_timezone)

    def today(self) -> dt.date:
        """Today on the city's calendar."""
        return dt.datetime.now(self.tz).date()

    def today_began(self) -> dt.datetime:
        """When today began on the city's calendar, as naive UTC (answers that depend on the
        date change then, so their Last-Modified must not be earlier)."""
        midnight = dt.datetime.combine(self.today(), dt.time(), self.tz)
        return midnight.astimezone(dt.UTC).replace(tzinfo=None)


@lru_cache
def get_settings() -> Settings:
    return Settings()
