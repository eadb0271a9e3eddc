-- offers: a row per offer event: opened (the maker's goods into escrow), accepted (exchanged; trade_id
-- names the trade in `trades`), refused (an accept a game rule refused; `reason` says which, and the
-- offer stays open), cancelled by the maker, expired (escrow returned). What each side
-- gives is summed up at catalog value (items' value x quantity).
-- HiveQL, run against the metastore by the trades sink (spark_jobs/sink.py) at start.
CREATE EXTERNAL TABLE IF NOT EXISTS {database}.offers (
  offer_id          STRING    COMMENT 'one per offer',
  action            STRING    COMMENT 'opened, accepted, refused, cancelled or expired',
  action_time       TIMESTAMP COMMENT 'UTC',
  from_player_id    BIGINT    COMMENT 'the maker',
  to_player_id      BIGINT    COMMENT 'the addressee',
  give_gold         BIGINT    COMMENT 'gold the maker gives (held in escrow while open)',
  give_items        BIGINT    COMMENT 'distinct items the maker gives',
  give_units        BIGINT    COMMENT 'units (sum of quantities) the maker gives',
  give_item_value   BIGINT    COMMENT 'catalog value of the items the maker gives',
  want_gold         BIGINT    COMMENT 'gold the addressee gives on accepting',
  want_items        BIGINT,
  want_units        BIGINT,
  want_item_value   BIGINT,
  created_at        TIMESTAMP COMMENT 'when the offer opened, UTC',
  expires_at        TIMESTAMP COMMENT 'when it expires unless accepted or cancelled, UTC',
  trade_id          STRING    COMMENT 'the trade of an accepted offer, else null',
  event_id          STRING,
  event_time        TIMESTAMP,
  future_dated      BOOLEAN   COMMENT 'event_time more than BAZAAR_SINK_MAX_CLOCK_SKEW ahead of its arrival in Kafka',
  reason            STRING    COMMENT 'the game rule that refused an accept (refused only), else null'
)
PARTITIONED BY (dt STRING)
STORED AS PARQUET
LOCATION '{location}'
