"""The engine's state in Redis, changed only through two Lua scripts.

Keys (under a namespace, `bazaar` by default):

- `{ns}:players:seq`   counter that hands out player ids (INCR, never a scan)
- `{ns}:player:{id}`   hash: `v` version, `s` compact state (`rules.Player.dumps`)
- `{ns}:usernames`     hash: lower-cased username -> player id (uniqueness)
- `{ns}:counters`      hash: players, player_states, trades, trades_executed,
                       trades_rejected, rejected:{fail_reason}
- `{ns}:outbox`        stream of events for the relay: k (Kafka key), t (type), e (JSON)
- `{ns}:idem:{scope}:{key}`  an Idempotency-Key's record (`engine.idempotency`)
- `{ns}:apikeys`, `{ns}:apikey:{hash}`  API keys (`engine.auth`)

A trade reads both players, lets `engine.rules` decide, then commits with
`commit.lua`, which writes only if neither player changed since the read.  A
conflict means another request committed first; the trade is decided again on
the fresh state.  Each committed request appends exactly one trade event, and
one state event per changed player, in the same atomic step, and the answer
under the request's Idempotency-Key when it came with one.  A full outbox (the
relay cannot keep up, or Kafka is down) refuses every write until it drains.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Callable, Iterator, Optional

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


class LostClaim(Exception):
    """The request's Idempotency-Key lock lapsed and another request holds the key now."""


@dataclass(frozen=True)
class Claim:
    """An Idempotency-Key this request holds: its record in Redis and the lock's token."""

    record: str
    token: str
    keep_s: int


Answer = tuple[int, str]  # an HTTP status and the JSON body, as stored for replay


@dataclass(frozen=True)
class TradeOutcome:
    event: events.TradeEvent
    player_1: Optional[Player]
    player_2: Optional[Player]


def _script(name: str) -> str:
    return resources.files("engine").joinpath("lua", name).read_text()


class Store:
    def __init__(self, client: redis.Redis, namespace: str = "bazaar", outbox_max: int = 1_000_000):
        self.r = client
        self.ns = namespace
        self.outbox_max = outbox_max
        self.k_seq = f"{namespace}:players:seq"
        self.k_usernames = f"{namespace}:usernames"
        self.k_counters = f"{namespace}:counters"
        self.k_outbox = f"{namespace}:outbox"
        self.k_no_claim = f"{namespace}:idem:-"  # a placeholder key for scripts run without a claim
        self._commit = client.register_script(_script("commit.lua"))
        self._create = client.register_script(_script("create_player.lua"))

    def player_key(self, player_id: int) -> str:
        return f"{self.ns}:player:{player_id}"

    # -- reads -------------------------------------------------------------
    def get_player(self, player_id: int) -> Optional[Player]:
        return self.get_players([player_id])[0]

    def get_players(self, ids: list[int]) -> list[Optional[Player]]:
        with redis_errors():
            pipe = self.r.pipeline(transaction=False)
            for pid in ids:
                pipe.hmget(self.player_key(pid), "v", "s")
            rows = pipe.execute()
        return [None if v is None else Player.loads(pid, int(v), s) for pid, (v, s) in zip(ids, rows)]

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
        answer: Callable[[Player], Answer] = lambda p: (201, ""), claim: Optional[Claim] = None,
    ) -> tuple[Player, Answer]:
        """A new player with the class's starting kit; a random unused name if none is given.
        `answer` is the reply for the new player, stored under `claim` in the same step."""
        with redis_errors():
            # refusals known before taking an id, so a refused request leaves no gap (the script checks again)
            if self.r.xlen(self.k_outbox) >= self.outbox_max:
                raise Backpressure(f"the outbox holds {self.outbox_max} events")
            if username and self.r.hexists(self.k_usernames, username.lower()):
                raise UsernameTaken(username)
            player_id = int(self.r.incr(self.k_seq))
            for _ in range(100):
                name = username or catalog.random_username(rng)
                player = rules.new_player(player_id, name, cls)
                event = events.player_state_event(player.to_state(), events.utc_now_iso())
                status, body = reply = answer(player)
                args = [name.lower(), player_id, player.dumps(), event.kafka_key, event.model_dump_json(),
                        self.outbox_max, *self._claim_args(claim), status, body, claim.keep_s if claim else 0]
                keys = [self.k_outbox, self.k_counters, self.k_usernames, self.player_key(player_id),
                        claim.record if claim else self.k_no_claim]
                done = self._check_written(self._create(keys=keys, args=args))
                if done:
                    return player, reply
                if username:
                    raise UsernameTaken(username)
        raise Contention("no free username found in 100 draws")

    def trade(
        self, o1: Offer, o2: Offer,
        answer: Callable[[TradeOutcome], Answer] = lambda o: (200, ""), claim: Optional[Claim] = None,
    ) -> tuple[TradeOutcome, Answer]:
        """Decide and commit one trade; a rejected trade changes nothing but is recorded.
        `answer` is the reply to the outcome, stored under `claim` in the same step."""
        ids = list(dict.fromkeys([o1.player_id, o2.player_id]))
        for _ in range(MAX_ATTEMPTS):
            snapshot = dict(zip(ids, self.get_players(ids)))
            p1, p2 = snapshot[o1.player_id], snapshot[o2.player_id]
            outcome, changed = _decide(p1, p2, o1, o2)
            reply = answer(outcome)
            if self._try_commit(snapshot, changed, outcome.event, reply, claim):
                return outcome, reply
        raise Contention(f"players {ids} changed on each of {MAX_ATTEMPTS} attempts")

    @staticmethod
    def _claim_args(claim: Optional[Claim]) -> list[str]:
        return [claim.token if claim else ""]

    def _check_written(self, result: int) -> bool:
        """A script's answer: written (True), a lost race (False), or an exception."""
        if result == -1:
            raise Backpressure(f"the outbox holds {self.outbox_max} events")
        if result == -2:
            raise LostClaim()
        return bool(result)

    def _try_commit(
        self, snapshot: dict[int, Optional[Player]], changed: dict[int, Player], trade: events.TradeEvent,
        reply: Answer, claim: Optional[Claim],
    ) -> bool:
        ids = list(snapshot)
        versions = ["" if snapshot[i] is None else str(snapshot[i].version) for i in ids]
        states = [changed[i].dumps() if i in changed else "" for i in ids]
        bumps = ["trades", "trades_executed" if trade.valid_trade else "trades_rejected"]
        if not trade.valid_trade:
            bumps.append(f"rejected:{trade.fail_reason}")
        evs: list[str] = [trade.kafka_key, trade.event_type, trade.model_dump_json()]
        for player in changed.values():
            bumps.append("player_states")
            ev = events.player_state_event(player.to_state(), trade.event_time)
            evs += [ev.kafka_key, ev.event_type, ev.model_dump_json()]
        keys = [self.k_outbox, self.k_counters, claim.record if claim else self.k_no_claim]
        keys += [self.player_key(i) for i in ids]
        head = [len(ids), self.outbox_max, *self._claim_args(claim), *reply, claim.keep_s if claim else 0]
        with redis_errors():
            return self._check_written(self._commit(keys=keys, args=[*head, *versions, *states, " ".join(bumps), *evs]))


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
