"""The engine's state in Redis, changed only through two Lua scripts.

Keys (under a namespace, `bazaar` by default):

- `{ns}:players:seq`   counter that hands out player ids (INCR, never a scan)
- `{ns}:player:{id}`   hash: `v` version, `s` compact state (`rules.Player.dumps`)
- `{ns}:usernames`     hash: lower-cased username -> player id (uniqueness)
- `{ns}:counters`      hash: players, player_states, trades, trades_executed,
                       trades_rejected, rejected:{fail_reason}, offer_events, offers_{action}
- `{ns}:outbox`        stream of events for the relay: k (Kafka key), t (type), e (JSON)
- `{ns}:idem:{scope}:{key}`  an Idempotency-Key's record (`engine.idempotency`)
- `{ns}:history:{id}`  stream: the player's trades as it saw them (field e, JSON), capped
- `{ns}:apikeys`, `{ns}:apikey:{hash}`  API keys (`engine.auth`)
- `{ns}:totals`        hash: the economy's running totals, moved by the scripts that move goods
                       (`engine/lua/goods.lua`); `{ns}:audit` while a recount checks them

A trade reads both players, lets `engine.rules` decide, then commits with
`commit.lua`, which writes only if neither player changed since the read.  A
conflict means another request committed first; the trade is decided again on
the fresh state.  Each committed request appends exactly one trade event, and
one state event per changed player, in the same atomic step, and the answer
under the request's Idempotency-Key when it came with one.  A full outbox (the
relay cannot keep up, or Kafka is down) refuses every write until it drains.
"""

from __future__ import annotations

import json
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import Callable, Iterator, Optional, Protocol

import orjson
import redis

from engine import catalog, events, rules
from engine.rules import Offer, Player

MAX_ATTEMPTS = 200  # optimistic retries before answering "busy"; each lost race means another trade won


class StoreUnavailable(Exception):
    """Redis cannot be reached or answered with an error."""


class Contention(Exception):
    """The players changed under this request on every attempt."""


class UsernameTaken(Exception):
    pass


class Backpressure(Exception):
    """The outbox holds its cap of events, or Redis its memory limit: writes wait for the relay."""


class KeyReused(Exception):
    """The request's Idempotency-Key came with another request."""


class TooManyOpenOffers(Exception):
    """The maker holds its cap of open offers."""


@dataclass(frozen=True)
class Idem:
    """A request's Idempotency-Key: its record in Redis (fields fp, status, body), the request's
    fingerprint, and how long the answer is kept."""

    record: str
    fingerprint: str
    keep_s: int


Answer = tuple[int, str]  # an HTTP status and the JSON body, as stored for replay


class Preflight(Protocol):
    """Checks a write makes in its first round trip to Redis, before it reads anything else for
    itself (the caller's API key): `queue` adds their commands to the pipeline, `judge` gets
    their results and raises to refuse the request."""

    def queue(self, pipe: redis.client.Pipeline) -> None: ...

    def judge(self, results: list) -> None: ...

    def load_scripts(self) -> None:
        """Load the scripts `queue` runs by hash (called when Redis answered NOSCRIPT)."""


@dataclass(frozen=True)
class TradeOutcome:
    event: events.TradeEvent
    player_1: Optional[Player]
    player_2: Optional[Player]


@dataclass(frozen=True)
class Done:
    """What a write answered: the answer, and whether it is the stored one of an earlier request."""

    answer: Answer
    replayed: bool = False


def script_text(name: str) -> str:
    """A script of `engine/lua`, with the helpers it includes (a line `-- include NAME.lua`) in place."""
    folder = resources.files("engine").joinpath("lua")
    return "\n".join(folder.joinpath(line.split()[-1]).read_text() if line.startswith("-- include ") else line
                     for line in folder.joinpath(name).read_text().splitlines()) + "\n"


