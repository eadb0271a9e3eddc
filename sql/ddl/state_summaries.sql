-- state_summaries: a row per player state with its inventory summed up. Written by the
-- player_states sink beside `player_states`, from the same events, so the reports read one row
-- per state instead of one per item held.
-- HiveQL, run against the metastore by the player_states sink (spark_jobs/sink.py) at start.
CREATE EXTERNAL TABLE IF NOT EXISTS {database}.state_summaries (
  state_id                    STRING,
  state_time                  TIMESTAMP COMMENT 'UTC',
  player_id                   BIGINT,
  username                    STRING,
  player_class                STRING,
  version                     BIGINT    COMMENT 'bumped by every change of the player',
  gold                        BIGINT,
  inventory_max_capacity      BIGINT,
  inventory_current_capacity  BIGINT    COMMENT 'free units left',
  num_uniq_items              BIGINT    COMMENT 'distinct items held',
  units_held                  BIGINT,
  cum_item_value              BIGINT    COMMENT 'catalog value x quantity, summed over items held',
  event_id                    STRING,
  event_time                  TIMESTAMP,
  future_dated                BOOLEAN   COMMENT 'event_time more than BAZAAR_SINK_MAX_CLOCK_SKEW ahead of its arrival in Kafka'
)
PARTITIONED BY (dt STRING)
STORED AS PARQUET
LOCATION '{location}'
