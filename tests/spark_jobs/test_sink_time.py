"""The sinks never drop a valid event, whatever time a record claims: records dated ahead by
their producer, events from a host whose clock runs ahead, and a backlog older than the dedup
window all land exactly once; every rejected record lands in quarantine. Real Kafka, real
sinks, Trino; a dedup window of seconds, so that "older than the window" happens in a test."""

import random
import time
from datetime import datetime, timedelta, timezone

import pytest
from kafka import KafkaProducer

from bazaar.stack import RelayService
from engine import events
from engine.events import TradeSide
from orchestration import warehouse
from tests.pipeline import Ledger, counts_settle, pipeline_stack, running_pipeline, wait_for

WINDOW_S = 10


@pytest.fixture(scope="module")
def pipeline(stack, tmp_path_factory, redis_service, kafka_service, trino_service):
    with running_pipeline(pipeline_stack(stack, tmp_path_factory.mktemp("sink-time"),
                                         sink_dedup_window=f"{WINDOW_S} seconds")) as s:
        yield s


@pytest.fixture(scope="module")
def ledger(pipeline):
    book = Ledger(pipeline)
    book.create(12, random.Random(41))
    counts_settle(pipeline, book)
    book.direct = []  # trade ids of the events the tests produce straight to Kafka
    return book


def produce(s, records: list[tuple[bytes, int]]) -> None:
    """(value, Kafka timestamp in ms) straight to the topic, as any producer that can write to it."""
    producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all")
    for value, timestamp_ms in records:
        producer.send(s.topic.topic, key=b"direct", value=value, timestamp_ms=timestamp_ms)
    producer.flush()
    producer.close()


def gift_event(ledger, when: datetime) -> events.TradeEvent:
    """A valid trade event between two of the ledger's players, dated `when` (another engine host's)."""
    a, b = (st["player_id"] for st in ledger.states[:2])
    return events.trade_event(events.new_id(), events.utc_iso(when), None,
                              TradeSide(player_id=a, items_traded=[], gold_traded=1),
                              TradeSide(player_id=b, items_traded=[], gold_traded=0))


def now() -> datetime:
    return datetime.now(timezone.utc)


def trades_landed(s, ledger) -> None:
    """Every trade the ledger made and every trade event produced straight to Kafka, each exactly
    once in both trade tables."""
    want = sorted([a["trade_id"] for _, a in ledger.trades] + ledger.direct)
    for table, per_trade in (("trades", None), ("trade_sides", 2)):
        wait_for(s, f"select count(distinct trade_id) from {table}", [[len(want)]])
        got = warehouse.execute(s.trino, f"select trade_id, count(distinct event_id) as events, count(*) as n "
                                         f"from {table} group by trade_id order by trade_id")
        assert list(got.trade_id) == want
        assert set(got.events) == {1}  # one event a trade: nothing landed twice
        if per_trade:
            assert set(got.n) == {per_trade}
    # and the player states: none produced straight to Kafka, each state of the ledger once
    wait_for(s, "select count(distinct event_id), count(*) from player_states", [[len(ledger.states),
                                                                                  ledger.state_rows()]])


def test_a_record_dated_hours_ahead_holds_nothing_back(pipeline, ledger):
    ahead_ms = int((now() + timedelta(hours=3)).timestamp() * 1000)
    produce(pipeline, [(b"not json at all", ahead_ms)])
    ledger.trade(40, random.Random(42))
    trades_landed(pipeline, ledger)
    wait_for(pipeline, "select reason, count(*) from quarantine where raw = 'not json at all' group by reason",
             [["not_json", 1]])


def test_an_event_from_a_host_whose_clock_runs_hours_ahead_lands_flagged_and_holds_nothing_back(pipeline, ledger):
    skewed = gift_event(ledger, now() + timedelta(hours=3))
    produce(pipeline, [(skewed.model_dump_json().encode(), int(time.time() * 1000))])
    ledger.direct.append(skewed.trade_id)
    ledger.trade(40, random.Random(43))
    trades_landed(pipeline, ledger)
    flagged = warehouse.execute(pipeline.trino, "select distinct trade_id from trades where future_dated")
    assert list(flagged.trade_id) == [skewed.trade_id]  # kept with its own times, and flagged


def test_a_backlog_older_than_the_dedup_window_lands_exactly_once(pipeline, ledger):
    """The relay holds events (Kafka unreachable, say) for longer than the window while another
    host's fresh event lands; then the relay sends the backlog: every event lands, once."""
    relay = RelayService(pipeline)
    relay.stop()
    ledger.trade(60, random.Random(44))  # held in the outbox
    assert relay.lag().waiting >= 60
    time.sleep(WINDOW_S + 3)
    fresh = gift_event(ledger, now())
    produce(pipeline, [(fresh.model_dump_json().encode(), int(time.time() * 1000))])
    ledger.direct.append(fresh.trade_id)
    wait_for(pipeline, f"select count(*) from trades where trade_id = '{fresh.trade_id}'", [[2]])
    relay.start()
    trades_landed(pipeline, ledger)
    counts = warehouse.execute(pipeline.trino, "select count(distinct event_id), count(*) from player_states")
    assert counts.values.tolist() == [[len(ledger.states), ledger.state_rows()]]


def test_every_rejected_record_lands_in_quarantine_whatever_its_timestamp(pipeline, ledger):
    stamps = {"ahead": now() + timedelta(days=2), "behind": now() - timedelta(days=30),
              "epoch": datetime(1970, 1, 2, tzinfo=timezone.utc), "now": now()}
    poison = [(f"odd timestamp {name}".encode(), int(when.timestamp() * 1000)) for name, when in stamps.items()]
    produce(pipeline, poison)
    ledger.trade(5, random.Random(45))
    wait_for(pipeline, "select count(*) from quarantine where raw like 'odd timestamp %'", [[len(poison)]])
    got = warehouse.execute(pipeline.trino, "select raw, reason, source from quarantine "
                                            "where raw like 'odd timestamp %' order by raw")
    assert got.values.tolist() == sorted([[value.decode(), "not_json", "trades"] for value, _ in poison])