class Store:
    def __init__(self, client: redis.Redis, namespace: str = "bazaar", outbox_max: int = 1_000_000,
                 history_max: int = 10_000):
        self.r = client
        self.ns = namespace
        self.outbox_max = outbox_max
        self.history_max = history_max
        self.k_seq = f"{namespace}:players:seq"
        self.k_usernames = f"{namespace}:usernames"
        self.k_counters = f"{namespace}:counters"
        self.k_outbox = f"{namespace}:outbox"
        self.k_no_idem = f"{namespace}:idem:-"  # a placeholder key for scripts run without an Idempotency-Key
        self.k_totals = f"{namespace}:totals"  # the economy's running totals (engine/lua/goods.lua)
        self.k_audit = f"{namespace}:audit"  # while an audit of them runs: its cursor and its count
        self._commit_script = client.register_script(script_text("commit.lua"))
        self._create = client.register_script(script_text("create_player.lua"))
        # called with (op, seconds) after each round trip of a read or a commit (the engine's metrics)
        self.round_trip: Optional[Callable[[str, float], None]] = None

    def player_key(self, player_id: int) -> str:
        return f"{self.ns}:player:{player_id}"

    def history_key(self, player_id: int) -> str:
        return f"{self.ns}:history:{player_id}"

    def history(self, player_id: int, limit: int, before: Optional[str] = None) -> tuple[list[dict], Optional[str]]:
        """A player's trades, newest first: up to `limit` older than the entry `before` (a stream id),
        and the id to continue from when there are more."""
        top = "+"
        if before is not None:  # the entry just older than `before` (an id is two unsigned 64-bit numbers)
            ms, seq = (int(part) for part in before.split("-"))
            if (ms, seq) == (0, 0):
                return [], None
            top = f"{ms}-{seq - 1}" if seq else f"{ms - 1}-{2**64 - 1}"
        with redis_errors():
            rows = self.r.xrevrange(self.history_key(player_id), max=top, min="-", count=limit + 1)
        page = [json.loads(fields[b"e"]) for _, fields in rows[:limit]]
        return page, (rows[limit - 1][0].decode() if len(rows) > limit else None)

    # -- reads -------------------------------------------------------------
    def get_player(self, player_id: int) -> Optional[Player]:
        return self.get_players([player_id])[0]

    def get_players(self, ids: list[int]) -> list[Optional[Player]]:
        return self.read(ids)[1]

    def read(
        self, ids: list[int], preflight: Optional[Preflight] = None, idem: Optional[Idem] = None,
        more: Callable[[redis.client.Pipeline], None] = lambda pipe: None,
    ) -> tuple[Optional[Answer], list[Optional[Player]], list]:
        """One round trip: the preflight's checks first (judged before anything is used), the
        players, `more`, and the Idempotency-Key's record last: a request with the same key that
        commits while this one reads has then left its answer where this read finds it (its
        script writes the answer with its effects), so no decision is made on the effects of a
        repeat without seeing its answer.  Returns the stored answer to replay (if any), the
        players and the results of `more`."""
        with redis_errors():
            for attempt in (1, 2):
                pipe = self.r.pipeline(transaction=False)
                if preflight is not None:
                    preflight.queue(pipe)
                n_pre = len(pipe)
                for pid in ids:
                    pipe.hmget(self.player_key(pid), "v", "s")
                more(pipe)
                if idem is not None:
                    pipe.hmget(idem.record, "fp", "status", "body")
                try:
                    start = time.perf_counter()
                    rows = pipe.execute()
                    if self.round_trip is not None:
                        self.round_trip("read", time.perf_counter() - start)
                    break
                except redis.exceptions.NoScriptError:  # Redis restarted: load the preflight's scripts, once
                    if attempt == 2 or preflight is None:
                        raise
                    preflight.load_scripts()
        if preflight is not None:
            preflight.judge(rows[:n_pre])
        rows = rows[n_pre:]
        replay = None
        if idem is not None:
            replay = _stored(idem, rows.pop())
        players = [None if v is None else Player.loads(pid, int(v), s) for pid, (v, s) in zip(ids, rows)]
        return replay, players, rows[len(ids):]

    def ping(self) -> None:
        with redis_errors():
            self.r.ping()

    def player_count(self) -> int:
        with redis_errors():
            return int(self.r.get(self.k_seq) or 0)

    def counters(self) -> dict[str, int]:
        with redis_errors():
            return {k.decode(): int(v) for k, v in self.r.hgetall(self.k_counters).items()}

    # -- writes ------------------------------------------------------------
    def create_player(
        self, cls: catalog.PlayerClass, username: Optional[str], rng: random.Random,
        answer: Callable[[Player], Answer] = lambda p: (201, ""), idem: Optional[Idem] = None,
        preflight: Optional[Preflight] = None,
    ) -> Done:
        """A new player with the class's starting kit; a random unused name if none is given.
        `answer` is the reply for the new player, stored under `idem` in the same step."""

        def checks(pipe: redis.client.Pipeline) -> None:
            pipe.xlen(self.k_outbox)
            if username:
                pipe.hexists(self.k_usernames, username.lower())

        replay, _, (outbox, *taken) = self.read([], preflight, idem, checks)
        if replay is not None:
            return Done(replay, True)
        # refusals known before taking an id, so a refused request leaves no gap (the script checks again)
        if outbox >= self.outbox_max:
            raise Backpressure(f"the outbox holds {self.outbox_max} events")
        if taken and taken[0]:
            raise UsernameTaken(username)
        with redis_errors():
            player_id = int(self.r.incr(self.k_seq))
            for _ in range(100):
                name = username or catalog.random_username(rng)
                player = rules.new_player(player_id, name, cls)
                event = events.state_event_json(player.api_state, events.utc_now_iso())
                reply = answer(player)
                args = [name.lower(), player_id, player.dumps(), str(player_id), event,
                        self.outbox_max, *self._idem_args(idem, reply)]
                keys = [self.k_outbox, self.k_counters, self.k_usernames, self.player_key(player_id),
                        idem.record if idem else self.k_no_idem, self.k_totals, self.k_audit]
                done = self._written(self._create(keys=keys, args=args), reply)
                if done is not None:
                    return done
                if username:
                    raise UsernameTaken(username)
        raise Contention("no free username found in 100 draws")

    def trade(
        self, o1: Offer, o2: Offer, answer: Callable[[TradeOutcome], Answer] = lambda o: (200, ""),
        idem: Optional[Idem] = None, preflight: Optional[Preflight] = None,
    ) -> Done:
        """Decide and commit one trade; a rejected trade changes nothing but is recorded.
        `answer` is the reply to the outcome, stored under `idem` in the same step."""
        ids = list(dict.fromkeys([o1.player_id, o2.player_id]))
        for attempt in range(MAX_ATTEMPTS):
            replay, players, _ = self.read(ids, preflight if attempt == 0 else None, idem if attempt == 0 else None)
            if replay is not None:
                return Done(replay, True)
            snapshot = dict(zip(ids, players))
            outcome, changed = _decide(snapshot[o1.player_id], snapshot[o2.player_id], o1, o2)
            step = Step(outcome.event.trade_time, answer(outcome), changed, outcome.event)
            done = self.try_commit(snapshot, step, idem)
            if done is not None:
                return done
        raise Contention(f"players {ids} changed on each of {MAX_ATTEMPTS} attempts")

    def _idem_args(self, idem: Optional[Idem], reply: Answer) -> list:
        if idem is None:
            return ["", "", "", 0]
        return [idem.fingerprint, *reply, idem.keep_s]

    def _written(self, result, reply: Answer) -> Optional[Done]:
        """A write script's result: written (the reply), lost a race (None), or another answer."""
        if isinstance(result, list):  # the Idempotency-Key holds an answer already: ["done", status, body]
            return Done((int(result[1]), result[2].decode()), True)
        if result == -1:
            raise Backpressure(f"the outbox holds {self.outbox_max} events")
        if result == -3:
            raise KeyReused()
        return Done(reply) if result == 1 else None

    def try_commit(self, snapshot: dict[int, Optional[Player]], step: "Step", idem: Optional[Idem]) -> Optional[Done]:
        """Commit a decided step if no player it read changed (and its offer is still open): None if one did."""
        ids = list(snapshot)
        versions = ["" if snapshot[i] is None else str(snapshot[i].version) for i in ids]
        states = [step.changed[i].dumps() if i in step.changed else "" for i in ids]
        trade = step.trade
        logged = [_history_entry(trade, i) if trade is not None and snapshot[i] is not None else "" for i in ids]
        bumps = list(step.bumps)
        evs: list[str | bytes] = []
        if trade is not None:
            bumps += ["trades", "trades_executed" if trade.valid_trade else "trades_rejected"]
            if not trade.valid_trade:
                bumps.append(f"rejected:{trade.fail_reason}")
            evs += [trade.kafka_key, trade.event_type, trade.model_dump_json()]
        for ev in step.events:
            bumps.append(f"{ev.event_type}_events")  # offer_events: what the `offers` table must reach
            evs += [ev.kafka_key, ev.event_type, ev.model_dump_json()]
        for player in step.changed.values():
            bumps.append("player_states")
            evs += [str(player.player_id), events.PLAYER_STATE, events.state_event_json(player.api_state, step.when)]
        keys = [self.k_outbox, self.k_counters, idem.record if idem else self.k_no_idem]
        keys += [self.player_key(i) for i in ids] + [self.history_key(i) for i in ids]
        offer = ""
        if step.offer is not None:
            keys += step.offer.keys
            offer = json.dumps({**step.offer.spec, "maker": ids.index(step.offer.maker) + 1})
        keys += [self.k_totals, self.k_audit]
        head = [len(ids), self.outbox_max, *self._idem_args(idem, step.reply), self.history_max]
        with redis_errors():
            start = time.perf_counter()
            result = self._commit_script(keys=keys, args=[*head, *versions, *states, *logged, " ".join(bumps), offer, *evs])
            if self.round_trip is not None:
                self.round_trip("commit", time.perf_counter() - start)
        if result == -4:
            raise TooManyOpenOffers()
        return self._written(result, step.reply)


