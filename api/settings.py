"""Every setting, read from the environment (or a ``.env`` file) in one place."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

from pydantic_settings import BaseSettings, SettingsConfigDict


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
    # PostgreSQL connections kept per server process (match the threadpool's 40 threads).
    db_pool_size: int = 40
    # Level of the JSON logs on stderr (debug, info, warning, error).
    log_level: str = "info"

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
