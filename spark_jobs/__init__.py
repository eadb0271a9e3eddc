"""Spark Structured Streaming sinks from the Kafka topic to Hive tables of Parquet (see `sink.py`)."""
