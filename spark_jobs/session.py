"""The one place a SparkSession is built: master, metastore and warehouse from
the sink settings, UTC everywhere, RocksDB for streaming state."""

from __future__ import annotations

from pyspark.sql import SparkSession

from spark_jobs.settings import SinkSettings


def build_session(settings: SinkSettings, app_name: str) -> SparkSession:
    builder = (
        SparkSession.builder.appName(app_name)
        .master(settings.spark_master)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")  # also the dedup state's partitions; 2 cores here
        .config("spark.sql.streaming.stateStore.providerClass",
                "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider")
        # commit the dedup state as a changelog instead of a RocksDB snapshot every batch
        .config("spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled", "true")
        # no extra batch just to move the watermark: expired ids are dropped with the next data batch
        .config("spark.sql.streaming.noDataMicroBatches.enabled", "false")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.catalogImplementation", "hive")
        .config("spark.hadoop.hive.metastore.uris", settings.metastore_uri)
        .config("spark.sql.warehouse.dir", settings.warehouse_uri)
        .config("spark.driver.host", settings.spark_driver_host)
        .config("spark.driver.bindAddress", settings.spark_driver_host)
        .config("spark.ui.enabled", "false")
    )
    if not settings.spark_master.startswith("local"):  # executors on a cluster's workers
        builder = builder.config("spark.executor.memory", settings.spark_executor_memory)
        if settings.spark_cores_max:
            builder = builder.config("spark.cores.max", str(settings.spark_cores_max))
    return builder.getOrCreate()
