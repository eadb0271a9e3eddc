"""The outbox relay against a real Redis and a real Kafka broker."""

import json
import random
import time
import uuid
from datetime import datetime
from collections import Counter

import pytest
from click.testing import CliRunner
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import AuthorizationError
from kafka.partitioner.default import murmur2

from bazaar import cli
from bazaar.stack import RelayService
from bazaar.stack.api_key import ensure_stack_key
from orchestration.topic import ensure_topic
from engine import catalog, create_app
from engine.db import make_redis
from engine.rules import Offer
from engine.store import Store
from tests.pipeline import authorized, kafka_write, shared_credentials


@pytest.fixture
def relay_stack(stack, tmp_path, kafka_service, redis_client):
    """The stack with a topic and namespace of this test's own; the topic provisioned."""
    name = f"t{uuid.uuid4().hex[:10]}"
    s = stack.replace(home=tmp_path, namespace=name, topic=name, relay_batch=500,
                      **shared_credentials(stack))  # the stack's Redis and Kafka, whose passwords are in its home
    assert ensure_topic(s.topic)["created"] is True
    assert ensure_topic(s.topic)["created"] is False  # idempotent
    return s


@pytest.fixture
def relay(relay_stack):
    svc = RelayService(relay_stack)
    yield svc
    svc.stop()


def outbox_snapshot(client, s):
    return [(f[b"k"], f[b"e"]) for _, f in client.xrange(f"{s.relay.namespace}:outbox")]


def consume(s, expected: int, timeout: float = 90) -> list:
    consumer = KafkaConsumer(s.relay.topic, bootstrap_servers=s.kafka_bootstrap, **s.kafka_login().kafka_python(), auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=1000)
    out, deadline = [], time.monotonic() + timeout
    try:
        while len(out) < expected and time.monotonic() < deadline:
            out.extend(consumer)
        time.sleep(1)
        out.extend(consumer)  # anything beyond the expected count (duplicates) shows too
    finally:
        consumer.close()
    return out


def wait_drained(relay, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if relay.lag().waiting == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"outbox not drained: {relay.lag()}")


def play(s, players=20, trades=300, seed=1):
    """Players and trades through the engine's HTTP API (Flask test client, real Redis)."""
    client = authorized(create_app(s.engine).test_client(), ensure_stack_key(s))
    rng = random.Random(seed)
    answers = [client.put("/create_player").get_json() for _ in range(players)]
    for _ in range(trades):
        a, b = rng.sample(range(1, players + 1), 2)
        body = {"player_1": {"player_id": a, "items_traded": [{"item_id": rng.randint(1, 12), "quantity": 1}]},
                "player_2": {"player_id": b, "gold_traded": rng.choice([0, 10, 100, 10_000])}}
        answers.append(client.post("/trade", json=body).get_json())
    return answers


def test_events_arrive_in_kafka_exactly_as_appended(relay_stack, relay, redis_client):
    answers = play(relay_stack)
    appended = outbox_snapshot(redis_client, relay_stack)
    executed = sum(a.get("status") == "executed" for a in answers)
    assert len(appended) == 20 + 300 + 2 * executed

    relay.start()
    got = consume(relay_stack, len(appended))
    assert Counter((m.key, m.value) for m in got) == Counter(appended)
    # per key (a player, or a trade), Kafka keeps the order the engine appended in
    for key in {k for k, _ in appended}:
        assert [m.value for m in sorted(got, key=lambda m: m.offset) if m.key == key] == \
            [v for k, v in appended if k == key]
    # each key in the partition the Java client's and kafka-python's partitioner (murmur2) gives it:
    # the partition a key's earlier events, or another producer's, went to
    partitions = relay_stack.topic.topic_partitions
    assert [m.partition for m in got] == [(murmur2(m.key) & 0x7FFFFFFF) % partitions for m in got]
    assert len({m.partition for m in got}) == partitions
    trade_ids = {a["trade_id"] for a in answers if "trade_id" in a}
    assert {json.loads(m.value)["trade_id"] for m in got if m.key in {t.encode() for t in trade_ids}} == trade_ids
    wait_drained(relay)
    lag = relay.lag()
    assert (lag.sent, lag.resent) == (len(appended), 0)


