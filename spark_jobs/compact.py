"""Compaction and retention of the warehouse's day partitions: a Spark job Dagster launches.

    spark-submit spark_jobs/compact.py --day 2026-12-06 [--day ...] [--table trades ...] --report F
    spark-submit spark_jobs/compact.py --retention --today 2026-12-07 --report F

(`spark_jobs.launch.SparkJob` builds the command; settings are `SinkSettings` and `WarehouseSettings`.)

A sink lands a file per table per micro-batch; compaction rewrites each day of each table into
few large Parquet files, sorted by what the reports filter and join on, and swaps them in for
readers in one metastore call.  For one partition:

1. finish what an earlier compaction of it left (its journal): roll back a swap not made, or,
   once the grace period has passed, move what landed late in the old folder and delete it;
2. list the partition's folder; keep the files of committed batches (`spark_jobs.commits`) and
   earlier compacted files: a batch not committed yet may still be retried by its sink;
3. write the journal (old folder, new folder, the files read), then the new folder;
4. copy into the new folder what landed in the old one since the listing, once committed; point
   the metastore's partition at the new folder (atomic for readers); move what landed meanwhile;
   mark the journal swapped; once every partition is swapped, touch the generation file (the sinks,
   which look up a day in flux on every batch, stop doing so);
5. after the grace period (`BAZAAR_COMPACT_GRACE_S`), so that queries already running finish on
   the old files, move what landed late once more and delete the old folder (step 1 of a later run).

Killed at any step, the table holds every row exactly once, and the next run completes or rolls
back.  Retention drops partitions older than each table's setting from the metastore, then
deletes their folders.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from pyspark.sql import Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_jobs import layout
from spark_jobs.commits import CommitLog
from spark_jobs.hadoop import HadoopFs
from spark_jobs.partitions import Generation, Partitions
from spark_jobs.session import build_session
from spark_jobs.settings import SinkSettings, WarehouseSettings

SETTLE_S = 5.0
COMMIT_WAIT_S = 10.0  # after a swap, a batch that found the old folder just before it lands within this


def failpoint(step: str) -> None:
    """A SIGKILL of this process at a named step when `BAZAAR_FAILPOINT` names it (the tests kill
    compaction at each step this way)."""
    if os.environ.get("BAZAAR_FAILPOINT") == f"compact:{step}":
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Outcome:
    table: str
    partition: str
    action: str  # compacted, already compact, no partition, waiting (an earlier swap's grace), dropped
    files_before: int = 0
    files_after: int = 0
    rows: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


class Compactor:
    def __init__(self, spark: SparkSession, settings: SinkSettings, warehouse: WarehouseSettings):
        self.spark, self.settings, self.opts = spark, settings, warehouse
        self.wh = settings.warehouse_uri
        self.fs = HadoopFs(spark, self.wh)
        self.generation = Generation(self.fs, self.wh)
        self.parts = {t: Partitions(spark, settings, t) for t in layout.TABLES}
        self._high_water: dict[str, dict[str, int]] = {}

    def high_water(self, sink: str) -> dict[str, int]:
        if sink not in self._high_water:
            self._high_water[sink] = CommitLog(self.fs, self.wh, sink).high_water()
        return self._high_water[sink]

    def data_files(self, folder: str) -> list[tuple[str, int]]:
        return sorted((n, size) for n, d, size in self.fs.list(folder) if not d and layout.is_data_file(n))

    def same(self, a: str, b: str) -> bool:
        return self.fs.qualified(a) == self.fs.qualified(b)

    def move_late(self, journal: dict) -> int:
        """Files in the old folder that the compaction did not read (landed after its listing) moved
        into the new one; those copied there before the swap only removed from the old."""
        read, there, moved = set(journal["inputs"]), {n for n, _ in self.data_files(journal["new"])}, 0
        for name, _ in self.data_files(journal["old"]):
            if name in read:
                continue
            if name in there:
                self.fs.delete(f"{journal['old']}/{name}")
            else:  # a sink's `follow` may move the same file at the same moment: either is fine
                moved += self.fs.move(f"{journal['old']}/{name}", f"{journal['new']}/{name}")
        return moved

    def copy_committed_late(self, sink: str, journal: dict) -> list[str]:
        """Right before the swap: what landed in the old folder since its listing, copied into the new one
        once committed (a batch in flight commits within moments; waited for up to `COMMIT_WAIT_S`), so
        the swap shows readers every row the old folder showed. A committed batch is never written
        again, so its copy can never be doubled by a retry. Returns what is still uncommitted."""
        read, deadline = set(journal["inputs"]), time.monotonic() + COMMIT_WAIT_S
        while True:
            high_water = CommitLog(self.fs, self.wh, sink).high_water()
            late = [n for n, _ in self.data_files(journal["old"]) if n not in read]
            pending = [n for n in late if not layout.committed(n, high_water)]
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        there = {n for n, _ in self.data_files(journal["new"])}
        for name in late:
            if name not in pending and name not in there:
                self.fs.copy(f"{journal['old']}/{name}", f"{journal['new']}/{name}")
        return pending

    def finish(self, table: str, spec: dict[str, str]) -> str | None:
        """Complete or roll back what an earlier compaction of the partition left; None when nothing
        is left, else why the partition must wait."""
        path = layout.journal_path(self.wh, table, spec)
        if not self.fs.exists(path):
            return None
        journal = json.loads(self.fs.read(path))
        if tuple(spec.values()) not in self.parts[table].known:  # dropped by retention since
            self.fs.delete(journal["new"], True)
            self.fs.delete(path)
            return None
        where = self.parts[table].location(spec)
        if self.same(where, journal["old"]):  # never swapped: the new folder was never read
            # pointed at the old folder again, in case the killed run's own call lands late
            self.parts[table].move(spec, journal["old"])
            self.fs.delete(journal["new"], True)
            self.fs.delete(path)
            self.generation.touch()  # the partition is no longer in flux for the sinks
            return None
        if not self.same(where, journal["new"]):
            raise RuntimeError(f"{table} {spec}: the metastore points at {where}, neither the old nor the new "
                               f"folder of the compaction journaled in {path}; move it by hand, then delete it")
        if "swapped_at" not in journal:  # killed right after the swap
            self.move_late(journal)
            journal["swapped_at"] = time.time()
            self.fs.write(path, json.dumps(journal))
            self.generation.touch()
        self.move_late(journal)
        if time.time() - journal["swapped_at"] < self.opts.compact_grace_s:
            return f"the old folder waits out its grace period ({self.opts.compact_grace_s:.0f}s)"
        failpoint("cleanup")
        self.move_late(journal)
        self.fs.delete(journal["old"], True)
        self.fs.delete(path)
        return None

    def plan(self, table: str, spec: dict[str, str]) -> tuple[Outcome, dict | None]:
        """Step 1 to 3 up to the rewrite: finish what an earlier run left, list the folder, write the
        journal. Returns the outcome so far and the journal (None: nothing to rewrite)."""
        out = Outcome(table, layout.partition_path(spec), "compacted")
        waiting = self.finish(table, spec)
        if waiting:
            out.action, out.notes = "waiting", [waiting]
            return out, None
        old = self.parts[table].location(spec)
        files = self.data_files(old)
        sink = spec.get("source") or layout.OWNER[table]
        inputs = [(n, size) for n, size in files if layout.committed(n, self.high_water(sink))]
        out.files_before, out.bytes_before = len(files), sum(size for _, size in files)
        want = max(1, math.ceil(sum(size for _, size in inputs) / (self.opts.compact_target_file_mb << 20)))
        if not inputs or (len(inputs) <= want and all(layout.parse_batch_file(n) is None for n, _ in inputs)):
            out.action, out.files_after, out.bytes_after = "already compact", len(files), out.bytes_before
            return out, None
        generation = datetime.now(timezone.utc).strftime("c%Y%m%dT%H%M%S%f")
        journal = {"table": table, "spec": spec, "sink": sink, "old": old, "files": want,
                   "new": layout.compacted_location(self.wh, table, spec, generation),
                   "inputs": [n for n, _ in inputs], "started_at": time.time()}
        path = layout.journal_path(self.wh, table, spec)
        self.fs.mkdirs(path.rsplit("/", 1)[0])
        self.fs.write(path, json.dumps(journal))
        return out, journal

    def swap(self, out: Outcome, journal: dict) -> None:
        """Step 4: the metastore's partition pointed at the new folder, once what landed since the
        listing is copied there; then what landed meanwhile moved, and the journal marked swapped."""
        table, spec = journal["table"], journal["spec"]
        pending = self.copy_committed_late(journal["sink"], journal)
        if pending:  # a batch still in flight follows the partition (`writer.follow`); the cleanup moves the rest
            out.notes.append(f"{len(pending)} files of uncommitted batches left to their sink or the cleanup")
        self.parts[table].move(spec, journal["new"])
        failpoint("swapped")
        self.move_late(journal)
        failpoint("moved")
        journal["swapped_at"] = time.time()
        self.fs.write(layout.journal_path(self.wh, table, spec), json.dumps(journal))

    def rewrite(self, journal: dict, schema: T.StructType) -> int:
        """The inputs' rows into the journal's count of files in its new folder, sorted within each;
        returns the rows."""
        rows = Observation(f"compact-{journal['table']}-{journal['new'].rsplit('/', 1)[1]}")
        frame = self.spark.read.schema(schema).parquet(*[f"{journal['old']}/{n}" for n in journal["inputs"]])
        (frame.observe(rows, F.count(F.lit(1)).alias("n")).coalesce(journal["files"])
         .sortWithinPartitions(*layout.SORT_BY[journal["table"]])
         .write.mode("errorifexists").parquet(journal["new"]))
        failpoint("written")
        return int(rows.get["n"])

    def schema(self, table: str) -> T.StructType:
        """The table's columns less its partition columns: what its files hold (a column added since a
        file was written reads as null)."""
        columns = set(layout.PARTITION_COLUMNS[table])
        fields = self.spark.table(f"{self.settings.database}.{table}").schema.fields
        return T.StructType([f for f in fields if f.name not in columns])

    def finish_all(self) -> list[Outcome]:
        """Complete what every earlier compaction left whose grace period has passed."""
        done = []
        for table in layout.TABLES:
            for name, is_dir, _ in self.fs.list(f"{self.wh}/_compaction/{table}"):
                if not is_dir and name.endswith(".json") and not name.startswith("."):
                    spec = dict(kv.split("=", 1) for kv in name[:-5].split(","))
                    why = self.finish(table, spec)
                    done.append(Outcome(table, layout.partition_path(spec), "waiting" if why else "cleaned up",
                                        notes=[why] if why else []))
        return done

    def run(self, days: list[str], tables: list[str]) -> list[Outcome]:
        """Compact every partition of `tables` on `days`: the metastore calls and the swaps one partition
        after another, the rewrites (Spark jobs) `compact_parallelism` at once."""
        for sink in layout.SINK_TABLES:
            self.high_water(sink)  # read once: a batch committed later is compacted next time
        done = self.finish_all()
        planned = [self.plan(t, spec) for t in tables for spec in self.parts[t].specs() if spec["dt"] in days]
        work = [(out, journal) for out, journal in planned if journal]
        if work:
            self.generation.touch()  # the sinks look these partitions up on every batch until they are swapped
        failpoint("journaled")
        schemas = {t: self.schema(t) for t in {j["table"] for _, j in work}}
        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=self.opts.compact_parallelism) as pool:
            rows = list(pool.map(lambda job: self.rewrite(job[1], schemas[job[1]["table"]]), work))
        for (out, journal), n in zip(work, rows):
            out.rows = n
            self.swap(out, journal)
        if work:
            self.generation.touch()
            time.sleep(SETTLE_S)  # a batch that found an old folder lands, and follows its partition
        for out, journal in work:
            self.finish(journal["table"], journal["spec"])  # the old folder goes now only if the grace is zero
            after = self.data_files(journal["new"])
            out.files_after, out.bytes_after = len(after), sum(size for _, size in after)
            out.seconds = round((time.monotonic() - t0) / len(work), 2)
        return done + [out for out, _ in planned]

    def retention(self, today: date) -> list[Outcome]:
        """Drop each table's partitions older than its retention, then delete their folders."""
        done = []
        for table in layout.TABLES:
            keep = self.opts.retention_for(table)
            if keep is None:
                continue
            cutoff = (today - timedelta(days=keep)).isoformat()
            for spec in self.parts[table].specs():
                if spec["dt"] < cutoff:
                    self.parts[table].drop(spec)
                    done.append(Outcome(table, layout.partition_path(spec), "dropped"))
            if done:
                self.generation.touch()
            self.delete_folders_before(table, cutoff)
            for name, is_dir, _ in self.fs.list(layout.journal_path(self.wh, table, {}).rsplit("/", 1)[0]):
                spec = dict(kv.split("=", 1) for kv in name[:-5].split(",")) if name.endswith(".json") else {}
                if not is_dir and spec.get("dt", cutoff) < cutoff:  # a compaction of a day now dropped
                    self.finish(table, spec)
        return done

    def delete_folders_before(self, table: str, cutoff: str) -> None:
        """Every folder of a day before `cutoff`, as made and as compacted (also of a drop cut short)."""
        for top in (f"{self.wh}/{table}", f"{self.wh}/{table}/{layout.COMPACTED}"):
            prefixes = [""]
            if table == "quarantine":
                prefixes = [f"/{n}" for n, d, _ in self.fs.list(top) if d and n.startswith("source=")]
            for prefix in prefixes:
                for n, d, _ in self.fs.list(top + prefix):
                    if d and n.startswith("dt=") and n[3:] < cutoff:
                        self.fs.delete(f"{top}{prefix}/{n}", True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day", action="append", default=[], help="a UTC day, YYYY-MM-DD (repeatable)")
    parser.add_argument("--table", action="append", choices=layout.TABLES, help="only these tables (repeatable)")
    parser.add_argument("--retention", action="store_true", help="drop the days retention no longer keeps")
    parser.add_argument("--today", type=date.fromisoformat, default=None, help="retention's today (UTC)")
    parser.add_argument("--report", type=Path, required=True, help="where to write the outcome, as JSON")
    args = parser.parse_args(argv)
    for day in args.day:
        date.fromisoformat(day)  # a clear error before Spark starts
    settings, opts = SinkSettings(), WarehouseSettings()
    spark = build_session(settings, "bazaar-compaction" if not args.retention else "bazaar-retention")
    spark.sparkContext.setLogLevel("WARN")
    try:
        job = Compactor(spark, settings, opts)
        if args.retention:
            outcomes = job.retention(args.today or datetime.now(timezone.utc).date())
        else:
            outcomes = job.run(args.day, args.table or list(layout.TABLES))
    finally:
        spark.stop()
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps([asdict(o) for o in outcomes], indent=1))
    for o in outcomes:
        print(f"{o.table} {o.partition}: {o.action}, files {o.files_before} -> {o.files_after}, {o.rows} rows"
              + "".join(f"; {n}" for n in o.notes), flush=True)


if __name__ == "__main__":
    main()
