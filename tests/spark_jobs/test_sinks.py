"""The whole analytical path on real services: engine -> Redis outbox -> relay ->
Kafka -> Spark sinks -> Parquet + Hive Metastore -> Trino, checked against the
engine's own HTTP answers."""

import random
import time
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlparse

import pytest
from kafka import KafkaConsumer, KafkaProducer

import sql
from bazaar.stack import SinkService
from engine import events, rules
from engine.rules import Offer
from orchestration import reports, warehouse
from tests.pipeline import (counts_settle, funnel, lopsided, pipeline_stack, played_ledger, running_pipeline,
                            wait_for)

SEED_COLUMNS = {  # what the seed's readers get back from its four questions
    "trade_count": ["_col0"],
    "most_traded_items": ["item_traded_item_id", "item_traded_name", "num_traded"],
    "most_diverse_inventory": ["player_id", "username", "state_id", "state_time", "num_uniq_items"],
    "most_valuable_inventory": ["player_id", "username", "state_id", "state_time", "gold", "cum_item_value"],
}


@pytest.fixture(scope="module")
def pipeline(stack, tmp_path_factory, redis_service, kafka_service, trino_service):
    s = pipeline_stack(stack, tmp_path_factory.mktemp("pipeline"), sink_max_offsets_per_trigger=1000)
    with running_pipeline(s):
        warehouse.ensure_views(s.trino)
        yield s


@pytest.fixture(scope="module")
def ledger(pipeline):
    return played_ledger(pipeline, players=30, trades=400, seed=11, offers=40)


def test_the_seed_questions_run_verbatim(pipeline, ledger):
    """Each seed file is sent to Trino exactly as written and answers with the seed's columns."""
    for name, columns in SEED_COLUMNS.items():
        text = sql.text(f"seed/{name}").strip()
        assert warehouse.read_sql(f"seed/{name}") == text  # no placeholder filled, no line dropped
        assert list(warehouse.execute(pipeline.trino, text).columns) == columns


def test_offers_land_in_their_table_and_the_funnel_matches_the_engine(pipeline, ledger):
    offers = ledger.offers.values()
    assert {o["status"] for o in offers} == {"open", "accepted", "cancelled", "expired"}
    assert ledger.refused  # accepts the rules refused: offer events with their reason, the offers left open

    def sides(o):
        return (o["from_player_id"], o["to_player_id"], o["give"]["gold"],
                sum(i["quantity"] for i in o["give"]["items"]), o["want"]["gold"])

    expected = Counter((o["offer_id"], "opened", *sides(o), None, None) for o in offers)
    expected += Counter((o["offer_id"], o["status"], *sides(o), o["trade_id"], None)
                        for o in offers if o["status"] != "open")
    expected += Counter((oid, "refused", *sides(ledger.offers[oid]), None, reason) for oid, reason in ledger.refused)
    got = warehouse.execute(pipeline.trino, "select offer_id, action, from_player_id, to_player_id, give_gold, "
                                            "give_units, want_gold, trade_id, reason from offers")
    assert Counter(tuple(None if v != v else v for v in row) for row in got.values.tolist()) == expected

    # an executed accept is a trade carrying its offer, counted as the seed counts trades; a refused one is
    # no trade at all (not in the maker's history, not in the tables)
    by_offer = warehouse.execute(pipeline.trino, "select trade_id, offer_id from trade_sides "
                                                 "where offer_id is not null and side = 1")
    assert dict(by_offer.values.tolist()) == {a["trade_id"]: a["offer_id"] for _, a in ledger.trades
                                              if a.get("offer_id")}
    assert all(a["status"] == "executed" for _, a in ledger.trades if a.get("offer_id"))

    report = warehouse.query(pipeline.trino, reports.REPORTS["offers_funnel"].sql)
    assert list(report.columns) == ["day", "opened", "accepted", "cancelled", "expired", "still_open",
                                    "median_seconds_to_accept"]
    want = funnel(offers)
    got = report.values.tolist()
    assert [r[:6] for r in got] == [r[:6] for r in want]
    assert [r[6] for r in got] == pytest.approx([r[6] for r in want], abs=1e-6)


