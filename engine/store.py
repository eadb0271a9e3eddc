"""The engine's state in Redis, changed only through two Lua scripts.

Keys (under a namespace, `bazaar` by default):

- `{ns}:players:seq`   counter that hands out player ids (INCR, never a scan)
- `{ns}:player:{id}`   hash: `v` version, `s` compact state (`rules.Player.dumps`)
- `{ns}:usernames`     hash: lower-cased username -> player id (uniqueness)
- `{ns}:counters`      hash: players, player_states, trades, trades_executed,
                       trades_rejected, rejected:{fail_reason}
- `{ns}:outbox`        stream of events for the relay: k (Kafka key), t (type), e (JSON)

A trade reads both players, lets `engine.rules` decide, then commits with
`commit.lua`, which writes only if neither player changed since the read.  A
conflict means another request committed first; the trade is decided again on
the fresh state.  Each committed request appends exactly one trade event, and
one state event per changed player, in the same atomic step.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Iterator, Optional

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


@dataclass(frozen=True)
class TradeOutcome:
    event: events.TradeEvent
    player_1: Optional[Player]
    player_2: Optional[Player]


def _script(name: str) -> str:
    return resources.files("engine").joinpath("lua", name).read_text()


class Store:
    def __init__(self, client: redis.Redis, namespace: str = "bazaar"):
        self.r = client
        self.ns = namespace
        self.k_seq = f"{namespace}:players:seq"
        self.k_usernames = f"{namespace}:usernames"
        self.k_counters = f"{namespace}:counters"
        self.k_outbox = f"{namespace}:outbox"
        self._commit = client.register_script(_script("commit.lua"))
        self._create = client.register_script(_script("create_player.lua"))

    def player_key(self, player_id: int) -> str:
        return f"{self.ns}:player:{player_id}"

    # -- reads -------------------------------------------------------------
    def get_player(self, player_id: int) -> Optional[Player]:
        return self.get_players([player_id])[0]

    def get_players(self, ids: list[int]) -> list[Optional[Player]]:
        with _translate_errors():
            pipe = self.r.pipeline(transaction=False)
            for pid in ids:
                pipe.hmget(self.player_key(pid), "v", "s")
            rows = pipe.execute()
        return [None if v is None else Player.loads(pid, int(v), s) for pid, (v, s) in zip(ids, rows)]

    def ping(self) -> None:
        with _translate_errors():
            self.r.ping()

    def player_count(self) -> int:
        with _translate_errors():
            return int(self.r.get(self.k_seq) or 0)

    def counters(self) -> dict[str, int]:
        with _translate_errors():
            return {k.decode(): int(v) for k, v in self.r.hgetall(self.k_counters).items()}

    # -- writes ------------------------------------------------------------
    def create_player(
        self, cls: catalog.PlayerClass, username: Optional[str], rng: random.Random
    ) -> Player:
        """A new player with the class's starting kit; a random unused name if none is given."""
        with _translate_errors():
            player_id = int(self.r.incr(self.k_seq))
            for _ in range(100):
                name = username or catalog.random_username(rng)
                player = rules.new_player(player_id, name, cls)
                event = events.player_state_event(player.to_state(), events.utc_now_iso())
                args = [name.lower(), player_id, player.dumps(), event.kafka_key, event.model_dump_json()]
                keys = [self.k_outbox, self.k_counters, self.k_usernames, self.player_key(player_id)]
                if self._create(keys=keys, args=args):
                    return player
                if username:
                    raise UsernameTaken(username)
        raise Contention("no free username found in 100 draws")

    def trade(self, o1: Offer, o2: Offer) -> TradeOutcome:
        """Decide and commit one trade; a rejected trade changes nothing but is recorded."""
        ids = list(dict.fromkeys([o1.player_id, o2.player_id]))
        for _ in range(MAX_ATTEMPTS):
            snapshot = dict(zip(ids, self.get_players(ids)))
            p1, p2 = snapshot[o1.player_id], snapshot[o2.player_id]
            outcome, changed = _decide(p1, p2, o1, o2)
            if self._try_commit(snapshot, changed, outcome.event):
                return outcome
        raise Contention(f"players {ids} changed on each of {MAX_ATTEMPTS} attempts")

    def _try_commit(
        self, snapshot: dict[int, Optional[Player]], changed: dict[int, Player], trade: events.TradeEvent
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
        keys = [self.k_outbox, self.k_counters] + [self.player_key(i) for i in ids]
        with _translate_errors():
            return bool(self._commit(keys=keys, args=[len(ids), *versions, *states, " ".join(bumps), *evs]))


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
def _translate_errors() -> Iterator[None]:
    """Turn redis-py's connection and server errors into StoreUnavailable."""
    try:
        yield
    except redis.RedisError as exc:
        raise StoreUnavailable(str(exc)) from exc
