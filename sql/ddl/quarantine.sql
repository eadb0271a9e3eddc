-- quarantine: Kafka records the sinks could not accept, with the raw message and the reason
-- (not_json, unknown_event_type, schema_mismatch, missing_field:<path>, ...).
-- HiveQL, run against the metastore by each sink at start; each sink writes its own `source` partition.
CREATE EXTERNAL TABLE IF NOT EXISTS {database}.quarantine (
  received_time    TIMESTAMP COMMENT 'arrival in Kafka: broker time, never later than the sink clock, UTC',
  kafka_topic      STRING,
  kafka_partition  INT,
  kafka_offset     BIGINT,
  kafka_key        STRING,
  raw              STRING    COMMENT 'the message as received',
  reason           STRING
)
PARTITIONED BY (source STRING, dt STRING)
STORED AS PARQUET
LOCATION '{location}'
