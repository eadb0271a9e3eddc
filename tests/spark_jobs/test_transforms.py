"""The sinks' pure transforms on micro-batches built by hand, on a local Spark."""

import json
import time
from datetime import datetime, timedelta

import pytest
from pyspark.sql import Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

import sql
from engine import events, rules
from engine.offerbook import OfferRecord
from engine.rules import Offer, Player
from spark_jobs import schemas, transforms

WHEN = "2026-11-28T10:15:30.123456Z"
WHEN_TS = datetime(2026, 11, 28, 10, 15, 30, 123456)
RECEIVED = datetime(2026, 11, 28, 10, 15, 31)
NOW = datetime(2026, 11, 28, 10, 15, 32)  # the micro-batch's time: the sink's clock
RAW = T.StructType([
    T.StructField("key", T.BinaryType()), T.StructField("value", T.BinaryType()),
    T.StructField("topic", T.StringType()), T.StructField("partition", T.IntegerType()),
    T.StructField("offset", T.LongType()), T.StructField("timestamp", T.TimestampType()),
])

# the trades table as sql/ddl/trades.sql declares it (Hive BIGINT is Spark's long), partition column last
TRADES_TABLE = T.StructType([T.StructField(name, kind) for name, kind in [
    ("trade_id", T.StringType()), ("trade_time", T.TimestampType()), ("valid_trade", T.BooleanType()),
    ("fail_reason", T.StringType()), ("side", T.LongType()), ("player_id", T.LongType()),
    ("counterparty_id", T.LongType()), ("item_traded_item_id", T.LongType()), ("item_traded_name", T.StringType()),
    ("item_traded_level", T.LongType()), ("item_traded_value", T.LongType()), ("item_traded_quantity", T.LongType()),
    ("gold_traded", T.LongType()), ("event_id", T.StringType()), ("event_time", T.TimestampType()),
    ("future_dated", T.BooleanType()), ("offer_id", T.StringType()), ("dt", T.StringType()),
]])


def ddl_columns(table: str) -> list[str]:
    """The table's columns as its DDL declares them, partition columns last (as the writers give them)."""
    return [name for name, _ in sql.ddl_columns(table)]


@pytest.fixture(scope="module")
def spark():
    session = (SparkSession.builder.master("local[2]").appName("bazaar-tests")
               .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "2").config("spark.driver.host", "127.0.0.1")
               .config("spark.driver.bindAddress", "127.0.0.1").getOrCreate())
    yield session
    session.stop()


def trade_event(fail_reason=None, **changes):
    ev = events.trade_event(
        "t1", WHEN, fail_reason,
        rules.trade_side(Offer(3, {5: 2, 28: 1}, 0)), rules.trade_side(Offer(8, {}, 250)),
    ).model_dump()
    ev.update(changes)
    return ev


def state_event(items):
    player = Player(8, "Bo", "monk", 4, 90, 25, items)
    return events.player_state_event(player.to_state(), WHEN).model_dump()


def batch(spark, values, received=RECEIVED):
    rows = [(b"k", v if isinstance(v, bytes) else json.dumps(v).encode(), "events", 0, i, received)
            for i, v in enumerate(values)]
    return spark.createDataFrame(rows, RAW)


def for_writers(spark, values, event_type=events.TRADE, now=NOW):
    """A micro-batch as the sink's writers see it: classified, timed at `now`, kept for the writers."""
    classified = transforms.classify(batch(spark, values), event_type, owns_unknown=event_type == events.TRADE)
    return transforms.for_writers(transforms.timed(classified, "1 hour", "5 minutes", F.lit(now)))


def test_event_schema_is_derived_from_the_engine_models():
    assert set(schemas.TRADE_EVENT.fieldNames()) == set(events.TradeEvent.model_fields) | {schemas.CORRUPT}
    player = schemas.PLAYER_STATE_EVENT["player"].dataType
    assert set(player.fieldNames()) == set(events.PlayerState.model_fields)
    items = player["inventory"].dataType["items"].dataType.elementType
    assert items["value"].dataType == T.LongType()