@dataclass(frozen=True)
class OfferOp:
    """An offer opened or closed by a step: the keys `commit.lua` touches for it and what it does."""

    maker: int
    keys: list[str]
    spec: dict


@dataclass(frozen=True)
class Step:
    """One decided engine step, committed whole by `commit.lua`: the players' new states (each also
    a player_state event), the trade (logged and counted) if any, other events, an offer step, the
    counters to bump beside the trade's, and the answer."""

    when: str
    reply: Answer
    changed: dict[int, Player] = field(default_factory=dict)
    trade: Optional[events.TradeEvent] = None
    events: tuple[events.Envelope, ...] = ()
    offer: Optional[OfferOp] = None
    bumps: tuple[str, ...] = ()


def _history_entry(trade: events.TradeEvent, player_id: int) -> bytes:
    """The trade as one of its players sees it (a line of its history)."""
    mine, theirs = ((trade.player_1, trade.player_2) if trade.player_1.player_id == player_id
                    else (trade.player_2, trade.player_1))

    def goods(side: events.TradeSide) -> dict:
        return {"items": [{"item_id": i.item_id, "quantity": i.quantity} for i in side.items_traded],
                "gold": side.gold_traded}

    return orjson.dumps({"trade_id": trade.trade_id, "trade_time": trade.trade_time,
                         "status": "executed" if trade.valid_trade else "rejected", "fail_reason": trade.fail_reason,
                         "counterparty": theirs.player_id, "gave": goods(mine), "received": goods(theirs),
                         "offer_id": trade.offer_id})