def test_broker_down_while_trading_then_back_loses_nothing(relay_stack, relay, redis_client, kafka_service):
    play(relay_stack, players=5, trades=50, seed=2)
    first = outbox_snapshot(redis_client, relay_stack)  # all of it: the relay starts after
    relay.start()
    wait_drained(relay)

    kafka_service.stop()
    try:
        client = authorized(create_app(relay_stack.engine).test_client(), ensure_stack_key(relay_stack))
        for i in range(200):
            client.post("/trade", json={"player_1": {"player_id": 1 + i % 5, "gold_traded": 1},
                                        "player_2": {"player_id": 1 + (i + 1) % 5}})
        while_down = outbox_snapshot(redis_client, relay_stack)
        time.sleep(3)
        assert relay.lag().waiting == len(while_down) > 200  # held in Redis, none lost
        assert relay.pid() is not None  # the relay waits for the broker, it does not die
    finally:
        kafka_service.start()
    wait_drained(relay, timeout=120)
    expected = {v for _, v in first} | {v for _, v in while_down}
    got = consume(relay_stack, len(expected))
    counts = Counter(m.value for m in got)
    assert set(counts) == expected
    print(f"broker outage: {len(while_down)} events held and delivered, "
          f"{sum(counts.values()) - len(counts)} duplicates")


def test_relay_killed_mid_stream_resumes_without_loss(relay_stack, relay, redis_client):
    store = Store(make_redis(relay_stack.redis), relay_stack.redis.namespace)
    rng = random.Random(3)
    for _ in range(100):
        store.create_player(catalog.CLASSES["merchant"], None, rng)
    for i in range(6000):
        a, b = rng.sample(range(1, 101), 2)
        store.trade(Offer(a, {1: 1}), Offer(b, {}, 2))
    appended = outbox_snapshot(redis_client, relay_stack)
    assert len(appended) > 12_000

    relay.start()
    while relay.lag().sent < 2000:
        time.sleep(0.01)
    relay.kill()
    left = relay.lag()
    assert 0 < left.waiting < len(appended)  # killed mid-stream

    relay.start()
    wait_drained(relay)
    got = consume(relay_stack, len(appended))
    counts = Counter(m.value for m in got)
    assert set(counts) == {v for _, v in appended}  # nothing lost
    duplicates = sum(counts.values()) - len(counts)
    lag = relay.lag()
    assert duplicates <= lag.resent  # every duplicate was counted as a re-send
    assert lag.sent >= len(appended) and lag.sent - lag.resent <= len(appended)
    print(f"relay SIGKILL: {len(appended)} events, {duplicates} duplicates in Kafka, {lag.resent} re-sent")


def test_the_broker_stamps_each_record_with_its_own_time(relay_stack):
    """The topic is provisioned with LogAppendTime: a producer's own timestamp (3 h ahead here) is
    replaced by the broker's, the time the sinks' watermark follows."""
    ahead_ms = int((time.time() + 3 * 3600) * 1000)
    producer = KafkaProducer(bootstrap_servers=relay_stack.kafka_bootstrap, **relay_stack.kafka_login().kafka_python(), acks="all")
    before_ms = time.time() * 1000
    producer.send(relay_stack.topic.topic, value=b"dated ahead", timestamp_ms=ahead_ms).get(timeout=30)
    producer.close()
    (record,) = consume(relay_stack, 1)
    assert record.value == b"dated ahead"
    assert record.timestamp_type == 1  # LogAppendTime
    assert before_ms - 1000 <= record.timestamp <= time.time() * 1000 + 1000


