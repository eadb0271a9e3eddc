"""Prometheus for the stack: what it scrapes, its alert rules, and the JMX exporter agent that gives
the JVM services (Kafka, the metastore, Trino) a `/metrics` of their own.

Debian's `prometheus` package (`make install` adds it) runs as a service of the stack at
127.0.0.1:`BAZAAR_PROMETHEUS_PORT`, its samples under HOME/prometheus. It scrapes:

- `engine`: the engine's `GET /metrics` (every granian worker's counts, summed);
- `relay`: the outbox relay's metrics server;
- `sinks`: each sink driver's metrics server (`spark_jobs.metrics`);
- `kafka`, `metastore`, `trino`: the JVMs' MBeans through the JMX exporter agent
  (io.prometheus.jmx:jmx_prometheus_javaagent from Maven Central), one port each;
- `reports`: the reports service's `/metrics` (last success and duration of each report, of
  compaction and retention; every service's restarts, as its keeper counts them).

The alert rules are package data (`prometheus/alerts.yml`) and are tested with `promtool test rules`
(`prometheus/alerts_test.yml`, run by `make test`).
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import requests
import yaml

from bazaar.settings import Stack
from bazaar.stack import artifacts
from bazaar.stack.service import Service, ServiceError

RULES = "alerts.yml"
RULE_TESTS = "alerts_test.yml"
# MBeans worth a series: the JVM's own everywhere, and each server's domain (Kafka exposes tens of
# thousands of series otherwise)
JMX_DOMAINS = {
    "kafka": ["java.lang:*", "kafka.server:*", "kafka.network:type=RequestMetrics,*", "kafka.log:type=LogFlushStats,*",
              "kafka.controller:*"],
    "metastore": ["java.lang:*", "metrics:*", "org.apache.hadoop.hive.metastore:*"],
    "trino": ["java.lang:*", "trino.execution:name=QueryManager", "trino.memory:*",
              "trino.execution:name=SqlTaskManager"],
}


def rules_text(name: str = RULES) -> str:
    return resources.files("bazaar.stack").joinpath("prometheus", name).read_text()


def jmx_agent(stack: Stack, service: str, port: int, folder: Path) -> str:
    """The JVM option that starts the JMX exporter agent on `host:port`, its configuration in `folder`."""
    s = stack.local
    jar = artifacts.fetch(s.maven_repo, "io.prometheus.jmx", "jmx_prometheus_javaagent", s.jmx_exporter_version,
                          "jar", "fetching Prometheus' JMX exporter agent")
    config = folder / "jmx-exporter.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    artifacts.write_if_changed(config, yaml.safe_dump({
        "lowercaseOutputName": True, "lowercaseOutputLabelNames": True,
        "includeObjectNames": JMX_DOMAINS[service.rstrip("0123456789-")],
        "rules": [{"pattern": ".*"}],
    }))
    return f"-javaagent:{jar}={s.host}:{port}:{config}"


def scrape_targets(stack: Stack) -> dict[str, list[str]]:
    """Job name -> host:port of each target (every one serves `/metrics`)."""
    s, host = stack.local, stack.host
    return {
        "engine": [f"{host}:{s.engine_port}"],
        "relay": [f"{host}:{s.relay_metrics_port}"],
        "sinks": [f"{host}:{s.sink_metrics_port}", f"{host}:{s.sink_metrics_port + 1}"],
        "kafka": [f"{host}:{s.kafka_metrics_port + i}" for i in range(s.kafka_brokers)],
        "metastore": [f"{host}:{s.metastore_metrics_port}"],
        "trino": [f"{host}:{s.trino_metrics_port}"],
        "reports": [f"{host}:{s.reports_port}"],
    }


def config(stack: Stack, rules: Path) -> dict:
    s = stack.local
    return {
        "global": {"scrape_interval": s.prometheus_scrape_interval, "evaluation_interval": s.prometheus_scrape_interval,
                   "external_labels": {"stack": s.profile}},
        "rule_files": [str(rules)],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}
                           for job, targets in scrape_targets(stack).items()],
    }


class PrometheusService(Service):
    port_settings = ('prometheus_port',)
    name = "prometheus"
    startup_timeout = 60.0

    @property
    def address(self) -> str:
        return f"http://{self.stack.host}:{self.local.prometheus_port}"

    def prepare(self) -> None:
        if shutil.which("prometheus") is None:
            raise ServiceError("Prometheus is not installed: run `make install` (Debian's `prometheus` package)")
        rules = self.data_dir / RULES
        self.data_dir.mkdir(parents=True, exist_ok=True)
        artifacts.write_if_changed(rules, rules_text())
        artifacts.write_if_changed(self.data_dir / "prometheus.yml", yaml.safe_dump(config(self.stack, rules),
                                                                                     sort_keys=False))

    def command(self) -> list[str]:
        s = self.local
        return ["prometheus", f"--config.file={self.data_dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.data_dir / 'data'}", f"--storage.tsdb.retention.time={s.prometheus_retention}",
                f"--web.listen-address={s.host}:{s.prometheus_port}", "--web.enable-lifecycle",
                f"--web.console.templates={self.data_dir}", f"--web.console.libraries={self.data_dir}"]

    def healthy(self) -> bool:
        return requests.get(f"{self.address}/-/ready", timeout=2).status_code == 200

    def query(self, promql: str) -> list[dict]:
        """An instant query's result (`data.result`)."""
        answer = requests.get(f"{self.address}/api/v1/query", params={"query": promql}, timeout=5)
        answer.raise_for_status()
        return answer.json()["data"]["result"]

    def targets(self) -> list[dict]:
        answer = requests.get(f"{self.address}/api/v1/targets", params={"state": "active"}, timeout=5)
        answer.raise_for_status()
        return answer.json()["data"]["activeTargets"]

    def alerts(self) -> list[dict]:
        answer = requests.get(f"{self.address}/api/v1/alerts", timeout=5)
        answer.raise_for_status()
        return answer.json()["data"]["alerts"]

    def glance(self) -> list[tuple[str, str]]:
        """The few numbers an operator looks at first, as (what, value) rows."""
        def one(promql: str, fmt: str) -> str:
            result = self.query(promql)
            if not result:
                return "-"
            return ", ".join((fmt.format(float(r["value"][1])) + (f" ({r['metric']['sink']})" if "sink" in r["metric"]
                                                                   else "")) for r in result)
        rows = [(what, one(promql, fmt)) for what, promql, fmt in GLANCE]
        firing = sorted({a["labels"]["alertname"] for a in self.alerts() if a.get("state") == "firing"})
        rows.append(("alerts firing", ", ".join(firing) or "none"))
        return rows


# (what, PromQL, format): `bazaar status` prints them
GLANCE = [
    ("trades/s (last minute)", "sum(rate(bazaar_engine_trades_total[1m]))", "{:.1f}"),
    ("relay: oldest event waiting", "max(bazaar_relay_oldest_entry_age_seconds)", "{:.1f}s"),
    ("sinks: records behind", "bazaar_sink_offsets_behind", "{:.0f}"),
    ("freshness: newest row landed", "time() - bazaar_sink_newest_arrival_timestamp_seconds", "{:.1f}s ago"),
    ("targets down", "count(up == 0) or vector(0)", "{:.0f}"),
]
