"""The one place a SparkSession is built: master, metastore and warehouse from
the settings, UTC everywhere, RocksDB for streaming state."""

from __future__ import annotations

from pyspark.sql import SparkSession

from bazaar.settings import Settings


def build_session(settings: Settings, app_name: str, jars: list[str] | None = None) -> SparkSession:
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
        .config("spark.hadoop.hive.metastore.uris", settings.effective_metastore_uri)
        .config("spark.sql.warehouse.dir", settings.effective_warehouse_uri)
        .config("spark.driver.host", settings.host)
        .config("spark.driver.bindAddress", settings.host)
        .config("spark.ui.enabled", "false")
    )
    if jars:
        builder = builder.config("spark.jars", ",".join(jars))
    return builder.getOrCreate()
