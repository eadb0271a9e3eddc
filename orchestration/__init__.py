"""Dagster code location: the topic, the supervised sinks, the Hive tables and the economy reports."""
