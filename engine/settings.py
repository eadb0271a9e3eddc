"""The engine's and the relay's settings, read from `BAZAAR_*` environment variables.

Each runtime component reads only its own settings; the local stack (`bazaar up`)
composes them for the processes it starts.  Endpoints default to the standard
ports on 127.0.0.1; secrets have no defaults.
"""

from __future__ import annotations

import json

from typing import Literal, Optional

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.kafka_auth import KafkaLogin


class RedisSettings(BaseSettings):
    """Where the engine's state lives (the engine, the relay and the completeness check read it)."""

    model_config = SettingsConfigDict(env_prefix="BAZAAR_", extra="ignore")

    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="The engine's Redis.")
    redis_password: Optional[SecretStr] = Field(
        default=None, description="Redis password, if the server requires one (never logged)."
    )
    namespace: str = Field(default="bazaar", description="Prefix of every Redis key of the engine.")
    history_max: int = Field(
        default=10_000, ge=1,
        description="Trades kept in each player's history, and closed offers in each of its offer lists "
                    "(about 250 bytes a trade in Redis, per player).",
    )
    offer_keep_s: int = Field(
        default=7 * 24 * 3600, ge=1, description="How long a closed offer stays readable (GET /offers/{id}).")


class EngineSettings(RedisSettings):
    # a refused value is never echoed in the error (it may be a secret)
    model_config = SettingsConfigDict(env_prefix="BAZAAR_", extra="ignore", hide_input_in_errors=True)

    max_body_bytes: int = Field(default=64 * 1024, description="Larger request bodies get 413.")
    key_rate: int = Field(
        default=1000, ge=1, description="Requests per second a new API key may make, unless created with its own."
    )
    outbox_max: int = Field(
        default=1_000_000, ge=1,
        description="Events the outbox may hold before writes answer 503 `backpressure` (about 1 KB each in Redis).",
    )
    idempotency_keep_s: int = Field(default=24 * 3600, ge=1, description="How long an Idempotency-Key's answer is kept.")
    token_secret: Optional[SecretStr] = Field(
        default=None,
        description="Signs player tokens (at least 32 characters); unset, no player tokens are minted or accepted.",
    )
    player_rate: int = Field(default=20, ge=1, description="Requests per second one player's tokens may make.")
    metrics: bool = Field(
        default=True, description="Count requests, trades and Redis round trips for `GET /metrics` (served either way).")
    max_open_offers: int = Field(
        default=20, ge=1, description="Open offers one player may have made at once (409 `too_many_open_offers`).")
    offer_refusals_per_minute: int = Field(
        default=5, ge=1, description="Refused accepts one offer may take a minute (a burst of as many); more are "
                                     "429 `rate_limited` and not recorded.")

    @field_validator("token_secret", mode="before")
    @classmethod
    def _secret(cls, value):
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text in (None, ""):
            return None
        if len(text) < 32:
            raise ValueError("BAZAAR_TOKEN_SECRET must be at least 32 characters (e.g. `openssl rand -base64 48`)")
        return value


class RelaySettings(RedisSettings):
    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="Kafka bootstrap servers.")
    topic: str = Field(default="events", description="The Kafka topic every event goes to.")
    relay_consumer: str = Field(
        default="relay-1", description="The relay's consumer name; a restarted relay resumes its own pending entries."
    )
    relay_batch: int = Field(default=2000, description="Outbox entries the relay moves per batch.")
    relay_compression: Literal["zstd", "lz4", "snappy", "gzip", "none"] = Field(
        default="zstd", description="How the relay compresses its batches for Kafka (the log on disk keeps them so)."
    )
    relay_gather_ms: int = Field(
        default=25, ge=0,
        description="At a steady flow, a batch gathers at least this long: fewer, larger batches for the same "
                    "events, for at most this much more latency.")
    relay_claim_idle_ms: int = Field(
        default=30_000, description="Entries another relay left pending this long are claimed and re-sent."
    )
    relay_metrics_host: str = Field(default="127.0.0.1", description="Address the relay's `/metrics` binds to.")
    relay_metrics_port: int = Field(default=9464, ge=0, description="Port of the relay's `/metrics` (0: none).")
    relay_kafka_user: str = Field(default="relay", description="The relay's Kafka principal (SCRAM-SHA-512).")
    relay_kafka_password: Optional[SecretStr] = Field(
        default=None, description="The relay's Kafka password; none: anonymous (PLAINTEXT), which a stack with "
                                  "SASL refuses.")

    def kafka_login(self) -> KafkaLogin:
        pw = self.relay_kafka_password
        return KafkaLogin(self.relay_kafka_user, pw.get_secret_value() if pw else None)


def to_env(*settings: BaseSettings) -> dict[str, str]:
    """Settings as the `BAZAAR_*` variables they are read from, so a child process sees the same
    configuration (secrets included: for the child's environment only, never for a log)."""
    env = {}
    for one in settings:
        for name, value in one.model_dump(exclude_none=True).items():
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, (dict, list)):  # read back as JSON, as pydantic-settings parses them
                value = json.dumps(value)
            env[f"BAZAAR_{name.upper()}"] = str(value)
    return env
