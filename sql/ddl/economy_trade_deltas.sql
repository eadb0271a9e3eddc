-- economy_trade_deltas: what each micro-batch of the trades sink adds to each minute of the economy,
-- a row per (minute, measure, reason), dated by the events' own time: a late event adds to its own
-- minute. Written in the same batch and commit as the sink's tables, so exactly once like them.
-- The view `economy_minutes` (sql/views) sums them per minute.
-- HiveQL, run against the metastore by the trades sink (spark_jobs/sink.py) at start.
CREATE EXTERNAL TABLE IF NOT EXISTS {database}.economy_trade_deltas (
  minute            TIMESTAMP COMMENT 'UTC, the minute the events happened in',
  measure           STRING    COMMENT 'what is counted (economy_minutes names its columns after them)',
  reason            STRING    COMMENT 'for trades_rejected: the fail_reason; else empty',
  value             BIGINT    COMMENT 'what the batch adds'
)
PARTITIONED BY (dt STRING)
STORED AS PARQUET
LOCATION '{location}'
