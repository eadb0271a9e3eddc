"""Apache Kafka in KRaft mode from Maven Central jars: one broker that is also the controller, or
(the cluster profile) three, each a broker and a voter of the controller quorum.  Once every broker
is up, the events topic is provisioned (`orchestration.topic`, as the `events_topic` asset does)."""

from __future__ import annotations

import base64
import subprocess
import time
import uuid

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from bazaar.settings import StackSettings, private_file, private_write, replication_for
from bazaar.stack import artifacts
from bazaar.stack.java import default_java
from bazaar.stack.prometheus import jmx_agent
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
    """One Kafka broker, also a controller (KRaft).  With `kafka_brokers` = 1, the stack's only one
    (`kafka`); with 3, broker `node` of a three-voter quorum (`kafka-1` .. `kafka-3`), whose internal
    topics and default replication are 3 with min.insync.replicas 2."""

    startup_timeout = 90.0

    def __init__(self, stack, node: int = 1):
        super().__init__(stack)
        self.node, self.brokers = node, stack.local.kafka_brokers
        if not 1 <= node <= self.brokers:
            raise ValueError(f"broker {node} of {self.brokers}")
        self.name = "kafka" if self.brokers == 1 else f"kafka-{node}"

    @property
    def port(self) -> int:
        return self.local.kafka_port + self.node - 1

    @property
    def metrics_port(self) -> int:
        return self.local.kafka_metrics_port + self.node - 1

    def ports(self) -> dict[int, str]:
        return {self.port: "BAZAAR_KAFKA_PORT", self.controller_port(self.node): "BAZAAR_KAFKA_CONTROLLER_PORT",
                self.metrics_port: "BAZAAR_KAFKA_METRICS_PORT"}

    def controller_port(self, node: int) -> int:
        return self.local.kafka_controller_port + node - 1

    @property
    def address(self) -> str:
        return f"{self.local.host}:{self.port}"

    @property
    def config_path(self):
        return self.data_dir / "server.properties"

    def prepare(self) -> None:
        s, n = self.local, self.brokers
        self.libs = kafka_libs(s)
        logs = self.data_dir / "log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        replicas, min_isr = replication_for(n)
        if n == 1:
            quorum = f"controller.quorum.bootstrap.servers={s.host}:{self.controller_port(1)}"
        else:  # a static quorum: every broker votes
            quorum = "controller.quorum.voters=" + ",".join(
                f"{i}@{s.host}:{self.controller_port(i)}" for i in range(1, n + 1))
        admin = self.stack.topic.kafka_login()
        # clients, brokers and controllers all authenticate: the admin with PLAIN against this file (a
        # super user: brokers and controllers talk as it), the relay and the sinks with SCRAM users the
        # admin makes (`ensure_topic`); the authorizer refuses what no ACL grants
        plain = (f'org.apache.kafka.common.security.plain.PlainLoginModule required username="{admin.username}" '
                 f'password="{admin.password}" user_{admin.username}="{admin.password}";')
        private_write(self.config_path, "\n".join([
            "process.roles=broker,controller",
            f"node.id={self.node}",
            quorum,
            f"listeners=SASL_PLAINTEXT://{s.host}:{self.port},CONTROLLER://{s.host}:{self.controller_port(self.node)}",
            f"advertised.listeners=SASL_PLAINTEXT://{s.host}:{self.port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
            "inter.broker.listener.name=SASL_PLAINTEXT",
            "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512",
            "sasl.mechanism.inter.broker.protocol=PLAIN",
            "sasl.mechanism.controller.protocol=PLAIN",
            f"listener.name.sasl_plaintext.plain.sasl.jaas.config={plain}",
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
            f"listener.name.controller.plain.sasl.jaas.config={plain}",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            f"super.users=User:{admin.username}",
            "allow.everyone.if.no.acl.found=false",
            f"log.dirs={logs}",
            f"default.replication.factor={replicas}",
            f"min.insync.replicas={min_isr}",
            f"offsets.topic.replication.factor={replicas}",
            f"transaction.state.log.replication.factor={replicas}",
            f"transaction.state.log.min.isr={min_isr}",
            f"share.coordinator.state.topic.replication.factor={replicas}",
            f"share.coordinator.state.topic.min.isr={min_isr}",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
        ]) + "\n")  # it holds the admin's password: 0600 from its creation
        (self.data_dir / "log4j2.properties").write_text(LOG4J_CONFIG)
        if not (logs / "meta.properties").exists():  # format the KRaft storage once
            if n == 1:
                self.run_java("kafka.tools.StorageTool", "format", "--standalone",
                              f"--cluster-id={new_cluster_id()}", "-c", str(self.config_path))
            else:  # every broker of the quorum formatted with the cluster's one id
                cluster_id = private_file(self.home / "kafka-cluster-id", new_cluster_id)
                self.run_java("kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
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
        agent = jmx_agent(self.stack, "kafka", self.metrics_port, self.data_dir)
        java, *rest = self.java_command("kafka.Kafka", str(self.config_path))
        return [java, agent, *rest]

    def peers(self) -> list["KafkaService"]:
        return [KafkaService(self.stack, i) for i in range(1, self.brokers + 1) if i != self.node]

    def registered(self) -> set[int]:
        """The brokers the cluster's metadata holds as serving (not fenced), as this broker tells them."""
        admin = KafkaAdminClient(bootstrap_servers=self.address, request_timeout_ms=3000,
                                 **self.stack.topic.kafka_login().kafka_python())
        try:
            return {b["broker_id"] for b in admin.describe_cluster()["brokers"] if not b.get("is_fenced")}
        finally:
            admin.close()

    def registered_now(self) -> set[int]:
        """`registered`, or none while a broker the metadata names refuses connections (one starting,
        or one that died: the caller's deadline tells which)."""
        try:
            return self.registered()
        except KafkaError:
            return set()

    def healthy(self) -> bool:
        """This broker serves, and is in the cluster's metadata."""
        return self.node in self.registered()

    def wait_healthy(self, proc=None) -> None:
        """A broker serves only once a majority of the quorum runs, so the first of three to start
        does not wait (its controller would wait for a peer first: ~30 s); the one that makes the
        majority waits until it serves and every running peer is registered."""
        running = [peer for peer in self.peers() if peer.pid() is not None]
        self.quorate = (len(running) + 1) * 2 > self.brokers
        if not self.quorate:
            return
        super().wait_healthy(proc)
        expected = {self.node, *(peer.node for peer in running)}
        self.wait_registered(expected)

    def wait_registered(self, expected: set[int]) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while not expected <= self.registered_now():
            if time.monotonic() > deadline:
                missing = sorted(expected - self.registered_now())
                raise ServiceError(f"brokers {missing} never joined the cluster (did one exit?); see their logs "
                                   f"under {self.log_path.parent}")
            time.sleep(0.2)

    def after_start(self) -> None:
        """The events topic, once every broker is up (its replicas need them all): the broker that
        finds all its peers running waits until all are registered, then provisions it."""
        if not getattr(self, "quorate", True) or any(peer.pid() is None for peer in self.peers()):
            return
        self.wait_registered({self.node, *(peer.node for peer in self.peers())})
        ensure_topic(self.stack.topic)


def new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def brokers(stack) -> list[KafkaService]:
    return [KafkaService(stack, i) for i in range(1, stack.local.kafka_brokers + 1)]