def test_only_the_relay_writes_the_topic_only_the_sinks_read_it_and_only_the_admin_makes_topics(relay_stack):
    """Kafka's principals and ACLs, as `ensure_topic` set them: writes refused to anyone without a
    password, with a wrong one, and to the sinks' principal; reads refused to the relay's; topics made
    by the admin alone. The topic then holds exactly the one record the relay's principal wrote."""
    s = relay_stack
    relay, sinks = s.kafka_login("relay"), s.kafka_login("sinks")
    assert kafka_write(s.kafka_bootstrap, s.topic.topic, relay.librdkafka(), b"from the relay") == (None, [])
    for who, login in (("anonymous", {}), ("a wrong password", {**relay.librdkafka(), "sasl.password": "wrong"}),
                       ("the sinks", sinks.librdkafka())):
        error, _ = kafka_write(s.kafka_bootstrap, s.topic.topic, login, f"from {who}".encode())
        assert error is not None, f"{who} wrote to the topic"
    assert [m.value for m in consume(s, 1)] == [b"from the relay"]  # read as the admin

    def read(login, group):
        consumer = KafkaConsumer(bootstrap_servers=s.kafka_bootstrap, group_id=group, consumer_timeout_ms=3000,
                                 enable_auto_commit=False, **login.kafka_python())
        try:
            parts = [TopicPartition(s.topic.topic, p) for p in range(s.topic.topic_partitions)]
            consumer.assign(parts)
            consumer.seek_to_beginning(*parts)
            return [m.value for m in consumer]
        finally:
            consumer.close()

    assert read(sinks, None) == [b"from the relay"]
    with pytest.raises(AuthorizationError):
        read(relay, None)
    for login in (relay, sinks):
        admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap, **login.kafka_python())
        try:
            with pytest.raises(AuthorizationError):
                admin.create_topics([NewTopic(f"{s.topic.topic}-other", 1, 1)])
        finally:
            admin.close()

    # what `bazaar credentials kafka` prints is enough for an operator's client to read the topic
    out = CliRunner().invoke(cli.main, ["credentials", "kafka"], env={**s.env(), **s.kafka_env("admin")})
    assert out.exit_code == 0, out.output
    given = json.loads(out.output)
    assert given["password"] == s.kafka_login("admin").password and given["username"] == "admin"
    consumer = KafkaConsumer(given["topic"], bootstrap_servers=given["bootstrap_servers"],
                             security_protocol=given["security_protocol"], sasl_mechanism=given["sasl_mechanism"],
                             sasl_plain_username=given["username"], sasl_plain_password=given["password"],
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    try:
        assert [m.value for m in consumer] == [b"from the relay"]
    finally:
        consumer.close()


def test_full_outbox_refuses_writes_whole_until_the_relay_drains_it(relay_stack, relay, redis_client, kafka_service):
    s = relay_stack.replace(outbox_max=60)
    client = authorized(create_app(s.engine).test_client(), ensure_stack_key(s))
    for cls in ("merchant", "merchant", "noble"):
        assert client.put("/create_player", json={"player_class": cls}).status_code == 201
    relay.start()
    wait_drained(relay)
    ns = s.redis.namespace

    def state():
        players = {k: redis_client.hgetall(k) for k in redis_client.scan_iter(f"{ns}:player:*")}
        return players, redis_client.hgetall(f"{ns}:counters"), redis_client.xlen(f"{ns}:outbox")

    kafka_service.stop()
    try:
        answers = Counter()
        for i in range(40):  # three events a trade: the cap is reached within 20
            before = state()
            r = client.post("/trade", json={"player_1": {"player_id": 1 + i % 3, "gold_traded": 1},
                                            "player_2": {"player_id": 1 + (i + 1) % 3}})
            answers[r.status_code] += 1
            if r.status_code == 503:
                assert r.get_json()["error"] == "backpressure" and r.headers["Retry-After"] == "1"
                assert state() == before  # refused whole: no player, counter or event changed
        assert answers[200] >= 15 and answers[503] >= 15 and set(answers) == {200, 503}
        before = state()
        made = client.put("/create_player")
        assert made.status_code == 503 and made.get_json()["error"] == "backpressure" and state() == before
        assert client.get("/players/1").status_code == 200  # reads go on
        held = outbox_snapshot(redis_client, s)
        assert 60 <= len(held) < 63
    finally:
        kafka_service.start()
    wait_drained(relay, timeout=120)
    after = client.post("/trade", json={"player_1": {"player_id": 1, "gold_traded": 1}, "player_2": {"player_id": 2}})
    assert after.status_code == 200  # writes resume once the relay drained the outbox
    got = {m.value for m in consume(s, 3 + 3 * answers[200] + 3)}
    assert {v for _, v in held} <= got


def test_the_relay_returns_an_expired_offers_escrow_within_5_s_without_any_request(relay_stack, relay):
    client = authorized(create_app(relay_stack.engine).test_client(), ensure_stack_key(relay_stack))
    maker = client.put("/create_player", json={"player_class": "merchant"}).get_json()
    client.put("/create_player", json={"player_class": "monk"})
    relay.start()
    offers = [client.post("/offers", json={"from_player_id": 1, "to_player_id": 2, "give": {"gold": gold},
                                           "expires_in_s": 1}).get_json() for gold in (10, 20)]
    assert client.get("/players/1").get_json()["gold"] == maker["gold"] - 30
    store = Store(make_redis(relay_stack.redis), relay_stack.redis.namespace)
    deadline = max(datetime.fromisoformat(o["expires_at"]).timestamp() for o in offers) + 5
    while time.time() < deadline and store.get_player(1).gold != maker["gold"]:
        time.sleep(0.1)
    assert time.time() < deadline, "the escrow did not come back within 5 s of expires_at"
    returned = store.get_player(1)  # read from Redis: no request to the engine
    assert returned.gold == maker["gold"] and returned.escrow_units == 0
    for o in offers:
        closed = client.get(f"/offers/{o['offer_id']}").get_json()
        assert closed["status"] == "expired" and closed["closed_at"] >= closed["expires_at"]
    wait_drained(relay)
    actions = Counter((json.loads(m.value)["offer_id"], json.loads(m.value)["action"])
                      for m in consume(relay_stack, 4) if json.loads(m.value)["event_type"] == "offer")
    assert actions == Counter({(o["offer_id"], a): 1 for o in offers for a in ("opened", "expired")})
