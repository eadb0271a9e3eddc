"""Apache Kafka in KRaft mode (one broker that is also the controller), from
Maven Central jars; once it is up, the events topic is provisioned
(`orchestration.topic`, as the `events_topic` asset does)."""

from __future__ import annotations

import base64
import subprocess
import uuid

from kafka import KafkaAdminClient

from bazaar.settings import StackSettings
from bazaar.stack import artifacts
from bazaar.stack.java import default_java
from bazaar.stack.service import Service, ServiceError
from orchestration.topic import ensure_topic

LOG4J = "2.25.3"
LOG4J_CONFIG = """\
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""


def kafka_libs(settings: StackSettings):
    return artifacts.copy_dependencies(
        settings.maven_repo,
        settings.cache / f"kafka-{settings.kafka_version}",
        [("org.apache.kafka", "kafka_2.13", settings.kafka_version),
         ("org.apache.logging.log4j", "log4j-slf4j2-impl", LOG4J),
         ("org.apache.logging.log4j", "log4j-core", LOG4J),
         ("org.slf4j", "slf4j-api", "2.0.17")],  # log4j-slf4j2-impl needs slf4j 2, Kafka's tree brings 1.7
        f"fetching Kafka {settings.kafka_version} jars",
    )


class KafkaService(Service):
    name = "kafka"
    startup_timeout = 90.0

    @property
    def address(self) -> str:
        return self.stack.kafka_bootstrap

    @property
    def config_path(self):
        return self.data_dir / "server.properties"

    def prepare(self) -> None:
        s = self.local
        self.libs = kafka_libs(s)
        logs = self.data_dir / "log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text("\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers={s.host}:{s.kafka_controller_port}",
            f"listeners=PLAINTEXT://{s.host}:{s.kafka_port},CONTROLLER://{s.host}:{s.kafka_controller_port}",
            f"advertised.listeners=PLAINTEXT://{s.host}:{s.kafka_port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={logs}",
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
        ]) + "\n")
        (self.data_dir / "log4j2.properties").write_text(LOG4J_CONFIG)
        if not (logs / "meta.properties").exists():  # format the KRaft storage once
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            self.run_java("kafka.tools.StorageTool", "format", "--standalone", f"--cluster-id={cluster_id}",
                          "-c", str(self.config_path))

    def java_command(self, main: str, *args: str) -> list[str]:
        return [default_java(), f"-Xmx{self.local.kafka_heap}", f"-Xms{self.local.kafka_heap}",
                f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
                "-cp", f"{self.libs}/*", main, *args]

    def run_java(self, main: str, *args: str) -> None:
        out = subprocess.run(self.java_command(main, *args), capture_output=True, text=True)
        if out.returncode != 0:
            raise ServiceError(f"{main} failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")

    def command(self) -> list[str]:
        return self.java_command("kafka.Kafka", str(self.config_path))

    def healthy(self) -> bool:
        admin = KafkaAdminClient(bootstrap_servers=self.address, request_timeout_ms=3000)
        try:
            return bool(admin.describe_cluster()["brokers"])
        finally:
            admin.close()

    def after_start(self) -> None:
        ensure_topic(self.stack.topic)

