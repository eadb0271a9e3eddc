"""A Structured Streaming sink from the Kafka topic to a Hive table of Parquet files.

    spark-submit --jars <kafka connector jars> spark_jobs/sink.py --sink trades --status-file F
    spark-submit --jars <kafka connector jars> spark_jobs/sink.py --sink player_states --status-file F

(`spark_jobs.launch` runs both; the settings are `spark_jobs.settings.SinkSettings`.)
Each sink creates its tables in the metastore, reads the whole topic, keeps the
events of its type, drops re-sent copies by `event_id` (state kept in the
checkpoint), writes each micro-batch exactly once (`spark_jobs.writer`)
partitioned by day, to its table and to a summary table beside it
(`trade_sides`, `state_summaries`) into each day's folder as the metastore
holds it (registering the days it adds), and puts records that do not parse
or fit the schema in `quarantine`.  The trades sink also lands offer events in
`offers`, and owns records of no known event type.  Each batch is committed in
the sink's commit log beside the tables (`spark_jobs.commits`), with the
Kafka offsets it ended at.
Stopped or killed, it resumes from its checkpoint; when the checkpoint is
lost, from the commit log, so nothing is lost or landed twice.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime, timezone
from pathlib import Path

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQueryListener

import sql
from engine.events import OFFER, PLAYER_STATE, TRADE
from spark_jobs import commits, transforms
from spark_jobs import metrics as sink_metrics
from spark_jobs.hadoop import HadoopFs
from spark_jobs.launch import stop_request_path
from spark_jobs.partitions import Generation, Partitions
from spark_jobs.session import build_session
from spark_jobs.settings import SinkSettings
from spark_jobs.writer import SMALL_BATCH_ROWS, BatchWriter

SINKS = {"trades": TRADE, "player_states": PLAYER_STATE}
SUMMARIES = {"trades": "trade_sides", "player_states": "state_summaries"}  # written beside each table
BESIDE = {"trades": {OFFER: "offers"}, "player_states": {}}  # other event types a sink lands, in their own table
# what each batch adds to each minute of the economy (the view `economy_minutes` sums them)
ECONOMY = {"trades": "economy_trade_deltas", "player_states": "economy_player_deltas"}
OWNS_UNKNOWN = "trades"


def ddl(table: str, database: str, location: str) -> str:
    return sql.text(f"ddl/{table}").format(database=database, location=location)


def register_tables(spark: SparkSession, settings: SinkSettings, tables: list[str]) -> None:
    """The tables this sink writes, created in the metastore (the one place tables are created);
    a column the DDL declares that an existing table lacks (one added since) is added to it."""
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {settings.database}")
    for table in tables:
        spark.sql(ddl(table, settings.database, f"{settings.warehouse_uri}/{table}"))
        name = f"{settings.database}.{table}"
        have = {field.name.lower() for field in spark.table(name).schema}
        missing = [f"{column} {kind}" for column, kind in sql.ddl_columns(table) if column.lower() not in have]
        if missing:
            spark.sql(f"ALTER TABLE {name} ADD COLUMNS ({', '.join(missing)})")


def resume_from(fs: HadoopFs, settings: SinkSettings, sink: str, writers: list[BatchWriter]) -> str:
    """Where the query starts when its checkpoint has no progress: the topic's start on a sink's first
    run; else (the checkpoint was lost) the offsets of the last batch the table records as committed,
    after deleting what any earlier run left of batches it never committed. Kafka's option
    `startingOffsets`."""
    checkpoint = f"{settings.checkpoint_uri}/{sink}"
    if commits.has_progress(fs, checkpoint):
        return "earliest"  # ignored: the checkpoint says where to go on
    log = commits.CommitLog(fs, settings.warehouse_uri, sink)
    high_water = log.high_water()
    if not high_water:
        return "earliest"  # the sink's first run
    # a checkpoint cut short keeps its query id without its progress: a run of its own from here, so
    # its batch ids never meet the ones that run committed
    fs.delete(checkpoint, True)
    gone = sum(w.remove_where(lambda run, batch: batch > high_water.get(run, -1)) for w in writers)
    last = log.latest()
    if last.topic != settings.topic:
        raise SystemExit(f"sink {sink}: the table's last commit read topic {last.topic!r}, not {settings.topic!r}; "
                         f"the checkpoint {checkpoint} is gone, so there is no telling where to start reading "
                         f"{settings.topic!r}: restore the checkpoint, or set BAZAAR_TOPIC back")
    print(f"sink {sink}: no checkpoint progress; resuming after batch {last.batch_id} of run {last.run} "
          f"at offsets {last.offsets} (the commit log), {gone} files of uncommitted batches removed", flush=True)
    return json.dumps({last.topic: last.offsets})


# After a batch of fewer records than this, the next batch runs without generated code. The stream's
# batch time is a constant that differs in every batch, so Spark compiled the stage that parses and
# validates a batch again for each one (a 6,000-line class, 65-90 ms here, then the JVM's JIT
# compiling it), and a small batch's few rows do not repay it: measured beside the whole local stack
# at 5 trades a second, a small batch took about a quarter less time. A backlog's batches do repay it
# (a 200,000-record batch took a fifth longer interpreted), so after a large batch, and after a
# restart, generated code is on; the first batch of a backlog that follows small ones runs without.
CODEGEN_ROWS = 10_000


def generated_code(spark: SparkSession, on: bool) -> None:
    """Spark's generated code on or off for the jobs planned next in this (the stream's) session."""
    spark.conf.set("spark.sql.codegen.wholeStage", str(on).lower())
    spark.conf.set("spark.sql.codegen.factoryMode", "FALLBACK" if on else "NO_CODEGEN")


HEARTBEAT_S = 5.0
STOP_TIMEOUT_S = 50.0  # under the local launcher's 60 s before SIGKILL


class StatusFile(StreamingQueryListener):
    """The sink's progress as JSON in a file: last batch, rows in and written, Kafka lag."""

    def __init__(self, path: Path, counters: dict, sink: str = ""):
        self.path, self.counters, self.sink = path, counters, sink
        self.doc: dict = {}  # the last progress stays in the file through idle events
        self.progress_at = time.time()
        self.batch_since = None  # when the batch under way started (main loop's heartbeat)
        self.lock = threading.Lock()  # the listener's thread and the main loop's heartbeat both write
        path.parent.mkdir(parents=True, exist_ok=True)

    def onQueryStarted(self, event):
        self._write({"state": "started", "query_id": str(event.id)})

    def onQueryProgress(self, event):
        self.batch_since = None
        p = json.loads(event.progress.json)
        dropped = sum((op.get("numRowsDroppedByWatermark") or 0) for op in p.get("stateOperators") or [])
        if dropped:  # cannot happen with the watermark on trusted time; if it does, it shows
            self.counters["dropped_late"] = self.counters.get("dropped_late", 0) + dropped
        src = (p.get("sources") or [{}])[0]
        metrics = src.get("metrics") or {}  # the Kafka source reports its metrics as strings
        behind = metrics.get("maxOffsetsBehindLatest")
        behind = None if behind is None else int(float(behind))
        if self.sink:
            sink_metrics.progress(self.sink, time.time(), p.get("numInputRows"),
                                  (p.get("durationMs") or {}).get("triggerExecution"), behind)
        self._write({"state": "running", "batch_id": p.get("batchId"), "batch_time": p.get("timestamp"),
                     "input_rows": p.get("numInputRows"), "input_rows_per_s": p.get("inputRowsPerSecond"),
                     "processed_rows_per_s": p.get("processedRowsPerSecond"),
                     "batch_duration_ms": (p.get("durationMs") or {}).get("triggerExecution"),
                     "write_duration_ms": (p.get("durationMs") or {}).get("addBatch"),
                     "durations_ms": p.get("durationMs"),
                     "dedup_state": {k: (p.get("stateOperators") or [{}])[0].get(k) for k in
                                     ("numRowsTotal", "numRowsRemoved", "numRowsDroppedByWatermark",
                                      "allRemovalsTimeMs", "commitTimeMs")},
                     "offsets_behind_latest": behind,
                     "end_offset": src.get("endOffset"), "latest_offset": src.get("latestOffset")})

    def onQueryIdle(self, event):
        self._write({"state": "idle"})

    def onQueryTerminated(self, event):
        self._write({"state": "terminated", "exception": event.exception})

    def beat(self, in_batch: bool) -> None:
        """The driver's heartbeat between progress events: alive, and since when its batch runs, so a
        long batch is told from a stall (`spark_jobs.launch.progressing`)."""
        now = time.time()
        self.batch_since = (self.batch_since or now) if in_batch else None
        self._write({}, progress=False)

    def _write(self, doc: dict, progress: bool = True) -> None:
        with self.lock:
            self.doc.update(doc)
            if progress:
                self.progress_at = time.time()
            doc = {**self.doc, **self.counters, "written_at": self.progress_at, "alive_at": time.time(),
                   "batch_since": self.batch_since, "pid": os.getpid()}
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc, default=str))
            tmp.replace(self.path)


