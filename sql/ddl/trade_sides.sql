-- trade_sides: a row per (trade, side), executed and rejected trades alike, with what that side
-- gave and received at catalog value (items' value x quantity, plus gold). Written by the trades
-- sink beside `trades`, from the same events, so the reports need no grouping or self-join.
-- HiveQL, run against the metastore by the trades sink (spark_jobs/sink.py) at start.
CREATE EXTERNAL TABLE IF NOT EXISTS {database}.trade_sides (
  trade_id          STRING    COMMENT 'one per trade request',
  trade_time        TIMESTAMP COMMENT 'UTC',
  valid_trade       BOOLEAN   COMMENT 'true when executed',
  fail_reason       STRING    COMMENT 'null when executed, else a stable rejection code',
  side              BIGINT    COMMENT '1 or 2',
  player_id         BIGINT,
  counterparty_id   BIGINT    COMMENT 'the player on the other side',
  items_given       BIGINT    COMMENT 'distinct items this side gives',
  units_given       BIGINT    COMMENT 'units (sum of quantities) this side gives',
  item_value_given  BIGINT    COMMENT 'catalog value of the items this side gives',
  gold_given        BIGINT,
  value_given       BIGINT    COMMENT 'item_value_given + gold_given',
  value_received    BIGINT    COMMENT 'value_given of the other side',
  event_id          STRING,
  event_time        TIMESTAMP,
  future_dated      BOOLEAN   COMMENT 'event_time more than BAZAAR_SINK_MAX_CLOCK_SKEW ahead of its arrival in Kafka',
  offer_id          STRING    COMMENT 'the offer an accepted trade came from (null for POST /trade)'
)
PARTITIONED BY (dt STRING)
STORED AS PARQUET
LOCATION '{location}'
