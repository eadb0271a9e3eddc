"""The local stack's settings, and the runtime settings it composes from them.

`StackSettings` holds what only the local stack needs (its home folder, its
ports, JVM heaps, versions of the servers it fetches).  `Stack` composes from
it the settings each runtime component reads (`engine.settings`,
`spark_jobs.settings`, `orchestration.settings`): endpoints point at the local
services, and whatever else a runtime setting holds comes from its own
`BAZAAR_*` variable or default.  The processes the stack starts get the
composition as `BAZAAR_*` variables (`Stack.env`).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Literal, Optional

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.kafka_auth import KafkaLogin
from engine.settings import EngineSettings, RedisSettings, RelaySettings, to_env
from orchestration.settings import CheckSettings, ReportSettings, TopicSettings, TrinoSettings
from spark_jobs.settings import LauncherSettings, WarehouseSettings


# the variables that hold secrets: never in a service's environment unless it needs that one
SECRETS = ("BAZAAR_TOKEN_SECRET", "BAZAAR_REDIS_PASSWORD", "BAZAAR_API_KEY", "BAZAAR_POSTGRES_PASSWORD",
           "BAZAAR_TRINO_PASSWORD", "BAZAAR_TRINO_OWNER_PASSWORD", "BAZAAR_KAFKA_ADMIN_PASSWORD",
           "BAZAAR_RELAY_KAFKA_PASSWORD", "BAZAAR_SINK_KAFKA_PASSWORD")
# the Kafka principals' passwords: setting -> the file the stack keeps it in when the variable is unset
KAFKA_PASSWORDS = {"kafka_admin_password": "kafka-admin-password", "relay_kafka_password": "kafka-relay-password",
                   "sink_kafka_password": "kafka-sinks-password"}


def private_file(path: Path, make: Callable[[], str], valid: Callable[[str], bool] = bool) -> str:
    """The secret kept in `path`, made with `make()` first if the file is missing or does not hold a
    `valid` one (emptied by a crash while it was written); created 0600 (never readable by others,
    not even for a moment)."""
    if path.exists() and not valid(path.read_text().strip()):
        path.unlink()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # made meanwhile by another process of the stack
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(make() + "\n")
    return path.read_text().strip()


def private_write(path: Path, text: str) -> None:
    """`text` into `path`, replaced whole, and never readable by others, not even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.replace(path)


def _state_home() -> Path:
    return Path.home() / ".local" / "state" / "bazaar"


# The cluster profile's own home and ports, so it runs beside the default stack: each port is the
# default's plus 10,000, but the Kafka controllers' (the brokers take 19092-19094).
CLUSTER_DEFAULTS: dict[str, Any] = {
    "home": Path.home() / ".local" / "state" / "bazaar-cluster",
    "redis_port": 16379, "engine_port": 15000, "kafka_port": 19092, "kafka_controller_port": 19192,
    "metastore_port": 19083, "trino_port": 18080, "trino_internal_port": 18081, "dagster_port": 13000,
    "reports_port": 15050,
    "spark_master_port": 17077, "spark_master_ui_port": 18090, "spark_worker_ui_port": 18091,
    "hdfs_port": 18020, "hdfs_http_port": 19870, "hdfs_datanode_port": 19866, "hdfs_datanode_http_port": 19864,
    "hdfs_datanode_ipc_port": 19867, "postgres_port": 15432, "dagster_grpc_port": 14000,
    "prometheus_port": 19090, "relay_metrics_port": 19464, "sink_metrics_port": 19465, "kafka_metrics_port": 19480,
    "metastore_metrics_port": 19470, "trino_metrics_port": 19471,
    "kafka_brokers": 3,
}


