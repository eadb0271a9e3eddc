"""The cluster profile's Kafka: three brokers (KRaft, each a voter), the events topic on all three
with min.insync.replicas 2, and the relay's acks=all.  Losing one broker while trades flow loses no
event and never stops the engine answering.

Real processes throughout: Redis, three brokers, the engine under its server, the relay, all
started through the same classes as `bazaar up --profile cluster`, on ports of their own."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter

import pytest
import requests
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import ConfigResource, ConfigResourceType

from bazaar.stack import RelayService, services
from bazaar.stack.api_key import ensure_stack_key
from bazaar.stack.kafka_broker import brokers
from bazaar.stack.ports import PORTS
from engine.db import make_redis
from tests.pipeline import kafka_write

pytestmark = pytest.mark.cluster


def test_the_cluster_profile_names_three_brokers_with_their_own_home_and_ports(tmp_path, monkeypatch):
    from bazaar.settings import StackSettings, get_stack

    monkeypatch.setenv("BAZAAR_PROFILE", "cluster")
    for name in ("BAZAAR_HOME", "BAZAAR_KAFKA_PORT", "BAZAAR_ENGINE_PORT", "BAZAAR_KAFKA_BROKERS"):
        monkeypatch.delenv(name, raising=False)
    stack, default = get_stack(), StackSettings(profile="local")
    assert stack.home != default.home
    assert stack.kafka_bootstrap == "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"
    assert stack.local.engine_port != default.engine_port
    assert [s.name for s in services(stack)][:4] == ["redis", "kafka-1", "kafka-2", "kafka-3"]
    assert (stack.topic.topic_replication, stack.topic.topic_min_insync_replicas) == (3, 2)
    assert stack.sinks.warehouse_uri == f"hdfs://127.0.0.1:{stack.local.hdfs_port}/bazaar/warehouse"
    assert (stack.sinks.sink_launcher, stack.sinks.spark_master) == ("service", "spark://127.0.0.1:17077")
    ports = [getattr(stack.local, p) for p in PORTS]
    assert len(set(ports)) == len(ports) and not set(ports) & set(getattr(default, p) for p in PORTS)
    names = [s.name for s in services(stack)]
    assert {"postgres", "hdfs-namenode", "hdfs-datanode", "spark-master", "dagster-code"} <= set(names)
    assert names.index("postgres") < names.index("metastore") and names.index("hdfs-datanode") < names.index("metastore")


def test_a_variable_overrides_the_cluster_profiles_choices(monkeypatch):
    """The profile's shape is a default: what a BAZAAR_ variable says wins."""
    from bazaar.settings import get_stack

    monkeypatch.setenv("BAZAAR_PROFILE", "cluster")
    monkeypatch.setenv("BAZAAR_SINK_LAUNCHER", "local")
    monkeypatch.setenv("BAZAAR_TOPIC_REPLICATION", "2")
    stack = get_stack()
    assert stack.sinks.sink_launcher == "local" and stack.topic.topic_replication == 2
    assert stack.topic.topic_min_insync_replicas == 2 and stack.sinks.spark_cores_max == 1  # the others kept


def test_topic_is_replicated_three_times_and_needs_two_in_sync(cluster):
    admin = KafkaAdminClient(bootstrap_servers=cluster.kafka_bootstrap, **cluster.kafka_login().kafka_python())
    try:
        assert brokers(cluster)[0].registered() == {1, 2, 3}  # serving, none fenced
        (topic,) = admin.describe_topics([cluster.topic.topic])
        assert len(topic["partitions"]) == cluster.topic.topic_partitions
        assert all(sorted(p["replica_nodes"]) == [1, 2, 3] for p in topic["partitions"])
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, cluster.topic.topic)])
        (configs,) = [by_name[cluster.topic.topic] for by_name in described.values()]
        assert configs["min.insync.replicas"]["value"] == "2", configs.get("min.insync.replicas")
    finally:
        admin.close()


def test_every_broker_refuses_an_anonymous_producer_and_the_sinks_principal(cluster):
    """The three brokers' listeners take SASL only, with the ACLs `ensure_topic` set: a producer
    without a password, or logged in as the sinks, writes nothing, through any broker."""
    for broker in brokers(cluster):
        for who, login in (("anonymous", {}), ("the sinks", cluster.kafka_login("sinks").librdkafka())):
            error, _ = kafka_write(broker.address, cluster.topic.topic, login, b"not the relay")
            assert error is not None, f"{who} wrote through {broker.address}"


def test_a_broker_killed_while_trades_flow_loses_nothing_and_trading_goes_on(cluster):
    url, key = cluster.engine_url, ensure_stack_key(cluster)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    ids = [session.put(f"{url}/create_player").json()["player_id"] for _ in range(30)]
    answers: list[tuple[int, str]] = []
    failures: list[str] = []
    stop = threading.Event()

    def trade(seed: int) -> None:
        rng, own = random.Random(seed), requests.Session()
        own.headers["Authorization"] = f"Bearer {key}"
        while not stop.is_set():
            a, b = rng.sample(ids, 2)
            body = {"player_1": {"player_id": a, "gold_traded": rng.choice([1, 10])}, "player_2": {"player_id": b}}
            try:
                r = own.post(f"{url}/trade", json=body, timeout=10)
            except requests.RequestException as exc:
                failures.append(repr(exc))
                continue
            answers.append((r.status_code, r.json().get("trade_id")))

    threads = [threading.Thread(target=trade, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    victim = brokers(cluster)[1]
    try:
        time.sleep(3)
        before = len(answers)
        victim.kill()  # SIGKILL: leaders on it move, its replicas drop out of sync
        time.sleep(8)
        during = len(answers) - before
    finally:
        stop.set()
        for t in threads:
            t.join()
    try:
        check_nothing_lost(cluster, answers, failures, during)
    finally:
        victim.start()  # back, it catches up and rejoins (for the next tests too)
    assert victim.registered() == {1, 2, 3}


def check_nothing_lost(cluster, answers, failures, during):
    assert not failures, failures[:3]
    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {200, 409}, statuses  # every trade answered, none refused for Kafka's sake
    assert during > 50, f"only {during} trades answered while a broker was down"

    # the outbox drains and every event is read back with the broker still down: two replicas of
    # each partition serve (with one replica, a third of the partitions would wait for it)
    relay = RelayService(cluster)
    deadline = time.monotonic() + 60
    while relay.lag().waiting and time.monotonic() < deadline:
        time.sleep(0.5)
    assert relay.lag().waiting == 0, relay.lag()

    client = make_redis(cluster.redis)
    counters = {k.decode(): int(v) for k, v in client.hgetall(f"{cluster.redis.namespace}:counters").items()}
    client.close()
    consumer = KafkaConsumer(cluster.topic.topic, bootstrap_servers=cluster.kafka_bootstrap, **cluster.kafka_login().kafka_python(),
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=5000)
    seen: dict[str, Counter] = {"trade": Counter(), "player_state": Counter()}
    trade_ids = set()
    for msg in consumer:
        ev = json.loads(msg.value)
        seen[ev["event_type"]][ev["event_id"]] += 1
        if ev["event_type"] == "trade":
            trade_ids.add(ev["trade_id"])
    consumer.close()
    # every event the engine appended is in Kafka: as many distinct ids as it counted, and every
    # trade it answered; copies of one event (a re-send after the broker's loss) share an id
    assert {tid for _, tid in answers} <= trade_ids
    assert len(seen["trade"]) == len(trade_ids) == counters["trades"]
    assert len(seen["player_state"]) == counters["player_states"]