def test_classify_sorts_good_from_bad_with_reasons(spark):
    no_qty = trade_event()
    del no_qty["player_1"]["items_traded"][0]["quantity"]
    wrong_type = trade_event()
    wrong_type["player_2"]["gold_traded"] = "lots"
    no_id = trade_event()
    del no_id["trade_id"]
    second_no_qty = trade_event()  # the check looks at every element, not the first
    del second_no_qty["player_1"]["items_traded"][1]["quantity"]
    null_item = trade_event()  # an explicit null is missing too
    null_item["player_1"]["items_traded"][1]["item_id"] = None
    null_stack = trade_event()  # an element that is null altogether
    null_stack["player_2"]["items_traded"] = [null_stack["player_1"]["items_traded"][0], None]
    values = [
        trade_event(),                                   # 0 valid
        state_event({1: 2}),                             # 1 the other sink's
        b"\x00not json at all",                          # 2
        {"event_type": "chat", "event_id": "x"},         # 3
        wrong_type,                                      # 4
        no_id,                                           # 5
        no_qty,                                          # 6
        trade_event(schema_version=2),                   # 7
        trade_event(event_time="yesterday"),             # 8
        [1, 2, 3],                                       # 9
        trade_event(trade_time="2026-13-45T99:00:00.000000Z"),  # 10
        second_no_qty,                                   # 11
        null_item,                                       # 12
        null_stack,                                      # 13
    ]
    out = transforms.classify(batch(spark, values), events.TRADE, owns_unknown=True)
    got = {r["offset"]: r["reason"] for r in out.select("offset", "reason").collect()}
    assert got == {
        0: None, 2: "not_json", 3: "unknown_event_type", 4: "schema_mismatch", 5: "missing_field:trade_id",
        6: "missing_field:player_1.items_traded[].quantity", 7: "unsupported_schema_version",
        8: "bad_event_time", 9: "not_json", 10: "bad_trade_time",
        11: "missing_field:player_1.items_traded[].quantity", 12: "missing_field:player_1.items_traded[].item_id",
        13: "missing_field:player_2.items_traded[].item_id",
    }
    keys = {r["offset"]: r["dedup_key"] for r in out.collect()}
    assert keys[0] == values[0]["event_id"] and keys[3] == "events:0:3"

    states = transforms.classify(batch(spark, values), events.PLAYER_STATE, owns_unknown=False)
    assert [(r["offset"], r["reason"]) for r in states.collect()] == [(1, None)]


def test_flatten_trades_a_row_per_side_and_item(spark):
    ev = trade_event(offer_id="o1")
    valid = for_writers(spark, [ev])
    expected = spark.createDataFrame([
        Row("t1", WHEN_TS, True, None, 1, 3, 8, 5, "Leather Cap", 3, 40, 2, 0, ev["event_id"], WHEN_TS, False,
            "o1", "2026-11-28"),
        Row("t1", WHEN_TS, True, None, 1, 3, 8, 28, "Crown of the Void King", 80, 5_000_000, 1, 0, ev["event_id"],
            WHEN_TS, False, "o1", "2026-11-28"),
        Row("t1", WHEN_TS, True, None, 2, 8, 3, None, None, None, None, None, 250, ev["event_id"], WHEN_TS, False,
            "o1", "2026-11-28"),
    ], TRADES_TABLE)
    assertDataFrameEqual(transforms.flatten_trades(valid), expected, checkRowOrder=False)
    assert transforms.flatten_trades(valid).columns == ddl_columns("trades")


def test_flatten_player_states_empty_inventory_keeps_a_row(spark):
    full, empty = state_event({4: 5, 1: 2}), state_event({})
    valid = for_writers(spark, [full, empty], events.PLAYER_STATE)
    rows = transforms.flatten_player_states(valid)
    got = sorted((r["state_id"], r["item_held_item_id"], r["item_held_quantity"], r["item_held_value"],
                  r["inventory_current_capacity"], r["gold"], r["version"]) for r in rows.collect())
    assert got == sorted([
        (full["state_id"], 1, 2, 2, 18, 90, 4),
        (full["state_id"], 4, 5, 15, 18, 90, 4),
        (empty["state_id"], None, None, None, 25, 90, 4),
    ])
    assert rows.columns == ddl_columns("player_states")