@pytest.mark.parametrize("source", ["seed", "report"])
def test_the_seed_questions_answer_what_the_engine_did(pipeline, ledger, source):
    """As the seed asked them (sql/seed/), and as the reports ask them (mostly of the summary tables)."""
    s = pipeline

    def ask(name):
        return warehouse.query(s.trino, f"seed/{name}" if source == "seed" else reports.REPORTS[name].sql)

    assert ask("trade_count").values.tolist() == [[len(ledger.trades)]]

    items = ask("most_traded_items")
    got = {(None if r.item_traded_item_id != r.item_traded_item_id else int(r.item_traded_item_id),
            r.item_traded_name): r.num_traded for r in items.itertuples()}
    assert got == dict(ledger.trade_rows())
    assert list(items.num_traded) == sorted(items.num_traded, reverse=True)

    def uniq(st):
        return len({i["item_id"] for i in st["inventory"]["items"]})

    def value(st):
        return sum(i["value"] * i["quantity"] for i in st["inventory"]["items"])

    (diverse,) = ask("most_diverse_inventory").itertuples()
    best = max(uniq(st) for st in ledger.states)
    assert diverse.num_uniq_items == best
    assert (diverse.player_id, diverse.username) in {(st["player_id"], st["username"])
                                                     for st in ledger.states if uniq(st) == best}

    (rich,) = ask("most_valuable_inventory").itertuples()
    top = max(value(st) for st in ledger.states)
    assert rich.cum_item_value == top
    assert (rich.player_id, rich.username, rich.gold) in {(st["player_id"], st["username"], st["gold"])
                                                          for st in ledger.states if value(st) == top}


def test_lopsided_trades_match_the_executed_trades(pipeline, ledger):
    expected = lopsided(ledger.trades)
    got = warehouse.query(pipeline.trino, "lopsided_trades")
    assert {r.trade_id: (r.giver_id, r.receiver_id, r.value_given, r.value_received)
            for r in got.itertuples()} == expected
    assert expected  # the ledger's mix makes some

    players = warehouse.query(pipeline.trino, "lopsided_players")
    gained = Counter()
    for giver, receiver, given, received in expected.values():
        gained[receiver] += given - received
    assert dict(zip(players.player_id, players.value_gained)) == dict(gained)


def test_re_sent_events_do_not_become_rows(pipeline, ledger):
    topic = pipeline.topic.topic
    consumer = KafkaConsumer(topic, bootstrap_servers=pipeline.kafka_bootstrap, **pipeline.kafka_login().kafka_python(),
                             auto_offset_reset="earliest", consumer_timeout_ms=2000)
    again = [m for _, m in zip(range(500), consumer)]
    consumer.close()
    assert len(again) == 500
    producer = KafkaProducer(bootstrap_servers=pipeline.kafka_bootstrap, **pipeline.kafka_login().kafka_python(), acks="all")
    for m in again:  # what a relay re-sends after a crash: the same key and bytes
        producer.send(topic, key=m.key, value=m.value)
    producer.flush()
    producer.close()
    ledger.trade(5, random.Random(12))  # fresh events after the copies, to know the sinks got past them
    counts_settle(pipeline, ledger)  # as many rows as the engine answered: none of the copies became one
    twice = ("select (select count(*) from (select event_id, side, item_traded_item_id from trades "
             "group by 1, 2, 3 having count(*) > 1)) + (select count(*) from (select event_id, item_held_item_id "
             "from player_states group by 1, 2 having count(*) > 1))")
    assert warehouse.execute(pipeline.trino, twice).values.tolist() == [[0]]


def test_a_sink_killed_mid_stream_resumes_without_loss_or_duplication(pipeline, ledger):
    trades_dir = Path(urlparse(pipeline.sinks.warehouse_uri).path) / "trades"
    before = len(list(trades_dir.rglob("batch-*.parquet")))
    ledger.trade(1500, random.Random(13))  # a backlog of several micro-batches (1,000 records a batch)
    sink = SinkService(pipeline, "trades")
    deadline = time.monotonic() + 60
    while len(list(trades_dir.rglob("batch-*.parquet"))) < before + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    sink.kill()
    (written,) = warehouse.execute(pipeline.trino, "select count(distinct trade_id) from trades").values[0]
    assert written < len(ledger.trades)  # killed with a backlog left
    sink.start()
    counts_settle(pipeline, ledger)


