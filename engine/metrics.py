"""The engine's metrics, in Prometheus' text format at `GET /metrics` (no key: it says how the engine
runs, never what a player holds).

granian runs several worker processes; each counts in files of its own under
`PROMETHEUS_MULTIPROC_DIR` (prometheus_client's multiprocess mode), and `/metrics`, answered by any
worker, sums them all. `bazaar up` empties that folder before the engine starts. granian has no
hook when a worker dies, so a worker, as it starts (a respawned one too), marks the workers whose
pids are gone as dead (`mark_process_dead`: their live gauges dropped; their counters and histograms
stay, so totals never go back). Without the variable (a test's app, one process) the metrics live
in the process.

    bazaar_engine_requests_total{route,method,status}   every answer, by route template
    bazaar_engine_request_seconds{route}                 latency histogram per route
    bazaar_engine_trades_total{outcome,reason}           trades decided (executed; rejected by reason)
    bazaar_engine_offers_total{outcome}                  opened, accepted, accept_refused, accept_not_open, cancelled
    bazaar_engine_idempotent_replays_total{route}        answers replayed for a repeated Idempotency-Key
    bazaar_engine_refusals_total{status,reason}          401, 403 and 429 by what was wrong
    bazaar_engine_redis_seconds{op}                      Redis round trips: `read` (pipelined) and `commit`
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from flask import Flask, Response, g, request
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, disable_created_metrics,
                               generate_latest, multiprocess)

from engine.idempotency import REPLAYED

disable_created_metrics()  # a `_created` sample per series doubles the scrape for nothing a studio reads
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# the engine answers in about a millisecond; the buckets reach Redis's socket timeout
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
REFUSED = (401, 403, 429)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})  # any other is "other"

REQUESTS = Counter("bazaar_engine_requests", "Requests answered, by route template, method and status.",
                   ["route", "method", "status"])
LATENCY = Histogram("bazaar_engine_request_seconds", "Time from a request's start to its answer, per route.",
                    ["route"], buckets=LATENCY_BUCKETS)
TRADES = Counter("bazaar_engine_trades", "Trades decided: executed, or rejected with the game rule's reason.",
                 ["outcome", "reason"])
OFFERS = Counter("bazaar_engine_offers", "Offers by outcome: opened, accepted, accept_refused (a game rule), "
                 "accept_not_open (ended or expired), cancelled.",
                 ["outcome"])
REPLAYS = Counter("bazaar_engine_idempotent_replays", "Answers replayed for a repeated Idempotency-Key.", ["route"])
REFUSALS = Counter("bazaar_engine_refusals", "Requests refused by the front door: 401, 403 and 429, by reason.",
                   ["status", "reason"])
REDIS = Histogram("bazaar_engine_redis_seconds", "Round trips to Redis: the pipelined read, the commit script.",
                  ["op"], buckets=LATENCY_BUCKETS)
OFFER_OUTCOMES = {("offers.open_offer", 201): "opened", ("offers.accept", 200): "accepted",
                  ("offers.accept", 409): "accept_not_open", ("offers.cancel", 200): "cancelled"}
# (an accept a game rule refused is a 409 too: the route notes it, `note_offer`)


def note_offer(outcome: str) -> None:
    """What the request did to its offer, where the status alone does not say (an accept's 409)."""
    g.offer_outcome = outcome


def note_trade(valid: bool, reason: str | None) -> None:
    """What the request's trade came to; counted once its answer goes out (a step retried after a
    race is decided again, and only the last decision is the answer)."""
    g.trade_outcome = ("executed", "") if valid else ("rejected", reason or "unknown")


def observe_redis(op: str, seconds: float) -> None:
    """The store's hook after each Redis round trip."""
    REDIS.labels(op).observe(seconds)


def forget_dead_workers(folder: Path) -> None:
    """Mark every worker whose pid is gone as dead: granian respawns workers without telling anyone."""
    for path in folder.glob("*_*.db"):
        try:
            pid = int(path.stem.rsplit("_", 1)[1])
        except ValueError:
            continue
        if pid != os.getpid() and not Path(f"/proc/{pid}").exists():
            multiprocess.mark_process_dead(pid, str(folder))


def exposition() -> Response:
    folder = os.environ.get(MULTIPROC_ENV)
    if folder:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, folder)
        body = generate_latest(registry)
    else:
        body = generate_latest()
    return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def init_app(app: Flask) -> None:
    """Count every answer (when `BAZAAR_METRICS` is on) and serve `/metrics`."""
    app.add_url_rule("/metrics", "metrics", exposition)
    if not app.config["BAZAAR_SETTINGS"].metrics:
        return
    folder = os.environ.get(MULTIPROC_ENV)
    if folder:
        forget_dead_workers(Path(folder))

    @app.before_request
    def _start() -> None:
        g.metrics_start = time.perf_counter()

    @app.after_request
    def _count(response):
        rule = request.url_rule
        route = rule.rule if rule is not None else "unmatched"  # a template: never a player id or an offer id
        status = response.status_code
        method = request.method if request.method in METHODS else "other"  # a client names it: keep the set bounded
        REQUESTS.labels(route, method, str(status)).inc()
        start = g.get("metrics_start")
        if start is not None:
            LATENCY.labels(route).observe(time.perf_counter() - start)
        if response.headers.get(REPLAYED):
            REPLAYS.labels(route).inc()
            return response
        outcome = g.get("trade_outcome")
        if outcome is not None and status in (200, 409):
            TRADES.labels(*outcome).inc()
        offer = g.get("offer_outcome") or OFFER_OUTCOMES.get((request.endpoint, status))
        if offer is not None:
            OFFERS.labels(offer).inc()
        if status in REFUSED:
            REFUSALS.labels(str(status), g.get("refusal_reason") or "unknown").inc()
        return response
