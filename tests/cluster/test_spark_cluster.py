"""The cluster profile's sinks: drivers as services of their own in client mode against a Spark
standalone master, executors on its worker, over three Kafka brokers.  While trades flow, one
broker, then the Spark worker, then one sink's driver are killed (SIGKILL): every event the engine
appended lands exactly once in the tables, and the engine answers every trade throughout.

Real processes throughout (`tests/cluster/conftest.py`); the tables are read from the warehouse's
Parquet files on HDFS as the Hive tables over them hold them."""

from __future__ import annotations

import getpass
import os
import random
import signal
import threading
import time
from collections import Counter
from urllib.parse import urlparse

import fsspec
import pyarrow.dataset as ds
import pytest
import requests
from pyarrow.fs import FSSpecHandler, PyFileSystem

from bazaar.stack import SparkWorkerService
from bazaar.stack.api_key import ensure_stack_key
from bazaar.stack.kafka_broker import brokers
from bazaar.stack.sink_drivers import sink_services
from engine.db import make_redis
from spark_jobs.launch import ServiceSinkLauncher, launcher_for

pytestmark = pytest.mark.cluster


def table(stack, name: str, columns: list[str]) -> dict[str, list]:
    """The table's Parquet files on HDFS, read over WebHDFS (the namenode's web port)."""
    assert stack.sinks.warehouse_uri.startswith("hdfs://")
    fs = fsspec.filesystem("webhdfs", host=stack.host, port=stack.local.hdfs_http_port, user=getpass.getuser())
    root = f"{urlparse(stack.sinks.warehouse_uri).path}/{name}"
    if not fs.exists(root):
        return {c: [] for c in columns}
    for attempt in range(5):
        dataset = ds.dataset(root, filesystem=PyFileSystem(FSSpecHandler(fs)), format="parquet", partitioning="hive")
        if not dataset.files:  # the metastore makes the table's folder; its first batch may not have landed yet
            return {c: [] for c in columns}
        try:
            return dataset.to_table(columns=columns).to_pydict()
        except FileNotFoundError:
            # a batch retried after its executor or driver died replaces its own files (`BatchWriter.write`):
            # one listed a moment ago may be gone; list again
            if attempt == 4:
                raise
            time.sleep(1)


class Trading:
    """Trades sent by a few client threads until stopped; every answer and every failure kept."""

    def __init__(self, stack, players: int = 30, threads: int = 3):
        self.url, self.key = stack.engine_url, ensure_stack_key(stack)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.key}"
        self.ids = [session.put(f"{self.url}/create_player").json()["player_id"] for _ in range(players)]
        self.answers: list[tuple[int, str]] = []
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.trade, args=(i,)) for i in range(threads)]
        for t in self.threads:
            t.start()

    def trade(self, seed: int) -> None:
        rng, session = random.Random(seed), requests.Session()
        session.headers["Authorization"] = f"Bearer {self.key}"
        while not self.stop.is_set():
            a, b = rng.sample(self.ids, 2)
            body = {"player_1": {"player_id": a, "gold_traded": rng.choice([1, 10])}, "player_2": {"player_id": b}}
            try:
                r = session.post(f"{self.url}/trade", json=body, timeout=10)
                self.answers.append((r.status_code, r.json().get("trade_id")))
            except (requests.RequestException, ValueError) as exc:
                self.failures.append(repr(exc))
            time.sleep(0.02)  # a steady flow, leaving the 2 cores to the sinks

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


def wait_until(what: str, check, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(1)


def test_broker_worker_and_driver_killed_while_trading_every_event_lands_once(spark_cluster):
    s = spark_cluster
    launcher = launcher_for(s.sinks)
    assert isinstance(launcher, ServiceSinkLauncher)
    wait_until("both sinks report progress", lambda: all(launcher.status(k).healthy for k in ("trades", "player_states")),
               180)
    trading = Trading(s)
    victim, worker = brokers(s)[2], SparkWorkerService(s)
    try:
        time.sleep(5)
        try:
            victim.kill()
            time.sleep(5)
        finally:
            victim.start()
        try:
            worker.kill()  # the sinks' executors go with it
            time.sleep(5)
        finally:
            worker.start()  # as a restart policy would

        trades_sink = next(d for d in sink_services(s) if d.sink == "trades")
        before = launcher.status("trades").progress.get("pid")
        driver = trades_sink.driver_pid()
        assert driver is not None and driver == before
        os.kill(driver, signal.SIGKILL)  # the driver dies; its keeper starts another
        wait_until("a new trades driver reports progress",
                   lambda: launcher.status("trades").healthy and launcher.status("trades").progress.get("pid") != before,
                   240)
        time.sleep(5)
    finally:
        trading.finish()
    assert not trading.failures, trading.failures[:3]
    statuses = Counter(code for code, _ in trading.answers)
    assert set(statuses) <= {200, 409}, statuses

    client = make_redis(s.redis)
    counters = {k.decode(): int(v) for k, v in client.hgetall(f"{s.redis.namespace}:counters").items()}
    client.close()

    def landed() -> bool:
        return (len(table(s, "trade_sides", ["event_id"])["event_id"]) >= 2 * counters["trades"]
                and len(table(s, "state_summaries", ["event_id"])["event_id"]) >= counters["player_states"])

    wait_until("the tables hold every event the engine counted", landed, 300)
    time.sleep(3)  # a duplicate landing late would show now
    sides = table(s, "trade_sides", ["trade_id", "event_id"])
    states = table(s, "state_summaries", ["event_id"])
    per_trade = Counter(sides["trade_id"])
    # exactly once: each trade's two sides once, each state once; the trades answered here among them
    assert len(per_trade) == counters["trades"] and set(per_trade.values()) == {2}
    assert {tid for _, tid in trading.answers} <= set(per_trade)
    assert len(states["event_id"]) == len(set(states["event_id"])) == counters["player_states"]


def test_a_stop_request_restarts_a_driver_run_as_a_service(spark_cluster):
    """Dagster's supervisor, for drivers it cannot signal: it asks, the driver stops between batches,
    and its service manager (here its keeper, `spark_jobs.keeper`) starts it again."""
    launcher = launcher_for(spark_cluster.sinks)
    wait_until("the player_states sink reports progress", lambda: launcher.status("player_states").healthy, 240)
    before = launcher.status("player_states")
    assert launcher.stop("player_states") is True
    wait_until("a new player_states driver", lambda: launcher.status("player_states").progress.get("pid")
               not in (None, before.progress["pid"]), 120)
    assert launcher.start("player_states") is False  # nothing to start: it waits until the driver reports
    assert launcher.status("player_states").healthy
