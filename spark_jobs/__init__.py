"""Spark Structured Streaming sinks from Kafka to Parquet. Not built yet: see the open issues."""