def test_poison_messages_are_quarantined_and_good_events_keep_flowing(pipeline, ledger):
    poison = [
        b"definitely not json",
        b'{"event_type": "chat", "event_id": "c1", "schema_version": 1}',
        b'{"event_type": "trade", "event_id": "t-bad", "schema_version": 1, "valid_trade": "yes"}',
        b'{"event_type": "player_state", "event_id": "p-bad", "schema_version": 1, '
        b'"event_time": "2026-11-28T10:00:00.000000Z"}',
    ]
    producer = KafkaProducer(bootstrap_servers=pipeline.kafka_bootstrap, **pipeline.kafka_login().kafka_python(), acks="all")
    for raw in poison:
        producer.send(pipeline.topic.topic, key=b"poison", value=raw)
    producer.flush()
    producer.close()
    ledger.trade(5, random.Random(14))
    counts_settle(pipeline, ledger)
    wait_for(pipeline, "select source, reason, raw from quarantine order by raw", sorted([
        ["trades", "not_json", poison[0].decode()],
        ["trades", "unknown_event_type", poison[1].decode()],
        ["trades", "schema_mismatch", poison[2].decode()],
        ["player_states", "missing_field:state_id", poison[3].decode()],
    ], key=lambda r: r[2]))
    for svc in (SinkService(pipeline, "trades"), SinkService(pipeline, "player_states")):
        assert svc.is_healthy()


def _minute(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).replace(second=0, microsecond=0, tzinfo=None)


def test_economy_minutes_count_what_the_engine_answered_and_a_late_event_its_own_minute(pipeline, ledger):
    """`economy_minutes` minute by minute against the engine's answers (after the re-sent copies, the
    killed sink and the poison messages of the tests above), reconciled with the `trades` table, and a
    trade that arrives a day late counted in its own minute."""
    late_at = datetime.now(timezone.utc).replace(second=20, microsecond=0) - timedelta(days=1)
    late = events.trade_event(uuid.uuid4().hex, events.utc_iso(late_at), "insufficient_gold",
                              rules.trade_side(Offer(1, {}, 10**9)), rules.trade_side(Offer(2, {}, 0)))
    producer = KafkaProducer(bootstrap_servers=pipeline.kafka_bootstrap, **pipeline.kafka_login().kafka_python(), acks="all")
    producer.send(pipeline.topic.topic, key=late.kafka_key.encode(), value=late.model_dump_json().encode())
    producer.flush()
    producer.close()

    want: dict[datetime, Counter] = defaultdict(Counter)
    sides = ("player_1", "player_2")
    lopsided_ids = set(lopsided(ledger.trades))
    for body, answer in ledger.trades:
        minute = want[_minute(answer["trade_time"])]
        if answer["status"] == "executed":
            minute["trades_executed"] += 1
            minute["gold_moved"] += sum(body[s].get("gold_traded", 0) for s in sides)
            minute["items_moved"] += sum(line.get("quantity", 1) for s in sides for line in body[s].get("items_traded", []))
            minute["lopsided_trades"] += answer["trade_id"] in lopsided_ids
        else:
            minute["trades_rejected"] += 1
            minute[f"rejected:{answer['fail_reason']}"] += 1
    want[late_at.replace(second=0, tzinfo=None)].update({"trades_rejected": 1, "rejected:insufficient_gold": 1})
    columns = ["trades_executed", "trades_rejected", "gold_moved", "items_moved", "lopsided_trades"]
    sql_text = (f"select minute, {', '.join(columns)}, rejected_by_reason from economy_minutes "
                f"where trades_executed + trades_rejected > 0")
    deadline, got = time.monotonic() + 120, {}
    while time.monotonic() < deadline:
        got = {}
        for row in warehouse.execute(pipeline.trino, sql_text).to_dict("records"):
            counts = Counter({c: int(row[c]) for c in columns})
            counts.update({f"rejected:{k}": int(v) for k, v in row["rejected_by_reason"].items()})
            got[datetime.fromisoformat(str(row["minute"]))] = +counts
        if got == {m: +c for m, c in want.items()}:
            break
        time.sleep(2)
    assert got == {m: +c for m, c in want.items()}
    assert sum(c["lopsided_trades"] for c in got.values()) == len(lopsided_ids) > 0

    # the same minutes from the trades table
    executed = warehouse.execute(pipeline.trino, "select date_trunc('minute', trade_time) as minute, "
                                                 "count(distinct trade_id) as n from trades where valid_trade group by 1")
    assert {datetime.fromisoformat(str(r.minute)): int(r.n) for r in executed.itertuples()} == {
        m: c["trades_executed"] for m, c in got.items() if c["trades_executed"]}
    # players and offers, over the whole run
    totals = warehouse.execute(pipeline.trino, "select sum(new_players), sum(offers_opened), sum(offers_accepted), "
                                               "sum(offers_cancelled), sum(offers_expired) from economy_minutes")
    offers = Counter(o["status"] for o in ledger.offers.values())
    assert [int(v) for v in totals.values.tolist()[0]] == [
        sum(1 for st in ledger.states if st["version"] == 1), len(ledger.offers), offers["accepted"],
        offers["cancelled"], offers["expired"]]
