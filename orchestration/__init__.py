"""Dagster code location: the topic, the supervised sinks, the Hive tables and the economy reports,
with the warehouse queries and the report downloads they rest on."""
