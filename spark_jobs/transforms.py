"""Pure DataFrame transforms of the sinks: Kafka records in, table rows out.

No I/O here: `classify` parses and validates raw Kafka records, `timed` gives
each the times the sink trusts, `for_writers` keeps what the writers need of them, `flatten_trades`,
`flatten_player_states` and `flatten_offers` shape valid events into table rows,
`summarize_trade_sides` and `summarize_player_states` into the summary tables
the reports read, and `quarantine_rows` keeps what did not fit, with the reason.  Tests feed these
functions micro-batches built by hand.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from engine.events import OFFER, PLAYER_STATE, SCHEMA_VERSION, TRADE, OfferEvent, PlayerStateEvent, TradeEvent
from spark_jobs.schemas import CORRUPT, ENVELOPE, OFFER_EVENT, PLAYER_STATE_EVENT, TRADE_EVENT

EVENTS: dict[str, tuple[type[BaseModel], Any, str]] = {  # model, Spark schema, the time that partitions it
    TRADE: (TradeEvent, TRADE_EVENT, "trade_time"),
    PLAYER_STATE: (PlayerStateEvent, PLAYER_STATE_EVENT, "state_time"),
    OFFER: (OfferEvent, OFFER_EVENT, "action_time"),
}
TIME_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'"


def _ts(col: Column) -> Column:
    """An event time as a timestamp; null (never an error, even in ANSI mode) when it does not parse."""
    return F.try_to_timestamp(col, F.lit(TIME_FORMAT))
JSON_OPTIONS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}


def _any_null(array: Column, field: str, json_type: str | None = None) -> Column:
    """Whether any element of an array of structs lacks `field`.  An integer field's check needs no
    lambda: Spark runs a higher-order function through its interpreter, reading its configuration
    again for every element, while joining the field's values as text runs in generated code (an
    integer's text has no "N", so an "N" in the joined text is a null)."""
    if json_type == "integer":
        return F.array_join(array[field].cast("array<string>"), ",", "N").contains("N")
    return F.exists(array, lambda x: x[field].isNull())


def _missing_checks(model: type[BaseModel], root: Column) -> list[tuple[str, Column]]:
    """(field path, "is missing") for every required field, inside arrays of structs too."""
    doc = model.model_json_schema(mode="serialization")
    defs = doc.get("$defs", {})
    checks: list[tuple[str, Column]] = []

    def resolve(node):
        return defs[node["$ref"].split("/")[-1]] if "$ref" in node else node

    def walk(node, col: Column, path: str, in_array=None):
        node = resolve(node)
        for name in node.get("required", []):
            sub = resolve(node["properties"][name])
            if "anyOf" in sub:
                continue
            field, where = col[name], f"{path}{name}"
            if in_array is None:
                checks.append((where, field.isNull()))
            else:
                arr, _ = in_array
                checks.append((where, _any_null(arr, name, sub.get("type"))))
                continue
            if sub.get("type") == "object":
                walk(sub, field, f"{where}.")
            elif sub.get("type") == "array" and resolve(sub["items"]).get("type") == "object":
                walk(resolve(sub["items"]), field, f"{where}[].", in_array=(field, where))

    walk(doc, root, "")
    return checks


def union_schema(event_types: tuple[str, ...]) -> T.StructType:
    """One struct holding the fields of each event type (the first type's definition of a shared field;
    the shared ones, the envelope and ids, have one type everywhere), the corrupt-record column last."""
    fields: dict[str, T.StructField] = {}
    for event_type in event_types:
        for f in EVENTS[event_type][1].fields:
            if f.name != CORRUPT:
                fields.setdefault(f.name, f)
    return T.StructType([*fields.values(), T.StructField(CORRUPT, T.StringType())])


