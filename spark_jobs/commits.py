"""What the warehouse itself records of a sink's progress: the last batch each run of the sink
committed to its tables, and the Kafka offsets that batch ended at.

A sink's batch is committed when every table's files of the batch are in place and its record
is written (`record`): from then on a retry of the batch writes nothing, and compaction may fold
its files.  When a sink's checkpoint is lost, it resumes from the newest record instead of the
topic's start (`latest`), after deleting what its earlier run left of batches it never committed.

    <warehouse>/_commits/<sink>/<run>/<batch:012d>.json   {"run", "batch_id", "topic", "offsets", "committed_at"}

Only a run's newest record is kept (a run's batches commit in order, so it covers the ones before).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Optional

from spark_jobs import layout
from spark_jobs.hadoop import HadoopFs


@dataclass(frozen=True)
class Commit:
    run: str
    batch_id: int
    topic: str
    offsets: dict[str, int]  # Kafka partition (as text) -> the next offset to read
    committed_at: float


def checkpoint_offsets(fs: HadoopFs, checkpoint: str, batch_id: int) -> dict:
    """The end offsets Structured Streaming planned for a batch ({topic: {partition: offset}}),
    from its offset log (`offsets/<batch>`: a version line, the batch's metadata, a line per source)."""
    lines = fs.read(f"{checkpoint}/offsets/{batch_id}").splitlines()
    return json.loads(lines[2])


def checkpoint_run(fs: HadoopFs, checkpoint: str) -> Optional[str]:
    """The run a checkpoint belongs to (its query id), None when there is no checkpoint."""
    meta = f"{checkpoint}/metadata"
    return layout.run_name(json.loads(fs.read(meta))["id"]) if fs.exists(meta) else None


def has_progress(fs: HadoopFs, checkpoint: str) -> bool:
    """Whether a checkpoint has planned any batch (else a query starts from its starting offsets)."""
    return any(not d and n.isdigit() for n, d, _ in fs.list(f"{checkpoint}/offsets"))


class CommitLog:
    def __init__(self, fs: HadoopFs, warehouse: str, sink: str):
        self.fs, self.root = fs, layout.commits_root(warehouse, sink)
        self._kept: dict[str, list[int]] = {}  # run -> its records on disk, once listed (the writer's run)

    def _batches(self, run: str) -> list[int]:
        return sorted(int(n[:-5]) for n, d, _ in self.fs.list(f"{self.root}/{run}")
                      if not d and n.endswith(".json") and n[:-5].isdigit())

    def high_water(self) -> dict[str, int]:
        """run -> the last batch it committed, for every run of the sink."""
        out = {}
        for run, is_dir, _ in self.fs.list(self.root):
            if is_dir and (batches := self._batches(run)):
                out[run] = batches[-1]
        return out

    def committed(self, run: str, batch_id: int) -> bool:
        batches = self._batches(run)
        return bool(batches) and batch_id <= batches[-1]

    def read(self, run: str, batch_id: int) -> Commit:
        doc = json.loads(self.fs.read(f"{self.root}/{run}/{batch_id:012d}.json"))
        return Commit(doc["run"], doc["batch_id"], doc["topic"], {k: int(v) for k, v in doc["offsets"].items()},
                      doc["committed_at"])

    def record(self, run: str, batch_id: int, topic: str, offsets: dict[str, int]) -> None:
        """The batch is committed: its record written whole, then the run's older records removed."""
        doc = {"run": run, "batch_id": batch_id, "topic": topic, "offsets": offsets, "committed_at": time.time()}
        self.fs.mkdirs(f"{self.root}/{run}")
        self.fs.write(f"{self.root}/{run}/{batch_id:012d}.json", json.dumps(doc, sort_keys=True))
        kept = self._kept[run] if run in self._kept else self._batches(run)
        for older in kept:
            if older < batch_id:
                self.fs.delete(f"{self.root}/{run}/{older:012d}.json")
        self._kept[run] = [b for b in kept if b > batch_id] + [batch_id]

    def latest(self) -> Optional[Commit]:
        """The newest commit of any run: where a sink whose checkpoint is lost resumes."""
        commits = [self.read(run, batch) for run, batch in self.high_water().items()]
        return max(commits, key=lambda c: c.committed_at, default=None)
