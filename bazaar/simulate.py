"""A game economy played against the engine over HTTP, with its ground truth.

Players are created concurrently through `PUT /create_player`, then trade
through `POST /trade` from a pool of threads.  Each trade is planned from the
states the engine last answered for the two players, so offers are usually
valid; what the engine rejects is counted by reason.  The behaviours:

- purchase: a player sells an item the buyer can afford, for anything from
  half to twice its catalog value (fair trades, their prices dispersed);
- swap: two players exchange items, the side giving less adds the difference
  in gold (no swap when it does not hold that much);
- gift: a player gives its cheapest item when it is worth little (or a
  little gold) for nothing.

Beside them, rings (`bazaar.rings`): fraud in five shapes (pairs, stars,
chains, mules, real-money sellers) for `cheater_share` of the players, and
honest groups shaped like them (friends, guild banks, veterans helping
newcomers) for `lookalike_share`. Each ring plays its script in order,
interleaved with the honest trading, and finishes after it. Their members
that give are accounts holding more than honest play explains (duped or
bought), so they are created with the richest classes; mules and newcomers are
accounts made while trading, which do nothing else.

A share of the honest trades (`offer_share`) go through offers, as players
trading with each other would: the giver opens an offer (`POST /offers`, its
goods into escrow), and the other side accepts it (most of the time, and the
maker cancels when the rules refuse the accept) or the maker cancels it.  At the
end a few more offers, from players who then do nothing, are left to expire
(the relay's sweep ends them) and are waited for.  `Truth` records what was
sent, what the engine answered, every offer as it ended, the states the offers
left, and each ring member's pattern and role, for reports to be checked against.
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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import urllib3
from rich.progress import Progress

from bazaar import rings as ring_kit
from bazaar.rings import FRAUD, LOOKALIKES, Ring


PURCHASE, SWAP, GIFT, CHEAT = "purchase", "swap", "gift", "cheat"
ACCEPT_SHARE = 0.8  # of offers: accepted (else cancelled by their maker)
EXPIRING_SHARE = 0.05  # offers left to expire at the end, as a share of the offers made while trading
EXPIRES_IN_S = 2  # those offers' expiry (the relay's sweep returns their escrow within about a second)
GIFT_SHARE, SWAP_SHARE = 0.05, 0.30  # of honest trades; the rest are purchases
RING_ATTEMPTS = 3  # a ring step the rules refuse is planned again, this many times in all
RING_SPAN = 0.8  # the rings play their steps within this first share of the trades (the rest finish after)
SMALL_GIFT = 500  # what an honest gift is worth at most
PRICE_SPREAD = 2.0  # a purchase's price: the item's value times anything from 1/2 to 2 (log-uniform)


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
    unplanted: tuple[str, ...] = ()  # patterns asked for that found no room (rings hold at most half the players)

    @property
    def trades(self) -> int:
        return self.executed + sum(self.rejected.values())


@dataclass
class Truth:
    """What the simulator did: players as created, each ring member's (pattern, role), the pair
    rings' cheaters and their accomplices, every
    trade as (kind, request, HTTP status, answer; with `offer_id` when it was an offer's accept),
    every offer as it ended, the accepts the rules refused (offer events, not trades), and the
    states the offers left (into escrow, back from it)."""

    seed: Optional[int]
    players: dict[int, dict] = field(default_factory=dict)
    cheaters: dict[int, list[int]] = field(default_factory=dict)
    roles: dict[int, tuple[str, str]] = field(default_factory=dict)
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
            {"seed": self.seed, "players": self.players, "cheaters": self.cheaters, "roles": self.roles}))
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
                   {int(k): v for k, v in doc["cheaters"].items()},
                   {int(k): tuple(v) for k, v in doc.get("roles", {}).items()}, **logs)


def _value(item: dict) -> int:
    return item["value"] * item["quantity"]


class Simulator:
    def __init__(self, base_url: str, seed: Optional[int] = None, concurrency: int = 8,
                 cheater_share: float = 0.02, api_key: str = "", offer_share: float = 0.2,
                 lookalike_share: float = 0.03, patterns: tuple[str, ...] = FRAUD,
                 lookalikes: tuple[str, ...] = LOOKALIKES):
        if not 0 <= cheater_share < 0.5:
            raise ValueError(f"cheater_share must be in [0, 0.5), got {cheater_share}")
        if not 0 <= lookalike_share < 0.5:
            raise ValueError(f"lookalike_share must be in [0, 0.5), got {lookalike_share}")
        if not 0 <= offer_share <= 1:
            raise ValueError(f"offer_share must be in [0, 1], got {offer_share}")
        unknown = sorted(set(patterns) - set(FRAUD)) + sorted(set(lookalikes) - set(LOOKALIKES))
        if unknown:
            raise ValueError(f"unknown patterns {unknown}: fraud is one of {', '.join(FRAUD)}, look-alikes one of "
                             f"{', '.join(LOOKALIKES)}")
        self.offer_share, self.lookalike_share = offer_share, lookalike_share
        self.patterns, self.lookalikes = tuple(patterns), tuple(lookalikes)
        self.rings: list[Ring] = []
        self._scripted: set[int] = set()  # accounts made for a ring's script, which trade only in it
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

    def plan(self, n: int) -> None:
        """The rings among `n` players; the patterns asked for that found no room are noted."""
        self.rings = ring_kit.plan_rings(n, self.cheater_share, self.lookalike_share, self.rng, self.patterns,
                                         self.lookalikes)
        planted = {ring.pattern for ring in self.rings}
        self.summary.unplanted = tuple(p for p in self.patterns if self.cheater_share > 0 and p not in planted)

    def create_players(self, n: int, progress: Optional[Progress] = None) -> None:
        """`n` players in all: the rings' members (the fresh ones later, when their ring needs them)
        and honest ones."""
        self.plan(n)
        now = [(ring, m) for ring in self.rings for m in ring.members if not m.fresh]
        fresh = sum(m.fresh for ring in self.rings for m in ring.members)
        slots = now + [None] * (n - len(now) - fresh)
        task = progress.add_task("creating players", total=len(slots)) if progress else None

        def one(slot) -> None:
            if slot is None:
                self._create("random")
            else:
                ring, member = slot
                pid = self._create(member.player_class, member.only_scripted)
                if pid is not None:
                    with self._lock:
                        ring.ids[member.key] = pid
            if progress:
                progress.advance(task)

        with ThreadPoolExecutor(self.concurrency) as pool:
            list(pool.map(one, slots))
        self._note_roles()

    def _create(self, player_class: str, scripted: bool = False) -> Optional[int]:
        """A new player; `scripted`: one only its ring trades with (never picked for an honest trade,
        not even by a thread planning one the moment it is made)."""
        try:
            status, state = self._call("PUT", "/create_player", {"player_class": player_class})
        except (urllib3.exceptions.HTTPError, ValueError) as exc:
            status, state = type(exc).__name__, None
        with self._lock:
            if status != 201:
                self.summary.errors[f"create_player {status}"] += 1
                return None
            pid = state["player_id"]
            if scripted:
                self._scripted.add(pid)
            self.states[pid] = self.truth.players[pid] = state
            self.summary.players += 1
            return pid

    def _note_roles(self) -> None:
        """The ground truth as the rings stand: every member made, and the pair rings' cheaters."""
        with self._lock:
            self.truth.roles = ring_kit.roles(self.rings)
            self.truth.cheaters = {r.ids["cheater"]: sorted(pid for key, pid in r.ids.items()
                                                            if key != "cheater" and key in r.acted)
                                   for r in self.rings if r.pattern == "pair" and "cheater" in r.acted}

    # rings

    def _ring_step(self, rng: random.Random) -> bool:
        """The next step of a ring whose last step is answered, if there is one; False if none is ready."""
        with self._lock:
            ready = [r for r in self.rings if r.steps and not r.busy]
            if not ready:
                return False
            ring = rng.choice(ready)
            ring.busy = True
            step = ring.steps.popleft()
        try:
            self._play(ring, step, rng)
        finally:
            with self._lock:
                ring.busy = False
        return True

    def _play(self, ring: Ring, step: ring_kit.Step, rng: random.Random) -> None:
        if step.move == "create":
            member = ring.member(step.giver)
            pid = self._create(member.player_class, member.only_scripted)
            if pid is not None:
                with self._lock:
                    ring.ids[step.giver] = pid
            return
        with self._lock:
            giver, receiver = ring.ids.get(step.giver), ring.ids.get(step.receiver)
            if giver is None or receiver is None:
                return  # its account could not be made
            got = ring.received.setdefault(step.giver, Counter())
            plan = ring_kit.MOVES[step.move](self.states[giver], self.states[receiver], got, rng)
            if plan is None:  # nothing left to give: the step is skipped
                return
        kind = CHEAT if ring.pattern == "pair" else ring.pattern
        status, answer = self._safe_call("POST", "/trade", plan)
        self._record(kind, plan, status, answer)
        if status == 409 and step.attempt < RING_ATTEMPTS - 1:
            # planned from a state an honest trade of the giver's had just changed: planned again from
            # the one the refusal answered, next
            with self._lock:
                ring.steps.appendleft(replace(step, attempt=step.attempt + 1))
            return
        if status == 200:
            side = next(s for s in ("player_1", "player_2") if plan[s]["player_id"] == giver)
            moved = ring_kit.goods_given(plan[side])
            with self._lock:
                ring.acted |= {step.giver, step.receiver}
                ring.received.setdefault(step.receiver, Counter()).update(moved)
                if step.move == "pass":
                    got.subtract(moved)

    # trades

    def _plan(self, rng: random.Random) -> tuple[str, dict[str, Any]]:
        """(kind, request body) from the players' last known states."""
        with self._lock:
            ids = sorted(set(self.states) - self._scripted)
            me = rng.choice(ids)
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

    _body = staticmethod(ring_kit.body)

    def _gift(self, giver: dict, receiver: dict, rng: random.Random) -> dict:
        """A small gift: the giver's cheapest item when it is worth little, else a little gold (a
        valuable gift is the `friends` look-alike's, between players who give back)."""
        items = giver["inventory"]["items"]
        cheap = min(items, key=lambda it: (it["value"], it["item_id"])) if items else None
        if cheap and cheap["value"] <= SMALL_GIFT:
            return self._body(giver, receiver, [{"item_id": cheap["item_id"], "quantity": 1}], 0)
        return self._body(giver, receiver, [], max(1, min(SMALL_GIFT, giver["gold"] // 20)))

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
        spread = math.log(PRICE_SPREAD)
        price = max(1, round(item["value"] * math.exp(rng.uniform(-spread, spread))))
        return self._body(seller, buyer, [{"item_id": item["item_id"], "quantity": 1}], 0, back_gold=price)

    def trade(self, n: int, progress: Optional[Progress] = None) -> None:
        """`n` trades from a pool of threads: the rings' steps at random places within the first
        `RING_SPAN` of them (each ring one step at a time), honest trades elsewhere; then whatever
        the rings have left, so every ring plays its whole script."""
        task = progress.add_task("trading", total=n) if progress else None
        seeds = [self.rng.randrange(2**32) for _ in range(n)]
        span = int(n * RING_SPAN)
        steps = sum(len(r.steps) for r in self.rings)
        ring_slots = set(self.rng.sample(range(span), min(steps, span)))

        def one(i: int) -> None:
            rng = random.Random(seeds[i])
            if i not in ring_slots or not self._ring_step(rng):
                kind, body = self._plan(rng)
                if rng.random() < self.offer_share:
                    self._through_offer(kind, body, rng)
                else:
                    self._record(kind, body, *self._safe_call("POST", "/trade", body))
            if progress:
                progress.advance(task)

        with ThreadPoolExecutor(self.concurrency) as pool:
            list(pool.map(one, range(n)))
        rng = random.Random(self.rng.randrange(2**32))
        while self._ring_step(rng):
            pass
        self._note_roles()

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