def classify(raw: DataFrame, event_types: str | tuple[str, ...], owns_unknown: bool) -> DataFrame:
    """Parse Kafka records of `event_types`, with `reason` null for a valid event.

    Records whose type is not a known event type are kept only where
    `owns_unknown` (exactly one sink takes them, so each lands once in quarantine).
    Adds `event` (the parsed struct, with the fields of every type in `event_types`), `event_ts`
    (its `event_time`, null for a rejected record), and `dedup_key` (the event_id, or
    topic:partition:offset for a record that is quarantined)."""
    types = (event_types,) if isinstance(event_types, str) else tuple(event_types)
    value = F.col("value").cast("string")
    env = F.from_json(value, ENVELOPE, JSON_OPTIONS)
    kind = env["event_type"]
    known = kind.isNotNull() & kind.isin(*EVENTS)
    ours = kind.isin(*types)
    mine = ours if not owns_unknown else (ours | ~F.coalesce(known, F.lit(False)))
    df = (raw.withColumn("raw", value).withColumn("env", env).filter(mine)
          .withColumn("event", F.from_json("raw", union_schema(types), JSON_OPTIONS)))
    ev = F.col("event")
    event_ts = _ts(ev["event_time"])
    per_type = []  # each type's own checks, on records of that type
    for event_type in types:
        model, _, time_field = EVENTS[event_type]
        is_it = F.col("env")["event_type"] == event_type
        per_type += [(is_it & missing, f"missing_field:{path}") for path, missing in _missing_checks(model, ev)]
        per_type.append((is_it & _ts(ev[time_field]).isNull(), f"bad_{time_field}"))
        props = model.model_json_schema(mode="serialization")["properties"]
        per_type += [(is_it & ~ev[name].isin(*node["enum"]), f"bad_value:{name}")  # an `action` the contract lacks
                     for name, node in props.items() if "enum" in node]
    bad_time = [(event_ts.isNull(), "bad_event_time")]
    reasons = [
        (F.col("raw").isNull(), "empty_message"),
        # a third parse, so only for what the envelope did not parse as an object with a type
        ((F.col("env")[CORRUPT].isNotNull() | F.col("env")["event_type"].isNull())
         & F.json_object_keys("raw").isNull(), "not_json"),
        (F.col("env")["event_type"].isNull(), "missing_field:event_type"),
        (~F.col("env")["event_type"].isin(*EVENTS), "unknown_event_type"),
        (F.col("env")["schema_version"].isNull() | (F.col("env")["schema_version"] != SCHEMA_VERSION),
         "unsupported_schema_version"),
        (ev[CORRUPT].isNotNull(), "schema_mismatch"),
    ] + [r for r in per_type if r[1].startswith("missing_field:")] + bad_time + [
        r for r in per_type if not r[1].startswith("missing_field:")]
    # one flat CASE, a branch per check: the first that holds names the reason; none holds, null
    (cond, text), *rest = reasons
    reason = F.when(F.coalesce(cond, F.lit(False)), F.lit(text))
    for cond, text in rest:
        reason = reason.when(F.coalesce(cond, F.lit(False)), F.lit(text))
    offset_key = F.concat_ws(":", F.col("topic"), F.col("partition").cast("string"), F.col("offset").cast("string"))
    return (df.withColumn("reason", reason)
            .withColumn("event_ts", F.when(F.col("reason").isNull(), event_ts))
            .withColumn("dedup_key", F.when(F.col("reason").isNull(), ev["event_id"]).otherwise(offset_key)))


def timed(classified: DataFrame, window: str, skew: str, now: Column | None = None) -> DataFrame:
    """The times the sink trusts, whatever a record claims (`window` and `skew` as Spark intervals,
    "1 hour"; `now` is the micro-batch's time, the sink's own clock).

    - `arrival`: when the record reached Kafka, the broker's timestamp (its append time, as the
      topic is provisioned), never later than `now`: a producer cannot date a record ahead.
    - `watermark_ts`: `arrival`, never older than nine tenths of `window` before `now`. The dedup
      watermark follows it, so it moves only with the sink's clock, and no record is ever older
      than the watermark: none is dropped as late, however old its own `event_time`.
    - `future_dated`: a valid event whose `event_time` is more than `skew` ahead of the broker's
      timestamp (a host whose clock runs ahead); it is kept, with its own times, and flagged.
      Compared with the broker's time, not the sink's, so a sink host whose clock runs behind
      flags nothing.
    """
    now = F.current_timestamp() if now is None else now
    arrival = F.least(F.col("timestamp"), now)
    floor = now - F.expr(f"INTERVAL {window}") * 0.9
    future = F.col("event_ts") > F.col("timestamp") + F.expr(f"INTERVAL {skew}")
    return (classified.withColumn("arrival", arrival)
            .withColumn("watermark_ts", F.greatest(F.col("arrival"), floor))
            .withColumn("future_dated", F.col("reason").isNull() & F.coalesce(future, F.lit(False))))