def start(spark: SparkSession, settings: SinkSettings, sink: str, status_path: Path):
    """Start the streaming query of one sink; returns it and its status file (for the heartbeat)."""
    event_type, summary_table, beside_tables = SINKS[sink], SUMMARIES[sink], BESIDE[sink]
    register_tables(spark, settings, [sink, summary_table, *beside_tables.values(), ECONOMY[sink], "quarantine"])
    wh, checkpoint = settings.warehouse_uri, f"{settings.checkpoint_uri}/{sink}"
    fs = HadoopFs(spark, wh)
    log = commits.CommitLog(fs, wh, sink)
    generation = Generation(fs, wh)
    table, summary = BatchWriter(fs, wh, sink, ["dt"]), BatchWriter(fs, wh, summary_table, ["dt"])
    # each sink owns its own `source` partition of quarantine, so their runs and batches never meet
    quarantine = BatchWriter(fs, wh, "quarantine", ["dt"], prefix={"source": sink})
    others = {kind: (BatchWriter(fs, wh, name, ["dt"]), Partitions(spark, settings, name))
              for kind, name in beside_tables.items()}
    table_parts, summary_parts = Partitions(spark, settings, sink), Partitions(spark, settings, summary_table)
    quarantine_parts = Partitions(spark, settings, "quarantine", prefix={"source": sink})
    economy = (BatchWriter(fs, wh, ECONOMY[sink], ["dt"]), Partitions(spark, settings, ECONOMY[sink]))
    pairs = [(table, table_parts), (summary, summary_parts), (quarantine, quarantine_parts), economy,
             *others.values()]
    every_part, writers = [p for _, p in pairs], [w for w, _ in pairs]
    for w in writers:
        w.clear_staging()
    starting = resume_from(fs, settings, sink, writers)
    counters = {"events_written": 0, "quarantined": 0, "batches": 0, "future_dated": 0,
                "dropped_late": 0, "batches_already_committed": 0,
                "late_days": {}}  # since this process started
    status = StatusFile(status_path, counters, sink)
    spark.streams.addListener(status)
    beside = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{summary_table}-writer")
    ran = {"run": None, "last": None}  # this process's run and last batch: a batch not after it is a retry

    def write_batch(df: DataFrame, batch_id: int) -> None:
        # The batch (Kafka read, dedup state) is computed once, into the cache. The table's rows and
        # the summary are written by two jobs at once: the summary's tasks wait on the cached
        # partitions the table's tasks compute, so each job's planning and commit overlap the
        # other's work. The table's job counts good and bad records; quarantine only when bad > 0.
        run = ran["run"] = ran["run"] or commits.checkpoint_run(fs, checkpoint)
        retry = ran["last"] is None or batch_id <= ran["last"]
        if retry and log.committed(run, batch_id):  # done before a kill, Spark's own commit cut short
            counters["batches_already_committed"] += 1
            ran["last"] = batch_id
            return
        if generation.changed():  # a compaction moved a partition since the last batch, or is moving one
            for parts in every_part:
                parts.forget(fs)
        for writer in writers:  # what `follow` may move: this batch's files, never a committed one
            writer.placed = {}
        last = status.doc.get("input_rows")  # the last batch's size predicts this one's
        expected = SMALL_BATCH_ROWS if last is None else last  # unknown: assume a backlog
        df.persist()
        t0 = time.perf_counter()
        try:
            seen = Observation(f"batch-{batch_id}")
            good = F.col("reason").isNull()
            kind = F.col("event")["event_type"]
            valid = good & (kind == event_type)
            counted = df.observe(seen, F.count_if(good).alias("ok"), F.count_if(~good).alias("bad"),
                                 F.count_if(F.col("future_dated")).alias("future"),
                                 F.unix_micros(F.max(F.when(good, F.col("arrival")))).alias("newest"),
                                 *[F.count_if(good & (kind == k)).alias(k) for k in others])
            last = status.doc.get("input_rows")  # the last batch's size predicts this one's
            expected = SMALL_BATCH_ROWS if last is None else last  # unknown: assume a backlog
            summary_written = beside.submit(summary.write, transforms.SUMMARIZE[event_type](df.filter(valid)),
                                            run, batch_id, expected, summary_parts.locate, retry)
            try:
                days = table.write(transforms.FLATTEN[event_type](counted.filter(valid)), run, batch_id, expected,
                                   table_parts.locate, retry)
            finally:
                wait([summary_written])  # never leave it running into the next batch, or past a failure
            days |= summary_written.result()
            counts = seen.get
            # for the next batch, whose parse-and-validate stage Spark plans and compiles before it
            # calls this function: the next batch is likely to be the size of this one
            generated_code(df.sparkSession, counts["ok"] + counts["bad"] >= CODEGEN_ROWS)
            for other, (writer, parts) in others.items():  # only when the batch holds some
                if counts[other]:
                    days |= writer.write(transforms.FLATTEN[other](df.filter(good & (kind == other))), run,
                                         batch_id, counts[other], parts.locate, retry)
                elif retry:
                    writer.remove(run, batch_id=batch_id)
            # the minutes of the economy: from the same rows, in the same batch and commit
            if counts["ok"]:
                sides = transforms.SUMMARIZE[event_type](df.filter(valid))
                if event_type == TRADE:
                    offers = (transforms.FLATTEN[OFFER](df.filter(good & (kind == OFFER)))
                              if counts.get(OFFER) else None)
                    deltas = transforms.economy_of_trades(sides, offers)
                else:
                    deltas = transforms.economy_of_states(sides)
                days |= economy[0].write(deltas, run, batch_id, 0, economy[1].locate, retry)
            elif retry:
                economy[0].remove(run, batch_id=batch_id)
            t1 = time.perf_counter()
            if counts["bad"]:
                bad = transforms.quarantine_rows(df.filter(~good), sink).drop("source")
                quarantine.write(bad, run, batch_id, counts["bad"], quarantine_parts.locate, retry)
            elif retry:
                quarantine.remove(run, batch_id=batch_id)
            # a compaction swapped (or is swapping) a partition while the batch was written: its files
            # that went to the old folder follow the partition to the new one
            changed = generation.changed()
            for writer, parts in pairs:
                if changed:
                    parts.forget(fs)
                if changed or parts.touches(set(writer.placed)):
                    writer.follow(parts.locate)
            # the commit point: from here on the batch is never written again, and compaction may fold it
            log.record(run, batch_id, settings.topic, commits.checkpoint_offsets(fs, checkpoint, batch_id)[settings.topic])
            ran["last"] = batch_id
            today = datetime.now(timezone.utc).date().isoformat()
            for (day,) in days:  # a closed day written again: Dagster's sensor compacts it again
                if day < today:
                    counters["late_days"][day] = counters["late_days"].get(day, 0) + 1
            counters["events_written"] += counts["ok"]
            counters["quarantined"] += counts["bad"]
            counters["future_dated"] += counts["future"]
            counters["batches"] += 1
            sink_metrics.committed(sink, counts["ok"], counts["bad"],
                                   None if counts["newest"] is None else counts["newest"] / 1e6)
            counters["last_write_ms"] = {"tables": round((t1 - t0) * 1000),
                                         "quarantine": round((time.perf_counter() - t1) * 1000)}
        finally:
            df.unpersist()

    reader = (spark.readStream.format("kafka")
              .option("kafka.bootstrap.servers", settings.kafka_bootstrap)
              .option("subscribe", settings.topic)
              .option("startingOffsets", starting)
              .option("failOnDataLoss", "true")
              # a batch reads only offsets known to exist, so never let the broker hold a fetch back
              .option("kafka.fetch.max.wait.ms", "10")
              .options(**settings.kafka_login().spark_options()))  # the sinks' principal: READ on the topic
    if settings.sink_max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", settings.sink_max_offsets_per_trigger)
    # the dedup watermark follows the broker's time bounded by the sink's clock, never a record's own
    # claim (a host ahead, a forged timestamp): no valid event is ever late, nothing is dropped
    events = (transforms.classify(reader.load(), (event_type, *others), owns_unknown=sink == OWNS_UNKNOWN)
              .transform(transforms.timed, settings.sink_dedup_window, settings.sink_max_clock_skew)
              .withWatermark("watermark_ts", settings.sink_dedup_window)
              .dropDuplicatesWithinWatermark(["dedup_key"])
              .transform(transforms.for_writers))
    query = (events.writeStream.queryName(f"bazaar-{sink}")
             .foreachBatch(write_batch)
             .option("checkpointLocation", f"{settings.checkpoint_uri}/{sink}")
             .trigger(processingTime=f"{settings.sink_trigger_seconds} seconds")
             .start())
    return query, status


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sink", choices=sorted(SINKS), required=True)
    parser.add_argument("--status-file", type=Path, required=True)
    args = parser.parse_args(argv)
    settings = SinkSettings()
    StatusFile(args.status_file, {})._write({"state": "starting"})  # before Spark's minute of start-up
    sink_metrics.serve(args.sink, settings.spark_driver_host, settings.sink_metrics_port)
    spark = build_session(settings, f"bazaar-{args.sink}-sink")
    spark.sparkContext.setLogLevel("WARN")
    StatusFile(args.status_file, {})._write({"state": "starting"})  # still: tables and the query next
    stop_request = stop_request_path(args.status_file)
    stop_request.unlink(missing_ok=True)  # asked of the driver before this one
    query, status = start(spark, settings, args.sink, args.status_file)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    beat_at = 0.0
    while not stopping and query.isActive:
        query.awaitTermination(1)
        if stop_request.exists():  # asked by a launcher that cannot signal it (`service`)
            stop_request.unlink(missing_ok=True)
            break
        if time.monotonic() - beat_at >= HEARTBEAT_S:
            status.beat(bool(query.status.get("isTriggerActive")))
            beat_at = time.monotonic()
    if query.isActive:
        # a stop that hangs (a stuck batch) ends the process anyway: its launcher or service manager
        # starts it again, and the checkpoint has everything
        deadline = threading.Timer(STOP_TIMEOUT_S, os._exit, (1,))
        deadline.daemon = True
        deadline.start()
        query.stop()  # a clean stop between batches
        deadline.cancel()
    if query.exception():
        raise SystemExit(f"sink {args.sink} failed: {query.exception()}")
    spark.stop()


if __name__ == "__main__":
    main()