def test_trade_sides_value_what_each_side_gave_and_got(spark):
    ev = trade_event()  # player 3 gives 2 Leather Caps (40 each) and a Crown (5,000,000); player 8 pays 250
    rejected = trade_event("insufficient_gold", trade_id="t2")
    valid = for_writers(spark, [ev, rejected])
    got = sorted((r["trade_id"], r["side"], r["player_id"], r["counterparty_id"], r["items_given"], r["units_given"],
                  r["item_value_given"], r["gold_given"], r["value_given"], r["value_received"], r["valid_trade"],
                  r["fail_reason"], r["dt"]) for r in transforms.summarize_trade_sides(valid).collect())
    one = (1, 3, 8, 2, 3, 5_000_080, 0, 5_000_080, 250)
    two = (2, 8, 3, 0, 0, 0, 250, 250, 5_000_080)
    assert got == [("t1", *one, True, None, "2026-11-28"), ("t1", *two, True, None, "2026-11-28"),
                   ("t2", *one, False, "insufficient_gold", "2026-11-28"),
                   ("t2", *two, False, "insufficient_gold", "2026-11-28")]


def test_state_summaries_sum_up_the_inventory(spark):
    full, empty = state_event({4: 5, 1: 2}), state_event({})  # 5 Healing Herbs (15 each), 2 Stale Bread (2)
    valid = for_writers(spark, [full, empty], events.PLAYER_STATE)
    got = sorted((r["state_id"], r["player_id"], r["version"], r["gold"], r["num_uniq_items"], r["units_held"],
                  r["cum_item_value"], r["inventory_current_capacity"], r["state_time"])
                 for r in transforms.summarize_player_states(valid).collect())
    assert got == sorted([(full["state_id"], 8, 4, 90, 2, 7, 79, 18, WHEN_TS),
                          (empty["state_id"], 8, 4, 90, 0, 0, 0, 25, WHEN_TS)])


def offer_event(action="accepted", **changes):
    record = OfferRecord("o1", 3, 8, Offer(3, {5: 2, 28: 1}, 7), Offer(8, {}, 250), WHEN, 1_764_325_000_000)
    ev = record.event(action, "2026-11-28T10:20:00.000000Z", "t1" if action == "accepted" else None).model_dump()
    ev.update(changes)
    return ev


def test_the_trades_sink_takes_offer_events_and_flattens_them_a_row_each(spark):
    ok, no_give, bad_time, bad_action = offer_event(), offer_event(), offer_event(action_time="later"), offer_event()
    del no_give["give"]
    bad_action["action"] = "stolen"
    values = [trade_event(), ok, no_give, bad_time, state_event({1: 1}), offer_event("opened", offer_id="o2"),
              bad_action]
    out = transforms.classify(batch(spark, values), (events.TRADE, events.OFFER), owns_unknown=True)
    got = {r["offset"]: r["reason"] for r in out.select("offset", "reason").collect()}
    assert got == {0: None, 1: None, 2: "missing_field:give", 3: "bad_action_time", 5: None,  # 4: the other sink's
                   6: "bad_value:action"}
    only_trades = transforms.classify(batch(spark, values), events.TRADE, owns_unknown=False)
    assert [r["offset"] for r in only_trades.collect()] == [0]
    valid = transforms.for_writers(transforms.timed(out, "1 hour", "5 minutes", F.lit(NOW))).filter(
        F.col("reason").isNull() & (F.col("event")["event_type"] == events.OFFER))
    rows = transforms.flatten_offers(valid)
    assert rows.columns == ddl_columns("offers")
    got = sorted((r["offer_id"], r["action"], r["from_player_id"], r["to_player_id"], r["give_gold"], r["give_items"],
                  r["give_units"], r["give_item_value"], r["want_gold"], r["want_units"], r["trade_id"], r["dt"],
                  r["action_time"], r["created_at"]) for r in rows.collect())
    when = datetime(2026, 11, 28, 10, 20)
    assert got == [("o1", "accepted", 3, 8, 7, 2, 3, 5_000_080, 250, 0, "t1", "2026-11-28", when, WHEN_TS),
                   ("o2", "opened", 3, 8, 7, 2, 3, 5_000_080, 250, 0, None, "2026-11-28", when, WHEN_TS)]