def for_writers(classified: DataFrame) -> DataFrame:
    """What the writers read of a classified and timed record: the event, its reason and flag,
    and for a rejected record its raw text and Kafka coordinates. A batch is cached this way,
    without a second copy of every message (Kafka's bytes and their text) or the parsed envelope."""
    rejected = F.col("reason").isNotNull()
    return classified.select("event", "reason", "future_dated", F.when(rejected, F.col("raw")).alias("raw"),
                             "key", "topic", "partition", "offset", "arrival")


def _day(ts: Column) -> Column:
    return F.date_format(ts, "yyyy-MM-dd")


def flatten_trades(valid: DataFrame) -> DataFrame:
    """A row per (trade, side, item traded); a side giving no item has one row with null items."""
    ev = F.col("event")
    sides = F.array(
        F.struct(F.lit(1).alias("side"), ev["player_1"].alias("me"), ev["player_2"]["player_id"].alias("other")),
        F.struct(F.lit(2).alias("side"), ev["player_2"].alias("me"), ev["player_1"]["player_id"].alias("other")),
    )
    trade_time = _ts(ev["trade_time"])
    return (valid.select(ev, "future_dated", F.explode(sides).alias("s"))
            .select(ev, "future_dated", "s", F.explode_outer("s.me.items_traded").alias("it"))
            .select(
                ev["trade_id"].alias("trade_id"), trade_time.alias("trade_time"),
                ev["valid_trade"].alias("valid_trade"), ev["fail_reason"].alias("fail_reason"),
                F.col("s.side").cast("long").alias("side"), F.col("s.me.player_id").alias("player_id"),
                F.col("s.other").alias("counterparty_id"),
                F.col("it.item_id").alias("item_traded_item_id"), F.col("it.name").alias("item_traded_name"),
                F.col("it.level").alias("item_traded_level"), F.col("it.value").alias("item_traded_value"),
                F.col("it.quantity").alias("item_traded_quantity"),
                F.col("s.me.gold_traded").alias("gold_traded"), ev["event_id"].alias("event_id"),
                _ts(ev["event_time"]).alias("event_time"), F.col("future_dated"), ev["offer_id"].alias("offer_id"),
                _day(trade_time).alias("dt"),
            ))


def flatten_player_states(valid: DataFrame) -> DataFrame:
    """A row per (state, item held); an empty inventory has one row with null items."""
    ev = F.col("event")
    p = ev["player"]
    state_time = _ts(ev["state_time"])
    return (valid.select(ev, "future_dated", F.explode_outer(p["inventory"]["items"]).alias("it"))
            .select(
                ev["state_id"].alias("state_id"), state_time.alias("state_time"),
                p["player_id"].alias("player_id"), p["username"].alias("username"),
                p["player_class"].alias("player_class"), p["version"].alias("version"),
                p["inventory"]["max_capacity"].alias("inventory_max_capacity"),
                p["inventory"]["current_capacity"].alias("inventory_current_capacity"),
                F.col("it.item_id").alias("item_held_item_id"), F.col("it.name").alias("item_held_name"),
                F.col("it.level").alias("item_held_level"), F.col("it.value").alias("item_held_value"),
                F.col("it.quantity").alias("item_held_quantity"), p["gold"].alias("gold"),
                ev["event_id"].alias("event_id"), _ts(ev["event_time"]).alias("event_time"), F.col("future_dated"),
                _day(state_time).alias("dt"),
            ))


def _worth(items: Column) -> Column:
    """Catalog value times quantity, summed over an array of item stacks (0 for none)."""
    return F.aggregate(F.coalesce(items, F.array()), F.lit(0).cast("long"),
                       lambda acc, it: acc + it["value"] * it["quantity"])


def _units(items: Column) -> Column:
    return F.aggregate(F.coalesce(items, F.array()), F.lit(0).cast("long"), lambda acc, it: acc + it["quantity"])


def _distinct_items(items: Column) -> Column:
    return F.size(F.array_distinct(F.transform(F.coalesce(items, F.array()), lambda it: it["item_id"])))


