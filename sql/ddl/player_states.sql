-- player_states: a row per (player state, item held); an empty inventory has one row with null items.
-- inventory_current_capacity is the free units left (max capacity minus units held and units in escrow).
-- HiveQL, run against the metastore by the player_states sink (spark_jobs/sink.py) at start.
CREATE EXTERNAL TABLE IF NOT EXISTS {database}.player_states (
  state_id                    STRING    COMMENT 'one per state event',
  state_time                  TIMESTAMP COMMENT 'UTC',
  player_id                   BIGINT,
  username                    STRING,
  player_class                STRING,
  version                     BIGINT    COMMENT 'bumped by every change of the player',
  inventory_max_capacity      BIGINT,
  inventory_current_capacity  BIGINT    COMMENT 'free units left',
  item_held_item_id           BIGINT,
  item_held_name              STRING,
  item_held_level             BIGINT,
  item_held_value             BIGINT    COMMENT 'catalog value of one unit',
  item_held_quantity          BIGINT,
  gold                        BIGINT,
  event_id                    STRING,
  event_time                  TIMESTAMP,
  future_dated                BOOLEAN   COMMENT 'event_time more than BAZAAR_SINK_MAX_CLOCK_SKEW ahead of its arrival in Kafka'
)
PARTITIONED BY (dt STRING)
STORED AS PARQUET
LOCATION '{location}'
