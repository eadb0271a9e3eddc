"""The two Spark Structured Streaming sinks from the Kafka topic to Hive tables of Parquet
(`sink.py`), their settings, and how a deployment launches and watches them (`launch.py`)."""