def test_quarantine_rows_keep_the_raw_message(spark):
    bad = for_writers(spark, [b"{oops"])
    (row,) = transforms.quarantine_rows(bad, "trades").collect()
    assert (row["raw"], row["reason"], row["source"], row["dt"], row["kafka_offset"]) == \
        ("{oops", "not_json", "trades", "2026-11-28", 0)
    assert list(row.asDict()) == ddl_columns("quarantine")


def test_time_follows_the_broker_bounded_by_the_sink_clock_never_a_record_claim(spark):
    """Whatever a record claims (its Kafka timestamp, its event_time), the watermark's time stays
    between nine tenths of the window before the batch and the batch's own time."""
    ahead, long_ago = NOW + timedelta(hours=3), NOW - timedelta(days=3)
    skewed = trade_event(event_time="2026-11-28T13:15:30.000000Z", trade_id="t-ahead")  # a host 3 h ahead
    late = trade_event(event_time="2026-11-25T10:00:00.000000Z", trade_id="t-old")  # a backlog of 3 days
    raw = spark.createDataFrame([
        (b"k", b"not json at all", "events", 0, 0, ahead),              # a producer stamping +3 h
        (b"k", json.dumps(trade_event()).encode(), "events", 0, 1, ahead),
        (b"k", json.dumps(skewed).encode(), "events", 0, 2, RECEIVED),
        (b"k", json.dumps(late).encode(), "events", 0, 3, long_ago),
        (b"k", json.dumps(trade_event(trade_id="t-fine")).encode(), "events", 0, 4, RECEIVED),
    ], RAW)
    classified = transforms.classify(raw, events.TRADE, owns_unknown=True)
    timed = transforms.timed(classified, "1 hour", "5 minutes", F.lit(NOW))
    got = {r["offset"]: (r["arrival"], r["watermark_ts"], r["future_dated"], r["reason"])
           for r in timed.collect()}
    floor = NOW - timedelta(minutes=54)  # 0.9 of the hour
    assert got == {
        0: (NOW, NOW, False, "not_json"),          # dated ahead by its producer: the sink's clock wins
        1: (NOW, NOW, False, None),
        2: (RECEIVED, RECEIVED, True, None),       # its own time 3 h ahead: kept, flagged, not followed
        3: (long_ago, floor, False, None),         # old: never below the floor, so never late
        4: (RECEIVED, RECEIVED, False, None),
    }
    rows = transforms.flatten_trades(transforms.for_writers(timed).filter("reason is null"))
    assert {(r["trade_id"], r["future_dated"]) for r in rows.collect()} == {
        ("t1", False), ("t-ahead", True), ("t-old", False), ("t-fine", False)}


