-- trades: a row per (trade, side, item traded), executed and rejected trades alike.
-- A side that gives no item still has a row, with null item columns.
-- HiveQL, run against the metastore by the trades sink (spark_jobs/sink.py) at start.
CREATE EXTERNAL TABLE IF NOT EXISTS {database}.trades (
  trade_id              STRING    COMMENT 'one per trade request',
  trade_time            TIMESTAMP COMMENT 'UTC',
  valid_trade           BOOLEAN   COMMENT 'true when executed',
  fail_reason           STRING    COMMENT 'null when executed, else a stable rejection code',
  side                  BIGINT    COMMENT '1 or 2: which side of the trade this row is',
  player_id             BIGINT,
  counterparty_id       BIGINT    COMMENT 'the player on the other side',
  item_traded_item_id   BIGINT,
  item_traded_name      STRING,
  item_traded_level     BIGINT,
  item_traded_value     BIGINT    COMMENT 'catalog value of one unit',
  item_traded_quantity  BIGINT,
  gold_traded           BIGINT    COMMENT 'gold this side gives',
  event_id              STRING,
  event_time            TIMESTAMP,
  future_dated          BOOLEAN   COMMENT 'event_time more than BAZAAR_SINK_MAX_CLOCK_SKEW ahead of its arrival in Kafka',
  offer_id              STRING    COMMENT 'the offer an accepted trade came from (null for POST /trade)'
)
PARTITIONED BY (dt STRING)
STORED AS PARQUET
LOCATION '{location}'
