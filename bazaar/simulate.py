"""A game economy played against the engine over HTTP, with its ground truth.

Players are created concurrently through `PUT /create_player`, then trade
through `POST /trade` from a pool of threads.  Each trade is planned from the
states the engine last answered for the two players, so offers are usually
valid; what the engine rejects is counted by reason.  The behaviours:

- purchase: a player sells an item the buyer can afford, for its catalog
  value give or take 15%;
- swap: two players exchange items, the side giving less adds the difference
  in gold (no swap when it does not hold that much);
- gift: a player gives its cheapest item (or a little gold) for nothing;
- cheat: a cheater passes its most valuable item (or most of its gold) to one
  of its accomplices for at most a few gold, again and again.

Cheaters are accounts holding more than honest play explains (duped or
bought), so they are created with the richest classes; their accomplices are
ordinary players.

A share of the honest trades (`offer_share`) go through offers, as players
trading with each other would: the giver opens an offer (`POST /offers`, its
goods into escrow), and the other side accepts it (most of the time, and the
maker cancels when the rules refuse the accept) or the maker cancels it.  At the
end a few more offers, from players who then do nothing, are left to expire
(the relay's sweep ends them) and are waited for.  `Truth` records what was
sent, what the engine answered, every offer as it ended, the states the offers
left, and who was made a cheater, for reports to be checked against.
"""

from __future__ import annotations

import gzip
import json
import math
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import urllib3
from rich.progress import Progress


PURCHASE, SWAP, GIFT, CHEAT = "purchase", "swap", "gift", "cheat"
ACCEPT_SHARE = 0.8  # of offers: accepted (else cancelled by their maker)
EXPIRING_SHARE = 0.05  # offers left to expire at the end, as a share of the offers made while trading
EXPIRES_IN_S = 2  # those offers' expiry (the relay's sweep returns their escrow within about a second)
GIFT_SHARE, SWAP_SHARE = 0.05, 0.30  # of honest trades; the rest are purchases
CHEATING_TRADES = 0.7  # share of a cheater's own trades that pass value to an accomplice
CHEATER_CLASSES = ("noble", "merchant")
ACCOMPLICES_PER_CHEATER = (1, 2)


class EngineUnreachable(RuntimeError):
    pass


@dataclass
class Summary:
    players: int = 0
    executed: int = 0
    rejected: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    by_kind: Counter = field(default_factory=Counter)
    offers: Counter = field(default_factory=Counter)  # opened, accepted, cancelled, expired, refused, accept refused
    seconds: float = 0.0

    @property
    def trades(self) -> int:
        return self.executed + sum(self.rejected.values())