def test_the_economy_deltas_count_each_minute_of_the_events_own_time(spark):
    """Per minute: executed and rejected (by reason) from side 1 only, gold and units from both sides of
    executed trades, lopsided trades by the report's rule, offers by action, new players (version 1);
    a late trade lands in its own minute. Expected values computed here from the rows, by hand."""
    m1, m2 = datetime(2026, 11, 28, 10, 15), datetime(2026, 11, 28, 9, 2)  # m2: a late event's minute
    sides = []
    def trade(tid, when, valid, reason, gave, got, gold=(0, 0), units=(0, 0)):
        for side, (g, r, gl, u) in enumerate([(gave, got, gold[0], units[0]), (got, gave, gold[1], units[1])], 1):
            sides.append(Row(trade_id=tid, trade_time=when, valid_trade=valid, fail_reason=reason, side=side,
                             gold_given=gl, units_given=u, value_given=g, value_received=r))
    trade("a", m1 + timedelta(seconds=5), True, None, 5_000, 100, gold=(0, 100), units=(3, 0))  # lopsided
    trade("b", m1 + timedelta(seconds=50), True, None, 900, 90, gold=(900, 0), units=(0, 2))   # 10x, under 1,000
    trade("c", m1 + timedelta(seconds=7), False, "insufficient_gold", 10**9, 0)
    trade("d", m2 + timedelta(seconds=1), False, "insufficient_gold", 10, 0)
    trade("e", m2 + timedelta(seconds=2), False, "inventory_full", 10, 0)
    trade("f", m2 + timedelta(seconds=3), True, None, 40, 50, gold=(40, 50), units=(0, 0))
    offers = spark.createDataFrame([Row(action=a, action_time=m1 + timedelta(seconds=i))
                                    for i, a in enumerate(["opened", "opened", "accepted", "expired"])])
    got = transforms.economy_of_trades(spark.createDataFrame(sides), offers).collect()
    table = {(r.minute, r.measure, r.reason): r.value for r in got}
    assert {r.dt for r in got} == {"2026-11-28"}
    assert table == {
        (m1, "trades_executed", ""): 2, (m1, "gold_moved", ""): 1_000, (m1, "items_moved", ""): 5,
        (m1, "lopsided_trades", ""): 1, (m1, "trades_rejected", "insufficient_gold"): 1,
        (m1, "offers_opened", ""): 2, (m1, "offers_accepted", ""): 1, (m1, "offers_expired", ""): 1,
        (m2, "trades_executed", ""): 1, (m2, "gold_moved", ""): 90,
        (m2, "trades_rejected", "insufficient_gold"): 1, (m2, "trades_rejected", "inventory_full"): 1,
    }
    states = spark.createDataFrame([Row(state_time=m1 + timedelta(seconds=s), version=v)
                                    for s, v in [(1, 1), (2, 1), (3, 2), (4, 7)]] + [Row(state_time=m2, version=1)])
    new = {(r.minute, r.measure): r.value for r in transforms.economy_of_states(states).collect()}
    assert new == {(m1, "new_players"): 2, (m2, "new_players"): 1}


def test_without_generated_code_a_new_batch_time_compiles_nothing_and_gives_the_same_rows(spark):
    """The sink turns Spark's generated code off after a small batch (`spark_jobs.sink.generated_code`):
    with it on, each new batch time makes the parse-and-validate plan new code to compile (the same
    time twice compiles nothing more); with it off, a new batch time compiles nothing, and the rows
    are the same."""
    from spark_jobs.sink import generated_code
    compiled = spark._jvm.org.apache.spark.metrics.source.CodegenMetrics.METRIC_COMPILATION_TIME()
    values = [json.dumps(trade_event(trade_id=f"t{i}")).encode() for i in range(3)] + [b"not json"]
    fresh = NOW + timedelta(seconds=time.time() % 100_000)  # batch times no earlier run in this JVM compiled

    def run(now):
        before = compiled.getCount()
        rows = for_writers(spark, values, now=now).select("offset", "reason", "arrival", "future_dated").collect()
        return compiled.getCount() - before, sorted(tuple(r) for r in rows)

    try:
        generated_code(spark, True)
        run(fresh)
        again, rows_on = run(fresh)
        new_time, _ = run(fresh + timedelta(seconds=1))
        generated_code(spark, False)
        off, rows_off = run(fresh + timedelta(seconds=2))
    finally:
        generated_code(spark, True)
    assert again == 0 and new_time > 0  # the batch time is in the generated code
    assert off == 0
    assert rows_off == rows_on and len(rows_on) == 4 and rows_on[3][1] == "not_json"