def summarize_trade_sides(valid: DataFrame) -> DataFrame:
    """A row per (trade, side) with what that side gave and got, valued at catalog prices:
    what the reports need from a trade, computed once as it lands instead of at every query."""
    ev = F.col("event")
    trade_time = _ts(ev["trade_time"])

    def given(side: str) -> Column:
        return _worth(ev[side]["items_traded"]) + F.coalesce(ev[side]["gold_traded"], F.lit(0))

    sides = F.array(
        F.struct(F.lit(1).alias("side"), ev["player_1"].alias("me"), ev["player_2"]["player_id"].alias("other"),
                 given("player_1").alias("gave"), given("player_2").alias("got")),
        F.struct(F.lit(2).alias("side"), ev["player_2"].alias("me"), ev["player_1"]["player_id"].alias("other"),
                 given("player_2").alias("gave"), given("player_1").alias("got")),
    )
    return (valid.select(ev, "future_dated", F.explode(sides).alias("s"))
            .select(
                ev["trade_id"].alias("trade_id"), trade_time.alias("trade_time"),
                ev["valid_trade"].alias("valid_trade"), ev["fail_reason"].alias("fail_reason"),
                F.col("s.side").cast("long").alias("side"), F.col("s.me.player_id").alias("player_id"),
                F.col("s.other").alias("counterparty_id"),
                _distinct_items(F.col("s.me.items_traded")).cast("long").alias("items_given"),
                _units(F.col("s.me.items_traded")).alias("units_given"),
                _worth(F.col("s.me.items_traded")).alias("item_value_given"),
                F.col("s.me.gold_traded").alias("gold_given"),
                F.col("s.gave").alias("value_given"), F.col("s.got").alias("value_received"),
                ev["event_id"].alias("event_id"), _ts(ev["event_time"]).alias("event_time"), F.col("future_dated"),
                ev["offer_id"].alias("offer_id"), _day(trade_time).alias("dt"),
            ))


def summarize_player_states(valid: DataFrame) -> DataFrame:
    """A row per player state with its inventory summed up: distinct items, units, catalog worth."""
    ev = F.col("event")
    p = ev["player"]
    items = p["inventory"]["items"]
    state_time = _ts(ev["state_time"])
    return valid.select(
        ev["state_id"].alias("state_id"), state_time.alias("state_time"),
        p["player_id"].alias("player_id"), p["username"].alias("username"),
        p["player_class"].alias("player_class"), p["version"].alias("version"), p["gold"].alias("gold"),
        p["inventory"]["max_capacity"].alias("inventory_max_capacity"),
        p["inventory"]["current_capacity"].alias("inventory_current_capacity"),
        _distinct_items(items).cast("long").alias("num_uniq_items"), _units(items).alias("units_held"),
        _worth(items).alias("cum_item_value"),
        ev["event_id"].alias("event_id"), _ts(ev["event_time"]).alias("event_time"), F.col("future_dated"),
        _day(state_time).alias("dt"),
    )


def quarantine_rows(bad: DataFrame, source: str) -> DataFrame:
    """What did not fit: the raw message, where it came from, and why (dated by its arrival)."""
    return bad.select(
        F.col("arrival").alias("received_time"), F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"), F.col("offset").alias("kafka_offset"),
        F.col("key").cast("string").alias("kafka_key"), F.col("raw"), F.col("reason"),
        F.lit(source).alias("source"), _day(F.col("arrival")).alias("dt"),
    )


def _goods(goods: Column, prefix: str) -> list[Column]:
    return [F.coalesce(goods["gold"], F.lit(0)).alias(f"{prefix}_gold"),
            _distinct_items(goods["items"]).cast("long").alias(f"{prefix}_items"),
            _units(goods["items"]).alias(f"{prefix}_units"), _worth(goods["items"]).alias(f"{prefix}_item_value")]


