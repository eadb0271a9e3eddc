"""How the warehouse ages, on real services (Kafka, the two sinks, the metastore, Trino, and the
compaction job as Dagster launches it): compaction keeps every row once and leaves few files,
even when killed at any of its steps; late events land after a day was compacted and the next
compaction folds them in; a sink whose checkpoint is lost resumes without loss or duplication;
retention drops the days a table no longer keeps. Every table is reconciled by id with what the
engine answered (`tests.pipeline.reconcile`)."""

import random
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlparse

import pytest
from kafka import KafkaProducer

from bazaar.stack import SinkService
from bazaar.stack.sink_drivers import launcher_settings
from engine import events
from engine.events import TradeSide
from orchestration import compaction, warehouse
from spark_jobs import layout
from spark_jobs.settings import WarehouseSettings
from tests.pipeline import played_ledger, pipeline_stack, reconcile, running_pipeline, wait_for

STEPS = ("journaled", "written", "swapped", "moved", "cleanup")  # spark_jobs.compact's failpoints, in order
TABLES = ("trades", "trade_sides", "player_states", "state_summaries")  # what the ledger's play fills


def today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


@pytest.fixture(scope="module")
def pipeline(stack, tmp_path_factory, redis_service, kafka_service, metastore_service, trino_service):
    # small batches, so a backlog makes many files
    s = pipeline_stack(stack, tmp_path_factory.mktemp("aging"), sink_max_offsets_per_trigger=200)
    with running_pipeline(s):
        yield s


@pytest.fixture(scope="module")
def ledger(pipeline):
    return played_ledger(pipeline, players=20, trades=200, seed=31)


def compact(s, *args, failpoint=None, monkeypatch=None, **opts) -> list[dict]:
    """The compaction job (`--day D` or `--retention`) as Dagster's asset runs it, grace 0 unless said."""
    if failpoint:
        monkeypatch.setenv("BAZAAR_FAILPOINT", f"compact:{failpoint}")
    try:
        return compaction.run(launcher_settings(s), WarehouseSettings(**{"compact_grace_s": 0, **opts}), list(args))
    finally:
        if failpoint:
            monkeypatch.delenv("BAZAAR_FAILPOINT")


def files(s, day, tables=TABLES) -> dict[str, int]:
    return warehouse.day_layout(s.trino, list(tables), day).files.to_dict()


def folder(s, *parts) -> Path:
    return Path(urlparse(s.sinks.warehouse_uri).path).joinpath(*parts)


def produce_gifts(s, ledger, when: datetime, n: int) -> None:
    """`n` valid trade events dated `when` straight to Kafka (as an engine host whose events arrive
    late), added to the ledger as the trades they are: one gold given, nothing back."""
    a, b = (st["player_id"] for st in ledger.states[:2])
    producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap, **s.kafka_login().kafka_python(), acks="all")
    for _ in range(n):
        event = events.trade_event(events.new_id(), events.utc_iso(when), None,
                                   TradeSide(player_id=a, items_traded=[], gold_traded=1),
                                   TradeSide(player_id=b, items_traded=[], gold_traded=0))
        producer.send(s.topic.topic, key=b"late", value=event.model_dump_json().encode()).get(timeout=30)
        ledger.trades.append(({"player_1": {"player_id": a, "gold_traded": 1, "items_traded": []},
                               "player_2": {"player_id": b, "gold_traded": 0, "items_traded": []}},
                              {"trade_id": event.trade_id, "status": "executed"}))
    producer.close()


def test_compaction_killed_at_any_step_leaves_every_row_once_and_then_few_files(pipeline, ledger, monkeypatch):
    """Killed at each step in turn while the sinks go on writing (between runs), then run whole."""
    before = files(pipeline, today())
    assert min(before.values()) >= 2  # the ledger's play landed in several batches
    for n, step in enumerate(STEPS):
        with pytest.raises(RuntimeError, match="exited"):
            compact(pipeline, "--day", today(), failpoint=step, monkeypatch=monkeypatch)
        reconcile(pipeline, ledger)  # killed at `step`: readers see every row once
        ledger.trade(40, random.Random(40 + n))  # landing after it, where the metastore now points
        reconcile(pipeline, ledger)
    grown = files(pipeline, today())
    outcomes = compact(pipeline, "--day", today())  # finishes the last one, and compacts
    reconcile(pipeline, ledger)
    assert files(pipeline, today()) == {t: 1 for t in TABLES}
    done = {o["table"]: o for o in outcomes if o["action"] == "compacted"}
    assert {t: done[t]["files_before"] for t in TABLES} == grown
    assert not any(folder(pipeline, "_compaction").rglob("*.json"))  # nothing left half done
    kept = list(folder(pipeline, "trades", layout.COMPACTED, f"dt={today()}").iterdir())
    assert len(kept) == 1 and not folder(pipeline, "trades", f"dt={today()}").exists()


def test_late_events_land_after_a_compaction_and_the_next_folds_them_in(pipeline, ledger):
    yesterday = datetime.now(timezone.utc) - timedelta(days=1)
    day = yesterday.date().isoformat()
    produce_gifts(pipeline, ledger, yesterday, 5)
    reconcile(pipeline, ledger)
    compact(pipeline, "--day", day)
    assert files(pipeline, day, ["trades", "trade_sides"]) == {"trades": 1, "trade_sides": 1}
    produce_gifts(pipeline, ledger, yesterday, 5)  # after the day was compacted
    reconcile(pipeline, ledger)  # landed, and read: in the folder the metastore points at
    wait_for(pipeline, f"select count(*) from trades where dt = '{day}'", [[20]])
    assert files(pipeline, day, ["trades"])["trades"] >= 2
    late = SinkService(pipeline, "trades").progress().get("late_days", {})
    assert late.get(day, 0) >= 1  # what Dagster's sensor reads to compact the day again
    compact(pipeline, "--day", day)
    reconcile(pipeline, ledger)
    assert files(pipeline, day, ["trades", "trade_sides"]) == {"trades": 1, "trade_sides": 1}


def test_retention_drops_the_days_a_table_no_longer_keeps(pipeline, ledger):
    old = datetime.now(timezone.utc) - timedelta(days=40)
    kept = list(ledger.trades)
    produce_gifts(pipeline, ledger, old, 3)
    reconcile(pipeline, ledger)
    outcomes = compact(pipeline, "--retention", retention_days={"trades": 30, "trade_sides": 30})
    dropped = sorted((o["table"], o["partition"]) for o in outcomes)
    assert dropped == [("trade_sides", f"dt={old.date().isoformat()}"), ("trades", f"dt={old.date().isoformat()}")]
    ledger.trades[:] = kept
    reconcile(pipeline, ledger)  # the 40-day-old trades gone, every other row still there
    assert not folder(pipeline, "trades", f"dt={old.date().isoformat()}").exists()


def test_a_sink_whose_checkpoint_is_lost_resumes_without_loss_or_duplication(pipeline, ledger):
    sink = SinkService(pipeline, "trades")
    ledger.trade(600, random.Random(51))  # a backlog of several batches
    wait_for(pipeline, "select count(*) > 0 from trades where trade_id = "
                       f"'{ledger.trades[-600][1]['trade_id']}'", [[True]])
    sink.kill()
    shutil.rmtree(Path(urlparse(pipeline.sinks.checkpoint_uri).path) / "trades")
    sink.start()
    ledger.trade(30, random.Random(52))
    reconcile(pipeline, ledger)
    assert "resuming after batch" in sink.log_tail(400)