def replication_for(brokers: int) -> tuple[int, int]:
    """Replicas of each partition and min.insync.replicas for a Kafka of `brokers`: with three or
    more, each partition on three and a write acknowledged by two (the relay's acks=all), so one
    broker's loss loses nothing and stops nothing."""
    return min(brokers, 3), 2 if brokers >= 3 else 1


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BAZAAR_", extra="ignore")

    profile: Literal["local", "cluster"] = Field(
        default="local",
        description="`local`: every service one process; `cluster`: the cluster shape on this machine "
                    "(three Kafka brokers, replication 3), with a home and ports of its own.")
    home: Path = Field(default_factory=_state_home,
                       description="Folder for the local stack's configs, logs, pids and data.")
    cache: Path = Field(default_factory=lambda: Path.home() / ".cache" / "bazaar",
                        description="Downloaded and built artifacts (Kafka and Trino jars), shared by every home.")
    maven_repo: Path = Field(default_factory=lambda: Path.home() / ".m2" / "repository",
                             description="Maven's local repository (download cache).")
    host: str = Field(default="127.0.0.1", description="Address the local services bind to.")
    redis_port: int = 6379
    redis_maxmemory: str = Field(default="2gb", description="Redis's memory limit (noeviction: writes refused beyond).")
    api_key: Optional[SecretStr] = Field(
        default=None, description="The API key the stack's tools send; HOME/api-key (made by `bazaar up`) when unset."
    )
    engine_port: int = 5000
    engine_workers: int = Field(default=2, description="The engine's worker processes (granian), one per core.")
    engine_threads: int = Field(
        default=4, ge=1,
        description="Threads per engine worker running requests (granian's blocking threads): while one waits for "
                    "Redis another runs; more only contend for the worker's GIL (measured: 4 beat 1, 2, 16 and "
                    "granian's default of backlog/workers/2).")
    engine_access_log: bool = Field(
        default=False, description="A line per request in the engine's log (no header, query or body); it costs "
                                   "about a third of a trade's CPU (Python logging in the worker), so it is off "
                                   "by default: failures are logged under their request id either way.")
    kafka_port: int = Field(default=9092, description="The first broker's port; broker i listens on this plus i-1.")
    kafka_controller_port: int = Field(
        default=9093, description="The first broker's controller port; broker i's is this plus i-1.")
    kafka_brokers: int = Field(
        default=1, ge=1, le=9,
        description="Kafka brokers, each also a controller (KRaft): 1, or 3 for replication 3 with "
                    "min.insync.replicas 2 (the cluster profile).")
    kafka_version: str = Field(default="4.1.1", description="org.apache.kafka:kafka_2.13 version.")
    kafka_heap: str = "512m"
    metastore_port: int = 9083
    metastore_heap: str = "512m"
    trino_port: int = Field(default=8080, description="Trino's HTTPS port, the one clients use.")
    trino_internal_port: int = Field(
        default=8081, description="Trino's plain HTTP port, for its own internal calls (signed with a shared "
                                  "secret); it takes no client's password.")
    trino_version: str = Field(default="476", description="io.trino:trino-server version (Maven Central).")
    trino_heap: str = Field(default="2G", description="Trino's JVM heap (-Xmx).")
    trino_query_memory: str = Field(
        default="1GB", description="Memory one query may hold (query.max-memory[-per-node]); beyond, it spills to disk."
    )
    trino_java_home: Optional[Path] = Field(
        default=None, description="JDK for Trino (24 or newer); found under /usr/lib/jvm when unset."
    )
    dagster_port: int = 3000
    reports_port: int = 5050
    spark_master_port: int = Field(default=7077, description="The cluster profile's Spark master.")
    spark_master_ui_port: int = 8090
    spark_worker_ui_port: int = 8091
    spark_worker_cores: int = Field(default=2, ge=2, description="Cores the Spark worker offers (each sink takes one).")
    spark_worker_memory: str = Field(default="3g", description="Memory the Spark worker offers the sinks' executors.")
    hdfs_port: int = Field(default=8020, description="The cluster profile's HDFS namenode (RPC).")
    hdfs_http_port: int = Field(default=9870, description="The namenode's web port (WebHDFS, JMX).")
    hdfs_datanode_port: int = Field(default=9866, description="The datanode's data transfer port.")
    hdfs_datanode_http_port: int = 9864
    hdfs_datanode_ipc_port: int = 9867
    hdfs_heap: str = Field(default="512m", description="Heap of each HDFS daemon (-Xmx).")
    postgres_port: int = Field(default=5432, description="The cluster profile's Postgres (metastore, Dagster).")
    postgres_password: Optional[SecretStr] = Field(
        default=None, description="The password of Postgres's `bazaar` role; HOME/postgres-password (made on first "
                                  "start) when unset.")
    postgres_jdbc_version: str = Field(default="42.7.14", description="org.postgresql:postgresql (the metastore's "
                                                                       "JDBC driver) version.")
    dagster_grpc_port: int = Field(default=4000, description="The cluster profile's Dagster code server (gRPC).")
    prometheus_port: int = Field(default=9090, description="The stack's Prometheus (its UI and API).")
    prometheus_retention: str = Field(default="15d", description="How long Prometheus keeps samples.")
    prometheus_scrape_interval: str = Field(default="5s", description="How often Prometheus scrapes every target.")
    relay_metrics_port: int = Field(default=9464, description="The relay's `/metrics`.")
    sink_metrics_port: int = Field(default=9465, description="The trades sink's `/metrics`; player_states' is the next.")
    kafka_metrics_port: int = Field(
        default=9480, description="Broker 1's JMX metrics (Prometheus' JMX exporter agent); broker i's is this plus i-1.")
    metastore_metrics_port: int = Field(default=9470, description="The metastore's JMX metrics (JMX exporter agent).")
    trino_metrics_port: int = Field(default=9471, description="Trino's JMX metrics (JMX exporter agent).")
    jmx_exporter_version: str = Field(default="1.0.1", description="io.prometheus.jmx:jmx_prometheus_javaagent.")

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, data: Any) -> Any:
        """The cluster profile's own home and ports, where not set explicitly."""
        if isinstance(data, dict) and data.get("profile") == "cluster":
            data = {**CLUSTER_DEFAULTS, **data}
        return data


