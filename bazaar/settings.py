"""One settings object for every part of Bazaar, read from the environment.

Every endpoint is configurable (prefix `BAZAAR_`, e.g. `BAZAAR_REDIS_URL`), so
the same code runs on the local stack and against a cluster.  Secrets have no
defaults: a password comes from the environment or is absent.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Optional

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BAZAAR_", extra="ignore")

    home: Path = Field(
        default=PROJECT_ROOT / ".bazaar",
        description="Folder for the local stack's downloads, configs, logs, pids and data.",
    )
    host: str = Field(default="127.0.0.1", description="Address the local services bind to.")

    redis_port: int = 6379
    redis_url: Optional[str] = Field(
        default=None, description="Redis URL; defaults to the local stack's redis on redis_port."
    )
    redis_password: Optional[SecretStr] = Field(
        default=None, description="Redis password, if the server requires one (never logged)."
    )
    namespace: str = Field(default="bazaar", description="Prefix of every Redis key of the engine.")

    engine_port: int = 5000
    engine_workers: int = Field(default=4, description="gunicorn worker processes.")
    max_body_bytes: int = Field(default=64 * 1024, description="Larger request bodies get 413.")

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or f"redis://{self.host}:{self.redis_port}/0"

    @property
    def engine_url(self) -> str:
        return f"http://{self.host}:{self.engine_port}"


@cache
def get_settings() -> Settings:
    return Settings()
