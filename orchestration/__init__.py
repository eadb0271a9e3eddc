"""Dagster code location (topic, sinks, tables, reports). Not built yet: see the open issues."""
