"""The pipeline's moving parts as assets: the topic, the two sinks, the Hive tables."""


from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from orchestration import warehouse
from orchestration.resources import KafkaResource, SparkSinksResource, TrinoResource


@asset(group_name="pipeline")
def events_topic(kafka: KafkaResource) -> MaterializeResult:
    """The Kafka topic every event goes to, with its partitions and retention (idempotent)."""
    done = kafka.ensure_topic()
    return MaterializeResult(metadata={"topic": done["topic"], "created": done["created"],
                                       "partitions": done["partitions"], "retention_ms": kafka.retention_ms})


def sink_asset(name: str):
    @asset(name=f"{name}_sink", group_name="pipeline", deps=[events_topic],
           description=f"Makes sure the {name} sink runs (starts it if needed); shows its last batch, "
                       "events written and lag.")
    def _sink(context: AssetExecutionContext, sinks: SparkSinksResource) -> MaterializeResult:
        launcher = sinks.launcher()
        started = launcher.start(name)
        status = launcher.status(name)
        context.log.info(f"sink {name} {'started' if started else 'was running'} ({status.where})")
        p = status.progress
        return MaterializeResult(metadata={
            "started_now": started, "where": status.where,
            "last_batch_id": p.get("batch_id"), "last_batch_time": str(p.get("batch_time")),
            "events_written_since_start": p.get("events_written", 0), "quarantined_since_start": p.get("quarantined", 0),
            "offsets_behind_latest": p.get("offsets_behind_latest"), "log": MetadataValue.path(status.log),
        })
    return _sink


trades_sink = sink_asset("trades")
player_states_sink = sink_asset("player_states")


@asset(group_name="pipeline", deps=[trades_sink, player_states_sink])
def hive_tables(trino: TrinoResource) -> MaterializeResult:
    """The Hive tables the sinks create and fill (with their own partitions), and the views over them."""
    views = warehouse.ensure_views(trino.settings)
    counts = trino.execute("select (select count(*) from trades) as trades, "
                           "(select count(*) from player_states) as player_states, "
                           "(select count(*) from quarantine) as quarantine").iloc[0]
    return MaterializeResult(metadata={**{f"rows_{k}": int(v) for k, v in counts.items()}, "views": ", ".join(views)})
