"""The sinks never drop a valid event, whatever time a record claims: records dated ahead by
their producer, events from a host whose clock runs ahead, a backlog older than the dedup window
and records stamped long ago all land exactly once; every rejected record lands in quarantine.

Real Kafka, real sinks, Trino, a dedup window of seconds (so that "older than the window"
happens in a test), and a topic whose records carry their producers' timestamps (CreateTime,
as on a topic the studio cannot reconfigure): what protects the sinks here is their own bound
on time, not the broker's LogAppendTime that `ensure_topic` sets. The trades table is created
first with the DDL of before `future_dated`, as an upgraded deployment has it."""

import random
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlparse

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType

from bazaar.stack import RelayService
from engine import events
from engine.events import TradeSide
from orchestration import warehouse
from orchestration.topic import ensure_topic
from tests.pipeline import Ledger, counts_settle, pipeline_stack, running_pipeline, wait_for

WINDOW_S = 10
# Kafka 4 refuses a record stamped more than an hour ahead (message.timestamp.after.max.ms);
# a producer can still stamp one this far ahead of the broker's clock
AHEAD = timedelta(minutes=50)
OLD_TRADES_DDL = """create table {db}.trades (trade_id varchar, trade_time timestamp(6), valid_trade boolean,
  fail_reason varchar, side bigint, player_id bigint, counterparty_id bigint, item_traded_item_id bigint,
  item_traded_name varchar, item_traded_level bigint, item_traded_value bigint, item_traded_quantity bigint,
  gold_traded bigint, event_id varchar, event_time timestamp(6), dt varchar)
with (external_location = '{location}', format = 'PARQUET', partitioned_by = ARRAY['dt'])"""


def create_time_topic(s) -> None:
    ensure_topic(s.topic)
    admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap, **s.kafka_login().kafka_python())
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, s.topic.topic,
                                            configs={"message.timestamp.type": "CreateTime"})])
    finally:
        admin.close()


def old_trades_table(s) -> None:
    location = f"{s.sinks.warehouse_uri}/trades"
    Path(urlparse(location).path).mkdir(parents=True)
    warehouse.execute(s.trino.as_owner(), f"create schema if not exists {s.trino.database}")
    warehouse.execute(s.trino.as_owner(), OLD_TRADES_DDL.format(db=s.trino.database, location=location))


@pytest.fixture(scope="module")
def pipeline(stack, tmp_path_factory, redis_service, kafka_service, trino_service):
    s = pipeline_stack(stack, tmp_path_factory.mktemp("sink-time"), sink_dedup_window=f"{WINDOW_S} seconds")
    create_time_topic(s)
    old_trades_table(s)
    with running_pipeline(s, provision=False):
        yield s


@pytest.fixture(scope="module")
def ledger(pipeline):
    book = Ledger(pipeline)
    book.create(12, random.Random(41))
    counts_settle(pipeline, book)
    book.direct = []  # trade ids of the gift events the tests produce straight to Kafka
    return book


def produce(s, records: list[tuple[bytes, datetime]]) -> None:
    """(value, Kafka timestamp) straight to the topic, as any producer that can write to it."""
    producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap, **s.kafka_login().kafka_python(), acks="all")
    sent = [producer.send(s.topic.topic, key=b"direct", value=value, timestamp_ms=int(stamp.timestamp() * 1000))
            for value, stamp in records]
    for future in sent:
        future.get(timeout=30)  # the broker took it (else it raises)
    producer.close()


def gift(ledger, when: datetime) -> bytes:
    """A valid trade event between two of the ledger's players, dated `when` (another engine
    host's): one gold given, nothing back, so two rows in `trades`."""
    a, b = (st["player_id"] for st in ledger.states[:2])
    event = events.trade_event(events.new_id(), events.utc_iso(when), None,
                               TradeSide(player_id=a, items_traded=[], gold_traded=1),
                               TradeSide(player_id=b, items_traded=[], gold_traded=0))
    ledger.direct.append(event.trade_id)
    return event.model_dump_json().encode()


def now() -> datetime:
    return datetime.now(timezone.utc)


