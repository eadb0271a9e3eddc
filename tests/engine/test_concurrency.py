"""Thousands of conflicting trades from 16 threads over a few hot players,
through the engine's server: nothing is duplicated or destroyed, every request is recorded once."""

import random
import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from engine import catalog

THREADS = 16
TRADES_PER_THREAD = 200
CLASSES = ["merchant", "merchant", "bard", "cleric", "monk", "druid"]


@pytest.fixture
def hot_players(engine_service, redis_client, auth):
    base = engine_service.address
    states = [requests.put(f"{base}/create_player", json={"player_class": c}, headers=auth).json()
              for c in CLASSES]
    return base, states


def totals(states):
    items, gold = Counter(), 0
    for s in states:
        gold += s["gold"]
        for i in s["inventory"]["items"]:
            items[i["item_id"]] += i["quantity"]
    return items, gold


def random_trade(rng, ids, item_ids):
    a, b = rng.sample(ids, 2)

    def side(pid):
        lines = [{"item_id": rng.choice(item_ids), "quantity": rng.randint(1, 3)} for _ in range(rng.randint(0, 2))]
        return {"player_id": pid, "items_traded": lines, "gold_traded": rng.choice([0, 0, 5, 40, 300])}

    return {"player_1": side(a), "player_2": side(b)}


def test_conflicting_trades_conserve_items_and_gold(hot_players, outbox, auth):
    base, start = hot_players
    ids = [s["player_id"] for s in start]
    item_ids = sorted({i for c in CLASSES for i, _ in catalog.CLASSES[c].items})
    statuses = Counter()
    lock = threading.Lock()

    def worker(seed):
        rng, session = random.Random(seed), requests.Session()
        session.headers.update(auth)
        for _ in range(TRADES_PER_THREAD):
            r = session.post(f"{base}/trade", json=random_trade(rng, ids, item_ids), timeout=30)
            with lock:
                statuses[r.status_code] += 1

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(worker, range(THREADS)))

    n_requests = THREADS * TRADES_PER_THREAD
    assert set(statuses) <= {200, 409} and sum(statuses.values()) == n_requests
    assert statuses[200] > 100 and statuses[409] > 100  # both paths were exercised under contention

    end = [requests.get(f"{base}/players/{i}", headers=auth).json() for i in ids]
    assert totals(end) == totals(start)
    for s in end:
        assert s["gold"] >= 0 and all(i["quantity"] > 0 for i in s["inventory"]["items"])
        assert s["inventory"]["current_capacity"] >= 0

    trades = outbox.events("trade")
    states = outbox.events("player_state")
    assert len(trades) == n_requests
    assert len({t["trade_id"] for t in trades}) == n_requests
    assert sum(t["valid_trade"] for t in trades) == statuses[200]
    assert len(states) == len(CLASSES) + 2 * statuses[200]

    # each player's state events carry versions 1..final exactly once, the last equal to its state
    versions = defaultdict(list)
    last = {}
    for e in states:
        versions[e["player"]["player_id"]].append(e["player"]["version"])
        last[e["player"]["player_id"]] = e["player"]
    for s in end:
        assert sorted(versions[s["player_id"]]) == list(range(1, s["version"] + 1))
        assert last[s["player_id"]] == s
