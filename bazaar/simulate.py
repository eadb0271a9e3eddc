"""A game economy played against the engine over HTTP.

Players are created concurrently through `PUT /create_player`, then trade:
a seller offers an item it holds and a buyer pays about the catalog value in
gold.  The simulator keeps the states the engine answered with, so its
offers are usually valid; the engine's rejections are counted by reason.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Optional

import requests
from rich.progress import Progress



@dataclass
class Summary:
    players: int = 0
    executed: int = 0
    rejected: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def trades(self) -> int:
        return self.executed + sum(self.rejected.values())


class _Client(threading.local):
    def __init__(self):
        self.session = requests.Session()


class Simulator:
    def __init__(self, base_url: str, seed: Optional[int] = None, concurrency: int = 8):
        self.base_url = base_url.rstrip("/")
        self.rng = random.Random(seed)
        self.concurrency = concurrency
        self.states: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._local = _Client()
        self.summary = Summary()

    def _call(self, method: str, path: str, body: Optional[dict] = None) -> requests.Response:
        return self._local.session.request(method, f"{self.base_url}{path}", json=body, timeout=30)

    def create_players(self, n: int, progress: Optional[Progress] = None) -> None:
        task = progress.add_task("creating players", total=n) if progress else None

        def one(_):
            r = self._call("PUT", "/create_player", {"player_class": "random"})
            with self._lock:
                if r.status_code == 201:
                    state = r.json()
                    self.states[state["player_id"]] = state
                    self.summary.players += 1
                else:
                    self.summary.errors[f"create_player {r.status_code}"] += 1
            if progress:
                progress.advance(task)

        with ThreadPoolExecutor(self.concurrency) as pool:
            list(pool.map(one, range(n)))

    def _plan_trade(self, rng: random.Random) -> dict[str, Any]:
        with self._lock:
            seller_id, buyer_id = rng.sample(sorted(self.states), 2)
            seller, buyer = self.states[seller_id], self.states[buyer_id]
        items = seller["inventory"]["items"]
        if not items:
            return {"player_1": {"player_id": buyer_id, "items_traded": [], "gold_traded": max(1, buyer["gold"] // 10)},
                    "player_2": {"player_id": seller_id, "items_traded": [], "gold_traded": 0}}
        item = rng.choice(items)
        price = int(item["value"] * rng.uniform(0.8, 1.2))
        return {
            "player_1": {"player_id": seller_id, "items_traded": [{"item_id": item["item_id"], "quantity": 1}],
                         "gold_traded": 0},
            "player_2": {"player_id": buyer_id, "items_traded": [], "gold_traded": price},
        }

    def trade(self, n: int, progress: Optional[Progress] = None) -> None:
        task = progress.add_task("trading", total=n) if progress else None
        seeds = [self.rng.randrange(2**32) for _ in range(n)]

        def one(seed: int):
            body = self._plan_trade(random.Random(seed))
            r = self._call("POST", "/trade", body)
            with self._lock:
                if r.status_code in (200, 409):
                    answer = r.json()
                    for side in ("player_1", "player_2"):
                        if answer[side]:
                            self.states[answer[side]["player_id"]] = answer[side]
                    if r.status_code == 200:
                        self.summary.executed += 1
                    else:
                        self.summary.rejected[answer["fail_reason"]] += 1
                else:
                    self.summary.errors[f"trade {r.status_code}"] += 1
            if progress:
                progress.advance(task)

        with ThreadPoolExecutor(self.concurrency) as pool:
            list(pool.map(one, seeds))

    def run(self, players: int, trades: int, show_progress: bool = True) -> Summary:
        start = time.monotonic()
        with Progress(disable=not show_progress) as progress:
            self.create_players(players, progress)
            if len(self.states) >= 2:
                self.trade(trades, progress)
        self.summary.seconds = time.monotonic() - start
        return self.summary