def flatten_offers(valid: DataFrame) -> DataFrame:
    """A row per offer event (opened, accepted, refused, cancelled, expired) with what each side gives, summed
    up at catalog value; dated by the action's time."""
    ev = F.col("event")
    action_time = _ts(ev["action_time"])
    return valid.select(
        ev["offer_id"].alias("offer_id"), ev["action"].alias("action"), action_time.alias("action_time"),
        ev["from_player_id"].alias("from_player_id"), ev["to_player_id"].alias("to_player_id"),
        *_goods(ev["give"], "give"), *_goods(ev["want"], "want"),
        _ts(ev["created_at"]).alias("created_at"), _ts(ev["expires_at"]).alias("expires_at"),
        ev["trade_id"].alias("trade_id"), ev["event_id"].alias("event_id"), _ts(ev["event_time"]).alias("event_time"),
        F.col("future_dated"), ev["reason"].alias("reason"), _day(action_time).alias("dt"),
    )


FLATTEN = {TRADE: flatten_trades, PLAYER_STATE: flatten_player_states, OFFER: flatten_offers}
SUMMARIZE = {TRADE: summarize_trade_sides, PLAYER_STATE: summarize_player_states}


# what a trade must be to count as lopsided: the `lopsided_trades` report's defaults
# (orchestration.warehouse.DEFAULT_PARAMS), one side giving this many times what it got, and this much
LOPSIDED_RATIO, LOPSIDED_MIN_VALUE = 10, 1_000


def _minute(ts: Column) -> Column:
    return F.date_trunc("minute", ts)


def _long(per_minute: DataFrame, measures: list[str]) -> DataFrame:
    """(minute, one column per measure) -> a row per (minute, measure) with its value, zeros left out."""
    pairs = F.array(*[F.struct(F.lit(m).alias("measure"), F.col(m).cast("long").alias("value")) for m in measures])
    return (per_minute.select("minute", F.explode(pairs).alias("m"))
            .select("minute", F.col("m.measure").alias("measure"), F.lit("").alias("reason"), F.col("m.value").alias("value"))
            .filter(F.col("value") != 0))


def _dated(deltas: DataFrame) -> DataFrame:
    return deltas.withColumn("dt", _day(F.col("minute")))


def economy_of_trades(sides: DataFrame, offers: DataFrame | None = None) -> DataFrame:
    """What a batch's trades (as `trade_sides` rows) and offer events (as `offers` rows) add to each
    minute of their own time: trades executed, rejected by reason, gold and units moved, lopsided
    trades, offers by action. `economy_trade_deltas`' rows."""
    valid, first = F.col("valid_trade"), F.col("side") == 1
    lopsided = valid & (F.col("value_given") >= LOPSIDED_MIN_VALUE) & (
        F.col("value_given") >= LOPSIDED_RATIO * F.greatest(F.col("value_received"), F.lit(1)))
    per_minute = sides.groupBy(_minute(F.col("trade_time")).alias("minute")).agg(
        F.count_if(first & valid).alias("trades_executed"),
        F.sum(F.when(valid, F.coalesce(F.col("gold_given"), F.lit(0))).otherwise(0)).alias("gold_moved"),
        F.sum(F.when(valid, F.coalesce(F.col("units_given"), F.lit(0))).otherwise(0)).alias("items_moved"),
        F.count_if(lopsided).alias("lopsided_trades"))
    deltas = _long(per_minute, ["trades_executed", "gold_moved", "items_moved", "lopsided_trades"])
    rejected = (sides.filter(first & ~valid)
                .groupBy(_minute(F.col("trade_time")).alias("minute"), F.col("fail_reason").alias("reason"))
                .agg(F.count(F.lit(1)).alias("value"))
                .select("minute", F.lit("trades_rejected").alias("measure"), "reason", "value"))
    deltas = deltas.unionByName(rejected)
    if offers is not None:
        deltas = deltas.unionByName(
            offers.groupBy(_minute(F.col("action_time")).alias("minute"),
                           F.concat(F.lit("offers_"), F.col("action")).alias("measure"))
            .agg(F.count(F.lit(1)).alias("value")).select("minute", "measure", F.lit("").alias("reason"), "value"))
    return _dated(deltas)


def economy_of_states(summaries: DataFrame) -> DataFrame:
    """What a batch's player states (as `state_summaries` rows) add to each minute: new players (a
    player's first state, version 1). `economy_player_deltas`' rows."""
    per_minute = (summaries.filter(F.col("version") == 1)
                  .groupBy(_minute(F.col("state_time")).alias("minute")).agg(F.count(F.lit(1)).alias("new_players")))
    return _dated(_long(per_minute, ["new_players"]))