def all_landed(s, ledger) -> None:
    """Every trade the ledger made and every gift produced straight to Kafka, each exactly once
    (as many rows as its sides and items make), and every player state once."""
    trades = len(ledger.trades) + len(ledger.direct)
    rows = sum(ledger.trade_rows().values()) + 2 * len(ledger.direct)
    wait_for(s, "select count(distinct trade_id), count(*) from trades", [[trades, rows]])
    wait_for(s, "select count(distinct trade_id), count(*) from trade_sides", [[trades, 2 * trades]])
    got = warehouse.execute(s.trino, "select distinct trade_id from trades")
    assert set(got.trade_id) == {a["trade_id"] for _, a in ledger.trades} | set(ledger.direct)
    wait_for(s, "select count(distinct event_id), count(*) from player_states",
             [[len(ledger.states), ledger.state_rows()]])


def test_a_record_dated_ahead_by_its_producer_holds_nothing_back(pipeline, ledger):
    produce(pipeline, [(b"not json at all", now() + AHEAD)])
    # landed first, in a batch of its own: whatever time it moved the watermark to holds for what follows
    wait_for(pipeline, "select reason, count(*) from quarantine where raw = 'not json at all' group by reason",
             [["not_json", 1]])
    time.sleep(2)
    ledger.trade(40, random.Random(42))
    all_landed(pipeline, ledger)


def test_an_event_from_a_host_whose_clock_runs_hours_ahead_lands_flagged_and_holds_nothing_back(pipeline, ledger):
    produce(pipeline, [(gift(ledger, now() + timedelta(hours=3)), now() + AHEAD)])  # its producer stamps ahead too
    wait_for(pipeline, f"select count(*) from trades where trade_id = '{ledger.direct[-1]}'", [[2]])
    time.sleep(2)  # landed first, in a batch of its own
    ledger.trade(40, random.Random(43))
    all_landed(pipeline, ledger)
    flagged = warehouse.execute(pipeline.trino, "select distinct trade_id from trades where future_dated")
    assert list(flagged.trade_id) == [ledger.direct[-1]]  # kept with its own times, and flagged
    (n,) = warehouse.execute(pipeline.trino, "select count(*) from trades where not future_dated").values[0]
    assert n == sum(ledger.trade_rows().values())


def test_a_backlog_the_relay_held_longer_than_the_dedup_window_lands_exactly_once(pipeline, ledger):
    """The relay holds events (Kafka unreachable, say) for longer than the window while another
    host's fresh event lands; then the relay sends the backlog: every event lands, once."""
    relay = RelayService(pipeline)
    relay.stop()
    ledger.trade(60, random.Random(44))  # held in the outbox
    assert relay.lag().waiting >= 60
    time.sleep(WINDOW_S + 3)
    produce(pipeline, [(gift(ledger, now()), now())])
    wait_for(pipeline, f"select count(*) from trades where trade_id = '{ledger.direct[-1]}'", [[2]])
    relay.start()
    all_landed(pipeline, ledger)


def test_events_stamped_long_ago_land_after_newer_ones(pipeline, ledger):
    """A producer that stamps records with their own (old) time, after newer records moved the
    watermark: the records are older than the watermark would allow, and still land."""
    produce(pipeline, [(gift(ledger, now()), now())])
    wait_for(pipeline, f"select count(*) from trades where trade_id = '{ledger.direct[-1]}'", [[2]])
    time.sleep(3)  # a batch or two past it
    an_hour_ago = now() - timedelta(hours=1)
    produce(pipeline, [(gift(ledger, an_hour_ago), an_hour_ago) for _ in range(5)])
    all_landed(pipeline, ledger)


def test_every_rejected_record_lands_in_quarantine_whatever_its_timestamp(pipeline, ledger):
    stamps = {"ahead": now() + AHEAD, "behind": now() - timedelta(days=30),
              "epoch": datetime(1970, 1, 2, tzinfo=timezone.utc), "now": now()}
    poison = [(f"odd timestamp {name}".encode(), when) for name, when in stamps.items()]
    produce(pipeline, poison)
    ledger.trade(5, random.Random(45))
    all_landed(pipeline, ledger)
    wait_for(pipeline, "select count(*) from quarantine where raw like 'odd timestamp %'", [[len(poison)]])
    got = warehouse.execute(pipeline.trino, "select raw, reason, source from quarantine "
                                            "where raw like 'odd timestamp %' order by raw")
    assert got.values.tolist() == sorted([[value.decode(), "not_json", "trades"] for value, _ in poison])