@dataclass
class Truth:
    """What the simulator did: players as created, the cheaters and their accomplices, every
    trade as (kind, request, HTTP status, answer; with `offer_id` when it was an offer's accept),
    every offer as it ended, the accepts the rules refused (offer events, not trades), and the
    states the offers left (into escrow, back from it)."""

    seed: Optional[int]
    players: dict[int, dict] = field(default_factory=dict)
    cheaters: dict[int, list[int]] = field(default_factory=dict)
    trades: list[dict] = field(default_factory=list)
    offers: list[dict] = field(default_factory=list)
    states: list[dict] = field(default_factory=list)
    refused_accepts: list[dict] = field(default_factory=list)

    @property
    def accomplices(self) -> set[int]:
        return {a for group in self.cheaters.values() for a in group}

    def executed(self, kind: Optional[str] = None) -> list[dict]:
        return [t for t in self.trades if t["status"] == 200 and kind in (None, t["kind"])]

    LOGS = ("trades", "offers", "states", "refused_accepts")  # each in <name>.jsonl.gz

    def save(self, folder: Path) -> Path:
        """`truth.json` (seed, players, cheaters) and each of `LOGS` as `.jsonl.gz`, in `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "truth.json").write_text(json.dumps(
            {"seed": self.seed, "players": self.players, "cheaters": self.cheaters}))
        for name in self.LOGS:
            with gzip.open(folder / f"{name}.jsonl.gz", "wt") as out:
                for line in getattr(self, name):
                    out.write(json.dumps(line) + "\n")
        return folder

    @classmethod
    def load(cls, folder: Path) -> "Truth":
        doc = json.loads((folder / "truth.json").read_text())
        logs = {}
        for name in cls.LOGS:
            path = folder / f"{name}.jsonl.gz"
            if not path.exists():  # saved before this log was kept
                continue
            with gzip.open(path, "rt") as f:
                logs[name] = [json.loads(line) for line in f]
        return cls(doc["seed"], {int(k): v for k, v in doc["players"].items()},
                   {int(k): v for k, v in doc["cheaters"].items()}, **logs)


def _value(item: dict) -> int:
    return item["value"] * item["quantity"]


class Simulator:
    def __init__(self, base_url: str, seed: Optional[int] = None, concurrency: int = 8,
                 cheater_share: float = 0.02, api_key: str = "", offer_share: float = 0.2):
        if not 0 <= cheater_share < 0.5:
            raise ValueError(f"cheater_share must be in [0, 0.5), got {cheater_share}")
        if not 0 <= offer_share <= 1:
            raise ValueError(f"offer_share must be in [0, 1], got {offer_share}")
        self.offer_share = offer_share
        self.base_url = base_url.rstrip("/")
        self.seed = seed
        self.rng = random.Random(seed)
        self.concurrency = concurrency
        self.cheater_share = cheater_share
        self.states: dict[int, dict[str, Any]] = {}
        self._pending: dict[str, dict] = {}  # open offers, by id
        self.truth = Truth(seed)
        self.summary = Summary()
        self._lock = threading.Lock()
        # urllib3 directly: half the client CPU per request of `requests`, which counts on 2 cores
        self._http = urllib3.PoolManager(maxsize=concurrency, timeout=30.0, retries=False)
        self._headers = {"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"}

    def _call(self, method: str, path: str, body: Optional[dict] = None) -> tuple[int, Any]:
        """(HTTP status, parsed JSON answer)."""
        r = self._http.request(method, f"{self.base_url}{path}",
                               body=None if body is None else json.dumps(body).encode(), headers=self._headers)
        return r.status, json.loads(r.data)

    # players

    def create_players(self, n: int, progress: Optional[Progress] = None) -> None:
        n_cheaters = math.ceil(n * self.cheater_share) if self.cheater_share else 0
        classes = [self.rng.choice(CHEATER_CLASSES) for _ in range(n_cheaters)] + ["random"] * (n - n_cheaters)
        task = progress.add_task("creating players", total=n) if progress else None

        def one(player_class: str) -> Optional[int]:
            try:
                status, state = self._call("PUT", "/create_player", {"player_class": player_class})
            except (urllib3.exceptions.HTTPError, ValueError) as exc:
                status, state = type(exc).__name__, None
            pid = None
            with self._lock:
                if status == 201:
                    pid = state["player_id"]
                    self.states[pid] = self.truth.players[pid] = state
                    self.summary.players += 1
                else:
                    self.summary.errors[f"create_player {status}"] += 1
            if progress:
                progress.advance(task)
            return pid

        with ThreadPoolExecutor(self.concurrency) as pool:
            made = list(pool.map(one, classes))
        cheaters = [pid for pid in made[:n_cheaters] if pid is not None]
        honest = [pid for pid in made[n_cheaters:] if pid is not None]
        pool_size = min(len(honest), max(1, math.ceil(len(cheaters) / 2)))
        accomplices = self.rng.sample(honest, pool_size) if cheaters else []
        for pid in cheaters:
            k = min(len(accomplices), self.rng.randint(*ACCOMPLICES_PER_CHEATER))
            self.truth.cheaters[pid] = sorted(self.rng.sample(accomplices, k))

    # trades

    def _plan(self, rng: random.Random) -> tuple[str, dict[str, Any]]:
        """(kind, request body) from the players' last known states."""
        with self._lock:
            ids = sorted(self.states)
            me = rng.choice(ids)
            if me in self.truth.cheaters and rng.random() < CHEATING_TRADES:
                plan = self._cheat(self.states[me], self.states[rng.choice(self.truth.cheaters[me])], rng)
                if plan:
                    return CHEAT, plan
            other = rng.choice([i for i in ids if i != me] or ids)
            a, b = self.states[me], self.states[other]
        r = rng.random()
        if r < GIFT_SHARE:
            return GIFT, self._gift(a, b, rng)
        if r < GIFT_SHARE + SWAP_SHARE and a["inventory"]["items"] and b["inventory"]["items"]:
            swap = self._swap(a, b, rng)
            if swap:
                return SWAP, swap
        return PURCHASE, self._purchase(a, b, rng)

    @staticmethod
    def _body(giver: dict, receiver: dict, items: list[dict], gold: int, back_items: list[dict] = (),
              back_gold: int = 0) -> dict[str, Any]:
        return {"player_1": {"player_id": giver["player_id"], "items_traded": list(items), "gold_traded": gold},
                "player_2": {"player_id": receiver["player_id"], "items_traded": list(back_items),
                             "gold_traded": back_gold}}

    def _cheat(self, cheater: dict, accomplice: dict, rng: random.Random) -> Optional[dict]:
        items = cheater["inventory"]["items"]
        back = rng.choice([0, 0, 1, 5])
        if items:
            top = max(items, key=lambda it: (it["value"], it["item_id"]))
            return self._body(cheater, accomplice, [{"item_id": top["item_id"], "quantity": top["quantity"]}], 0,
                              back_gold=min(back, accomplice["gold"]))
        if cheater["gold"] >= 1_000:
            return self._body(cheater, accomplice, [], int(cheater["gold"] * rng.uniform(0.5, 0.9)),
                              back_gold=min(back, accomplice["gold"]))
        return None  # nothing left worth passing: trades honestly

    def _gift(self, giver: dict, receiver: dict, rng: random.Random) -> dict:
        items = giver["inventory"]["items"]
        if items:
            cheap = min(items, key=lambda it: (it["value"], it["item_id"]))
            return self._body(giver, receiver, [{"item_id": cheap["item_id"], "quantity": 1}], 0)
        return self._body(giver, receiver, [], max(1, giver["gold"] // 20))

    def _swap(self, a: dict, b: dict, rng: random.Random) -> Optional[dict]:
        """One item each, the closest in value; None when the difference is more gold than the
        side owing it holds (honest players do not make lopsided swaps)."""
        mine = rng.choice(a["inventory"]["items"])
        theirs = min(b["inventory"]["items"], key=lambda it: (abs(it["value"] - mine["value"]), it["item_id"]))
        diff = mine["value"] - theirs["value"]  # > 0: b owes a the difference
        if (b if diff > 0 else a)["gold"] < abs(diff):
            return None
        return self._body(a, b, [{"item_id": mine["item_id"], "quantity": 1}], max(-diff, 0),
                          [{"item_id": theirs["item_id"], "quantity": 1}], max(diff, 0))

    def _purchase(self, seller: dict, buyer: dict, rng: random.Random) -> dict:
        items = seller["inventory"]["items"]
        if not items:  # nothing to sell: buy from the other player instead
            seller, buyer = buyer, seller
            items = seller["inventory"]["items"]
        if not items:
            return self._gift(buyer, seller, rng)
        affordable = [it for it in items if it["value"] <= buyer["gold"]] or items  # else: insufficient_gold
        item = rng.choice(affordable)
        price = max(1, round(item["value"] * rng.uniform(0.85, 1.15)))
        return self._body(seller, buyer, [{"item_id": item["item_id"], "quantity": 1}], 0, back_gold=price)

    def trade(self, n: int, progress: Optional[Progress] = None) -> None:
        task = progress.add_task("trading", total=n) if progress else None
        seeds = [self.rng.randrange(2**32) for _ in range(n)]

        def one(seed: int) -> None:
            rng = random.Random(seed)
            kind, body = self._plan(rng)
            if kind != CHEAT and rng.random() < self.offer_share:
                self._through_offer(kind, body, rng)
            else:
                self._record(kind, body, *self._safe_call("POST", "/trade", body))
            if progress:
                progress.advance(task)

        with ThreadPoolExecutor(self.concurrency) as pool:
            list(pool.map(one, seeds))

    def _safe_call(self, method: str, path: str, body: Optional[dict] = None) -> tuple[Any, Any]:
        try:
            return self._call(method, path, body)
        except (urllib3.exceptions.HTTPError, ValueError) as exc:
            return None, {"error": type(exc).__name__}

    def _through_offer(self, kind: str, body: dict, rng: random.Random) -> None:
        """The trade as an offer: player 1 offers what it gives for what player 2 gives; player 2
        accepts (the maker cancels if the rules refuse it), or the maker cancels."""
        def goods(side: dict) -> dict:
            return {"items": side["items_traded"], "gold": side["gold_traded"]}

        maker, to = body["player_1"]["player_id"], body["player_2"]["player_id"]
        oid = self._open({"from_player_id": maker, "to_player_id": to, "give": goods(body["player_1"]),
                          "want": goods(body["player_2"]), "expires_in_s": 600})
        if oid is None:
            return
        if rng.random() < ACCEPT_SHARE:
            status, answer = self._safe_call("POST", f"/offers/{oid}/accept")
            if status == 409 and answer.get("error") == "accept_refused":  # an offer event, not a trade
                with self._lock:
                    self.summary.offers["accept refused"] += 1
                    self.truth.refused_accepts.append({"offer_id": oid, "fail_reason": answer["fail_reason"]})
                self._cancel(oid)
                return
            self._record(kind, body, status, answer, oid)
            if status == 200:
                with self._lock:
                    self.summary.offers["accepted"] += 1
                    self.truth.offers.append(self._closed(oid, answer))
                return
        self._cancel(oid)

    def _open(self, body: dict) -> Optional[str]:
        status, answer = self._safe_call("POST", "/offers", body)
        with self._lock:
            if status != 201:
                self.summary.offers["refused" if status == 409 else f"error {status}"] += 1
                return None
            self.summary.offers["opened"] += 1
            self._keep_state(answer.pop("maker_state"))
            self._pending[answer["offer_id"]] = answer
            return answer["offer_id"]

    def _cancel(self, oid: str) -> None:
        status, answer = self._safe_call("POST", f"/offers/{oid}/cancel")
        with self._lock:
            if status != 200:
                self.summary.errors[f"cancel {status}"] += 1
                return
            self.summary.offers["cancelled"] += 1
            self._keep_state(answer.pop("maker_state"))
            self._pending.pop(oid, None)
            self.truth.offers.append(answer)

    def _closed(self, oid: str, trade: dict) -> dict:
        """The offer as its accept ended it (the caller holds the lock)."""
        return {**self._pending.pop(oid), "status": "accepted", "closed_at": trade["trade_time"],
                "trade_id": trade["trade_id"]}

    def _keep_state(self, state: dict) -> None:
        """A state the engine answered that no trade answer carries (the caller holds the lock)."""
        self.truth.states.append(state)
        if state["version"] > self.states.get(state["player_id"], {"version": 0})["version"]:
            self.states[state["player_id"]] = state

    def _record(self, kind: str, body: dict, status: Any, answer: Any, offer_id: Optional[str] = None) -> None:
        with self._lock:
            self.truth.trades.append({"kind": kind, "request": body, "status": status, "answer": answer,
                                      **({"offer_id": offer_id} if offer_id else {})})
            if status in (200, 409):
                for side in ("player_1", "player_2"):
                    if answer.get(side):
                        self.states[answer[side]["player_id"]] = answer[side]
                if status == 200:
                    self.summary.executed += 1
                    self.summary.by_kind[kind] += 1
                else:
                    self.summary.rejected[answer.get("fail_reason") or answer.get("error")] += 1
            else:
                self.summary.errors[f"trade {status}"] += 1

    def expire_offers(self, n: int, timeout: float = 30) -> None:
        """`n` offers (a gift each) from players that then do nothing, left to expire; waits until the
        engine has ended them all and keeps each maker's state from then."""
        makers = self.rng.sample(sorted(self.states), min(n, len(self.states) - 1))
        opened = {}
        for maker in makers:
            other = self.rng.choice([p for p in self.states if p != maker])
            body = self._gift(self.states[maker], self.states[other], self.rng)
            oid = self._open({"from_player_id": maker, "to_player_id": other,
                              "give": {"items": body["player_1"]["items_traded"], "gold": body["player_1"]["gold_traded"]},
                              "expires_in_s": EXPIRES_IN_S})
            if oid:
                opened[oid] = maker
        deadline = time.monotonic() + EXPIRES_IN_S + timeout
        while opened and time.monotonic() < deadline:
            time.sleep(0.5)
            for oid, maker in list(opened.items()):
                status, offer = self._safe_call("GET", f"/offers/{oid}")
                if status == 200 and offer["status"] == "expired":
                    _, state = self._safe_call("GET", f"/players/{maker}")  # nothing else touched it since
                    with self._lock:
                        self.summary.offers["expired"] += 1
                        self._keep_state(state)
                        self._pending.pop(oid, None)
                        self.truth.offers.append(offer)
                    del opened[oid]
        if opened:
            raise EngineUnreachable(f"{len(opened)} offers did not expire within {timeout:.0f}s of their expiry: "
                                    "is the relay running (`bazaar status`)? It ends expired offers")

    def check_engine(self) -> None:
        try:
            r = self._http.request("GET", f"{self.base_url}/health", timeout=5.0)
        except urllib3.exceptions.HTTPError as exc:
            raise EngineUnreachable(f"cannot reach the engine at {self.base_url} ({type(exc).__name__}); "
                                    "start it with `bazaar up`, or pass --url") from None
        if r.status != 200:
            raise EngineUnreachable(f"the engine at {self.base_url} answers /health with {r.status}: "
                                    f"{r.data[:200]!r}; see `bazaar logs engine`")
        r = self._http.request("GET", f"{self.base_url}/players/1", headers=self._headers, timeout=5.0)
        if r.status == 401:
            raise EngineUnreachable(f"the engine at {self.base_url} refuses the API key ({r.data[:200]!r}); "
                                    "set BAZAAR_API_KEY to a key from `bazaar keys create`, or run `bazaar up` "
                                    "to register the stack's own")

    def run(self, players: int, trades: int, show_progress: bool = True) -> Summary:
        self.check_engine()
        start = time.monotonic()
        with Progress(disable=not show_progress) as progress:
            self.create_players(players, progress)
            if len(self.states) >= 2:
                self.trade(trades, progress)
                if self.summary.offers["opened"]:
                    with progress.console.status("leaving a few offers to expire…") if show_progress else nullcontext():
                        self.expire_offers(max(1, round(self.summary.offers["opened"] * EXPIRING_SHARE)))
        self.truth.offers += self._pending.values()  # still open: accepts the rules refused are cancelled
        self.summary.seconds = time.monotonic() - start
        return self.summary
