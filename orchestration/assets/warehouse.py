"""How the warehouse ages: each day of every table compacted into few large files, and the days
retention no longer keeps dropped (both the Spark job of `spark_jobs.compact`)."""

import time

from dagster import (AssetExecutionContext, BackfillPolicy, Config, DailyPartitionsDefinition, MaterializeResult,
                     MetadataValue, asset)
from pydantic import Field

from orchestration import compaction
from orchestration.assets.pipeline import hive_tables
from orchestration.resources import ReportStoreResource, SparkSinksResource, WarehouseJobsResource
from spark_jobs import layout
from spark_jobs.settings import WarehouseSettings

# compaction and retention rewrite the warehouse's folders: the instance runs one step of this pool at a time
WAREHOUSE_POOL = "bazaar_warehouse"
# UTC days, today's included: compacting today rewrites the batches committed so far
DAYS = DailyPartitionsDefinition(start_date=WarehouseSettings().warehouse_first_day.isoformat(), timezone="UTC",
                                 end_offset=1)


class CompactConfig(Config):
    tables: list[str] = Field(default_factory=list, description=f"Only these of {', '.join(layout.TABLES)} (all when empty).")


def _result(outcomes: list[dict], job: str, store: ReportStoreResource, seconds: float, **extra) -> MaterializeResult:
    table = compaction.summary(outcomes)
    store.record_job(job, {"seconds": round(seconds, 1), "partitions": len(outcomes),
                           "files_before": int(table.files_before.sum()), "files_after": int(table.files_after.sum())})
    return MaterializeResult(metadata={
        **extra, "partitions": len(outcomes), "files_before": int(table.files_before.sum()),
        "files_after": int(table.files_after.sum()), "rows": int(table.rows.sum()),
        "by_table": MetadataValue.md(table.to_markdown(index=False) if len(table) else "nothing to do")})


@asset(group_name="warehouse", partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run(), deps=[hive_tables],
       pool=WAREHOUSE_POOL,
       description="Each day of every table rewritten into few large Parquet files, sorted, swapped in for readers "
                   "at once; the old files go after a grace period.")
def compacted_days(context: AssetExecutionContext, config: CompactConfig, sinks: SparkSinksResource,
                   warehouse_jobs: WarehouseJobsResource, report_store: ReportStoreResource) -> MaterializeResult:
    unknown = set(config.tables) - set(layout.TABLES)
    if unknown:
        raise ValueError(f"no table {sorted(unknown)}; the tables are {', '.join(layout.TABLES)}")
    days = context.partition_keys
    args = [a for d in days for a in ("--day", d)] + [a for t in config.tables for a in ("--table", t)]
    start = time.monotonic()
    outcomes = warehouse_jobs.run(sinks, args, context.log)
    return _result(outcomes, "compaction", report_store, time.monotonic() - start, days=", ".join(days))


@asset(group_name="warehouse", deps=[hive_tables], pool=WAREHOUSE_POOL,
       description="Drops the days each table no longer keeps (BAZAAR_RETENTION_DAYS; quarantine: "
                   "BAZAAR_QUARANTINE_RETENTION_DAYS) from the metastore, then their files.")
def warehouse_retention(context: AssetExecutionContext, sinks: SparkSinksResource,
                        warehouse_jobs: WarehouseJobsResource, report_store: ReportStoreResource) -> MaterializeResult:
    start = time.monotonic()
    outcomes = warehouse_jobs.run(sinks, ["--retention"], context.log)
    return _result(outcomes, "retention", report_store, time.monotonic() - start)