@dataclass(frozen=True)
class Stack:
    """The local stack: its own settings, and the runtime settings composed for its services.

    `runtime` fixes runtime settings for this stack whatever the environment says (tests
    give each pipeline its own `namespace`, `topic` and `database` this way)."""

    local: StackSettings = field(default_factory=StackSettings)
    runtime: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> "Stack":
        """A copy with some settings changed: the stack's own fields, or runtime ones."""
        local = {k: v for k, v in changes.items() if k in StackSettings.model_fields}
        runtime = {k: v for k, v in changes.items() if k not in local}
        return Stack(self.local.model_copy(update=local), {**self.runtime, **runtime})

    def _compose(self, cls, shape: Optional[dict[str, Any]] = None, **endpoints):
        """`cls` with the stack's endpoints, then the profile's `shape` (defaults a `BAZAAR_*` variable
        overrides), then `runtime`."""
        prefix, named = cls.model_config.get("env_prefix", ""), {name.upper() for name in os.environ}
        chosen = {k: v for k, v in (shape or {}).items() if f"{prefix}{k}".upper() not in named}
        return cls(**{**endpoints, **chosen, **{k: v for k, v in self.runtime.items() if k in cls.model_fields}})

    # -- the stack's own --------------------------------------------------
    @property
    def home(self) -> Path:
        return Path(self.local.home)

    @property
    def host(self) -> str:
        return self.local.host

    @property
    def api_key(self) -> str:
        """The key the stack's tools send: `BAZAAR_API_KEY`, else the one `bazaar up` keeps at HOME/api-key."""
        if self.local.api_key is not None:
            return self.local.api_key.get_secret_value()
        path = self.home / "api-key"
        if not path.exists():
            raise FileNotFoundError(f"no API key at {path}: run `bazaar up` (it makes one), or set BAZAAR_API_KEY "
                                    "to a key from `bazaar keys create`")
        return path.read_text().strip()

    @property
    def engine_url(self) -> str:
        return f"http://{self.host}:{self.local.engine_port}"

    @property
    def dagster_url(self) -> str:
        return f"http://{self.host}:{self.local.dagster_port}"

    @property
    def reports_url(self) -> str:
        return f"http://{self.host}:{self.local.reports_port}/reports"

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.host}:{self.local.reports_port}/dashboard"

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.host}:{self.local.prometheus_port}"

    # -- composed runtime settings ------------------------------------------
    @cached_property
    def redis(self) -> RedisSettings:
        """The stack's Redis; its password is `BAZAAR_REDIS_PASSWORD`, else the one the stack made at
        HOME/redis-password (0600) on first use."""
        made = {}
        if "redis_password" not in self.runtime and not os.environ.get("BAZAAR_REDIS_PASSWORD"):
            # letters and digits: Redis reads it from a configuration line
            made["redis_password"] = private_file(self.home / "redis-password", lambda: secrets.token_hex(24),
                                                  lambda text: len(text) >= 32 and text.isalnum())
        return self._compose(RedisSettings, redis_url=f"redis://{self.host}:{self.local.redis_port}/0", **made)

    @cached_property
    def engine(self) -> EngineSettings:
        secret = {}
        if "token_secret" not in self.runtime and not os.environ.get("BAZAAR_TOKEN_SECRET"):
            # the local stack signs player tokens with a secret of its own, made on first use
            secret["token_secret"] = private_file(self.home / "token-secret", lambda: secrets.token_urlsafe(48),
                                                  lambda text: len(text) >= 32)
        return self._compose(EngineSettings, redis_url=self.redis.redis_url, redis_password=self.redis.redis_password,
                             **secret)

    def kafka_passwords(self) -> dict[str, str]:
        """The Kafka principals' passwords the environment does not set, made at HOME (0600) on first use."""
        return {setting: private_file(self.home / name, lambda: secrets.token_hex(24), lambda s: len(s) >= 32)
                for setting, name in KAFKA_PASSWORDS.items()
                if setting not in self.runtime and not os.environ.get(f"BAZAAR_{setting.upper()}")}

    @cached_property
    def relay(self) -> RelaySettings:
        made = {k: v for k, v in self.kafka_passwords().items() if k == "relay_kafka_password"}
        return self._compose(RelaySettings, **made, redis_url=self.redis.redis_url, redis_password=self.redis.redis_password,
                             kafka_bootstrap=self.kafka_bootstrap,
                             relay_metrics_host=self.host, relay_metrics_port=self.local.relay_metrics_port)

    @property
    def kafka_bootstrap(self) -> str:
        return ",".join(f"{self.host}:{self.local.kafka_port + i}" for i in range(self.local.kafka_brokers))

    @property
    def metastore_uri(self) -> str:
        return f"thrift://{self.host}:{self.local.metastore_port}"

    @cached_property
    def topic(self) -> TopicSettings:
        """Replicated as the stack's brokers allow (`replication_for`)."""
        replicas, min_isr = replication_for(self.local.kafka_brokers)
        return self._compose(TopicSettings, {"topic_replication": replicas, "topic_min_insync_replicas": min_isr},
                             kafka_bootstrap=self.kafka_bootstrap, **self.kafka_passwords())

    @property
    def hdfs_uri(self) -> str:
        return f"hdfs://{self.host}:{self.local.hdfs_port}"

    @property
    def postgres_password(self) -> str:
        """`BAZAAR_POSTGRES_PASSWORD`, else the one the stack made at HOME/postgres-password."""
        if self.local.postgres_password is not None:
            return self.local.postgres_password.get_secret_value()
        return private_file(self.home / "postgres-password", lambda: secrets.token_urlsafe(24),
                            lambda text: len(text) >= 16)

    @property
    def spark_master_url(self) -> str:
        return f"spark://{self.host}:{self.local.spark_master_port}"

    @cached_property
    def sinks(self) -> LauncherSettings:
        """The sinks' settings, less the jars (`bazaar.stack.sink_drivers` fetches those).  In the cluster
        profile, the drivers are services of their own against the Spark master, one core each."""
        shape, root = {}, self.home.resolve().as_uri()
        if self.local.profile == "cluster":  # the tables and the checkpoints on HDFS
            shape = {"spark_master": self.spark_master_url, "sink_launcher": "service", "spark_cores_max": 1}
            root = f"{self.hdfs_uri}/bazaar"
        made = {k: v for k, v in self.kafka_passwords().items() if k == "sink_kafka_password"}
        return self._compose(LauncherSettings, shape, kafka_bootstrap=self.kafka_bootstrap, **made,
                             metastore_uri=self.metastore_uri, warehouse_uri=f"{root}/warehouse",
                             checkpoint_uri=f"{root}/checkpoints", spark_driver_host=self.host, sink_home=self.home,
                             sink_metrics_port=self.local.sink_metrics_port)

    @cached_property
    def warehouse(self) -> WarehouseSettings:
        """Compaction and retention of the warehouse's days."""
        return self._compose(WarehouseSettings)

    @property
    def trino_tls(self) -> Path:
        """Where the stack keeps Trino's key pair; its certificate, ca.pem, is what clients check."""
        return self.home / "trino-tls"

    @cached_property
    def trino(self) -> TrinoSettings:
        """Trino over HTTPS, as its reader; the passwords are `BAZAAR_TRINO_PASSWORD` and
        `BAZAAR_TRINO_OWNER_PASSWORD`, else the ones the stack made at HOME (0600) on first use."""
        made = {}
        for setting, name in (("trino_password", "trino-reader-password"),
                              ("trino_owner_password", "trino-owner-password")):
            if setting not in self.runtime and not os.environ.get(f"BAZAAR_{setting.upper()}"):
                made[setting] = private_file(self.home / name, lambda: secrets.token_urlsafe(24), lambda s: len(s) >= 16)
        return self._compose(TrinoSettings, trino_host=self.host, trino_port=self.local.trino_port,
                             trino_http_scheme="https", trino_ca_file=self.trino_tls / "ca.pem", **made)

    @cached_property
    def reports(self) -> ReportSettings:
        return self._compose(ReportSettings, reports_dir=self.home / "reports", keeper_dir=self.home / "run",
                             prometheus_url=self.prometheus_url)

    @cached_property
    def checks(self) -> CheckSettings:
        return self._compose(CheckSettings)

    def env(self, *extra: BaseSettings) -> dict[str, str]:
        """The composition as `BAZAAR_*` variables, for a process the stack starts, less every secret:
        a service that needs one adds it (`redis_env`, `engine_env`)."""
        env = to_env(self.local, self.engine, self.relay, self.topic, self.sinks, self.warehouse, self.trino,
                     self.reports, self.checks, *extra)
        for secret in SECRETS:
            env.pop(secret, None)
        return env

    def redis_env(self) -> dict[str, str]:
        """Redis' password, for the services that talk to Redis (when it has one)."""
        password = self.redis.redis_password
        return {"BAZAAR_REDIS_PASSWORD": password.get_secret_value()} if password else {}

    def trino_env(self, owner: bool = False) -> dict[str, str]:
        """The reader's password, and with `owner` the owner's too, for the services that query Trino."""
        names = ("BAZAAR_TRINO_PASSWORD", "BAZAAR_TRINO_OWNER_PASSWORD")[:2 if owner else 1]
        return {k: v for k, v in to_env(self.trino).items() if k in names}

    def kafka_login(self, principal: str = "admin") -> KafkaLogin:
        """How a client logs in to the stack's Kafka as `principal`: `admin` (the tests', the
        benchmarks' and an operator's: a super user), `relay` (writes the topic) or `sinks` (read it)."""
        return {"admin": self.topic.kafka_login, "relay": self.relay.kafka_login,
                "sinks": self.sinks.kafka_login}[principal]()

    def kafka_env(self, *principals: str) -> dict[str, str]:
        """The Kafka passwords of `principals` (`admin`, `relay`, `sinks`), for the processes that log in
        as them (the relay, the sinks) or provision them (Dagster's topic asset: all three)."""
        names = {"admin": "BAZAAR_KAFKA_ADMIN_PASSWORD", "relay": "BAZAAR_RELAY_KAFKA_PASSWORD",
                 "sinks": "BAZAAR_SINK_KAFKA_PASSWORD"}
        env = to_env(self.topic)
        return {names[p]: env[names[p]] for p in principals if names[p] in env}

    def engine_env(self) -> dict[str, str]:
        """The engine's environment: `env`, Redis' password and the secret it signs player tokens with."""
        secrets_ = {k: v for k, v in to_env(self.engine).items() if k in ("BAZAAR_TOKEN_SECRET", "BAZAAR_REDIS_PASSWORD")}
        return {**self.env(), **secrets_}


def get_stack() -> Stack:
    """The stack the environment describes."""
    return Stack()
