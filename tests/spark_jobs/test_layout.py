"""The warehouse's names and rules as pure functions: which files compaction may fold, where a
batch's files may be, what retention keeps."""

import pytest

from spark_jobs import layout
from spark_jobs.settings import WarehouseSettings

RUN = "0123456789abcdef0123456789abcdef"
OTHER = "fedcba9876543210fedcba9876543210"


def test_a_batch_file_names_its_run_and_batch():
    name = layout.batch_file(RUN, 42, 3)
    assert name == f"batch-{RUN}-000000000042-00003.parquet"
    assert layout.parse_batch_file(name) == (RUN, 42)
    assert layout.parse_batch_file("batch-000000000042-00003.parquet") == (None, 42)  # before runs were named
    assert layout.parse_batch_file("part-00000-1b2c-c000.snappy.parquet") is None
    assert layout.run_name("01234567-89ab-cdef-0123-456789ABCDEF") == RUN
    with pytest.raises(ValueError):
        layout.run_name("not-a-query-id")


def test_only_committed_batches_and_compacted_files_are_folded():
    high_water = {RUN: 7}
    assert layout.committed(layout.batch_file(RUN, 7, 0), high_water)
    assert layout.committed(layout.batch_file(RUN, 3, 1), high_water)
    assert not layout.committed(layout.batch_file(RUN, 8, 0), high_water)  # in flight, or to be retried
    assert not layout.committed(layout.batch_file(OTHER, 1, 0), high_water)  # a run that committed nothing
    assert layout.committed("part-00000-1b2c-c000.snappy.parquet", high_water)
    assert layout.committed("batch-000000000099-00000.parquet", high_water)


def test_a_runs_batch_is_looked_for_where_it_was_made_and_where_compaction_moved_it():
    got = layout.batch_globs("hdfs://nn/wh", "quarantine", {"source": "trades"}, RUN, 5)
    name = f"batch-{RUN}-000000000005-*.parquet"
    assert got == [f"hdfs://nn/wh/quarantine/source=trades/*/{name}",
                   f"hdfs://nn/wh/quarantine/compacted/source=trades/*/*/{name}"]
    spec = {"source": "trades", "dt": "2026-12-01"}
    assert layout.default_location("w", "quarantine", spec) == "w/quarantine/source=trades/dt=2026-12-01"
    assert layout.compacted_location("w", "quarantine", spec, "c1") == "w/quarantine/compacted/source=trades/dt=2026-12-01/c1"
    assert layout.journal_path("w", "quarantine", spec) == "w/_compaction/quarantine/source=trades,dt=2026-12-01.json"


def test_retention_keeps_every_day_unless_told_and_quarantine_thirty():
    default = WarehouseSettings()
    assert [default.retention_for(t) for t in layout.TABLES] == [None] * (len(layout.TABLES) - 1) + [30]
    told = WarehouseSettings(retention_days={"trades": 400}, quarantine_retention_days=0)
    assert told.retention_for("trades") == 400 and told.retention_for("quarantine") is None
    assert told.retention_for("offers") is None


def test_the_warehouse_job_is_given_no_secret(tmp_path, monkeypatch):
    """Compaction reads no topic and queries no Trino: neither the sinks' Kafka password nor any secret
    of the Dagster run that launches it reaches its environment."""
    import subprocess

    from orchestration import compaction
    from spark_jobs.launch import warehouse_job
    from spark_jobs.settings import LauncherSettings, WarehouseSettings

    s = LauncherSettings(warehouse_uri=tmp_path.as_uri(), checkpoint_uri=tmp_path.as_uri(), sink_home=tmp_path,
                         sink_kafka_password="kafka-sinks-secret-1")
    _, env = warehouse_job(s, WarehouseSettings(), [])
    assert "BAZAAR_SINK_KAFKA_PASSWORD" not in env and "kafka-sinks-secret-1" not in env.values()
    assert env["BAZAAR_WAREHOUSE_URI"] == tmp_path.as_uri()
    for name in ("BAZAAR_KAFKA_ADMIN_PASSWORD", "BAZAAR_REDIS_PASSWORD", "BAZAAR_TRINO_OWNER_PASSWORD",
                 "BAZAAR_TOKEN_SECRET"):
        monkeypatch.setenv(name, "a-secret-of-the-run")
    monkeypatch.setenv("BAZAAR_FAILPOINT", "compact:none")  # a test's failpoint still reaches the job
    seen = {}

    def run(command, env, **kwargs):
        seen.update(env)
        return subprocess.CompletedProcess(command, 1, "", "stopped here")

    monkeypatch.setattr(compaction.subprocess, "run", run)
    with pytest.raises(RuntimeError, match="stopped here"):
        compaction.run(s, WarehouseSettings(), ["--retention"])
    assert "a-secret-of-the-run" not in seen.values() and seen["BAZAAR_FAILPOINT"] == "compact:none"
    assert seen["BAZAAR_WAREHOUSE_URI"] == tmp_path.as_uri()
