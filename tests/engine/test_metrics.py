"""The engine's `/metrics` under granian's several workers: every answer counted once, summed over
the workers, and kept when a worker dies and granian starts another."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import requests
from prometheus_client.parser import text_string_to_metric_families

from spark_jobs.processes import children


def scrape(base: str) -> Counter:
    """(sample name, sorted labels) -> value, for the engine's own samples."""
    answer = requests.get(f"{base}/metrics", timeout=5)  # no key needed
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
    out = Counter()
    for family in text_string_to_metric_families(answer.text):
        for s in family.samples:
            if s.name.startswith("bazaar_engine_"):
                out[(s.name, tuple(sorted(s.labels.items())))] += s.value
    return out


def delta(after: Counter, before: Counter, name: str, **labels) -> float:
    """The change of every series of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v - before.get(k, 0) for k, v in after.items() if k[0] == name and want <= set(k[1]))


def test_every_answer_is_counted_once_across_the_workers(engine_service, auth, redis_client):
    base = engine_service.address
    before = scrape(base)
    for cls in ("merchant", "monk"):
        assert requests.put(f"{base}/create_player", json={"player_class": cls}, headers=auth).status_code == 201
    statuses, reasons = Counter(), Counter()
    with requests.Session() as http:  # keep-alive: granian spreads connections over its workers
        for i in range(60):
            gold = 5 if i % 3 else 10**9  # every third asks for more gold than the merchant holds
            r = http.post(f"{base}/trade", headers=auth, json={"player_1": {"player_id": 1, "gold_traded": gold},
                                                                "player_2": {"player_id": 2}})
            statuses[r.status_code] += 1
            if r.status_code == 409:
                reasons[r.json()["fail_reason"]] += 1
        for _ in range(7):  # no key
            assert http.get(f"{base}/players/1").status_code == 401
        for _ in range(2):  # the same Idempotency-Key twice: one trade, one replay
            r = http.post(f"{base}/trade", headers={**auth, "Idempotency-Key": "metrics-1"},
                          json={"player_1": {"player_id": 2, "gold_traded": 1}, "player_2": {"player_id": 1}})
            assert r.status_code == 200
        opened = http.post(f"{base}/offers", headers=auth, json={"from_player_id": 1, "to_player_id": 2,
                                                                   "give": {"gold": 1}, "want": {"gold": 10**9}})
        oid = opened.json()["offer_id"]
        accepts = [http.post(f"{base}/offers/{oid}/accept", headers=auth).json()["error"] for _ in range(2)]
        assert accepts == ["accept_refused"] * 2  # the addressee cannot pay
        assert http.post(f"{base}/offers/{oid}/cancel", headers=auth).status_code == 200
        assert http.post(f"{base}/offers/{oid}/accept", headers=auth).json()["error"] == "offer_not_open"
    assert statuses == {200: 40, 409: 20} and sum(reasons.values()) == 20
    after = scrape(base)
    for outcome, n in (("opened", 1), ("accept_refused", 2), ("cancelled", 1), ("accept_not_open", 1)):
        assert delta(after, before, "bazaar_engine_offers_total", outcome=outcome) == n, outcome
    assert delta(after, before, "bazaar_engine_trades_total", outcome="executed") == 41
    for reason, n in reasons.items():
        assert delta(after, before, "bazaar_engine_trades_total", outcome="rejected", reason=reason) == n
    assert delta(after, before, "bazaar_engine_requests_total", route="/trade", status="200") == 42
    assert delta(after, before, "bazaar_engine_requests_total", route="/trade", status="409") == 20
    assert delta(after, before, "bazaar_engine_request_seconds_count", route="/trade") == 62
    assert delta(after, before, "bazaar_engine_idempotent_replays_total", route="/trade") == 1
    assert delta(after, before, "bazaar_engine_refusals_total", status="401", reason="no_credentials") == 7
    assert delta(after, before, "bazaar_engine_requests_total", route="/players/<int:player_id>", status="401") == 7
    # each decided trade committed in one script; reads at least once per trade
    assert delta(after, before, "bazaar_engine_redis_seconds_count", op="commit") >= 61
    assert delta(after, before, "bazaar_engine_redis_seconds_count", op="read") >= 61


def test_a_dead_workers_counts_stay(engine_service, auth):
    base = engine_service.address
    with requests.Session() as http:
        for _ in range(30):
            assert http.get(f"{base}/health").status_code == 200
    before = scrape(base)
    served = delta(before, Counter(), "bazaar_engine_requests_total", route="/health")
    workers = children(engine_service.main_pid())
    assert len(workers) == engine_service.local.engine_workers
    os.kill(workers[0], signal.SIGKILL)  # granian starts another (--respawn-failed-workers)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (len(children(engine_service.main_pid())) < len(workers)
                                           or workers[0] in children(engine_service.main_pid())):
        time.sleep(0.2)
    assert workers[0] not in children(engine_service.main_pid())
    after = scrape(base)
    # nothing counted by the dead worker is lost: only this scrape's own request is new
    assert delta(after, Counter(), "bazaar_engine_requests_total", route="/health") == served
    assert delta(after, before, "bazaar_engine_requests_total", route="/metrics") >= 1