def _stored(idem: Idem, row: list) -> Optional[Answer]:
    """The answer stored under an Idempotency-Key for this request, None if there is none yet."""
    fp, status, body = row
    if fp is None:
        return None
    if fp.decode() != idem.fingerprint:
        raise KeyReused()
    return int(status), body.decode()


def _decide(
    p1: Optional[Player], p2: Optional[Player], o1: Offer, o2: Offer
) -> tuple[TradeOutcome, dict[int, Player]]:
    when = events.utc_now_iso()
    reason = rules.trade_fail_reason(p1, p2, o1, o2)
    changed: dict[int, Player] = {}
    if reason is None:
        assert p1 is not None and p2 is not None
        p1, p2 = rules.apply_trade(p1, p2, o1, o2)
        changed = {p1.player_id: p1, p2.player_id: p2}
    event = events.trade_event(events.new_id(), when, reason, rules.trade_side(o1), rules.trade_side(o2))
    return TradeOutcome(event, p1, p2), changed


@contextmanager
def redis_errors() -> Iterator[None]:
    """Turn redis-py's connection and server errors into StoreUnavailable."""
    try:
        yield
    except redis.exceptions.OutOfMemoryError as exc:  # maxmemory with noeviction: refused whole, nothing written
        raise Backpressure("Redis is at its memory limit") from exc
    except redis.RedisError as exc:
        raise StoreUnavailable(str(exc)) from exc
