"""Offers between players, their goods held in escrow: open, accept, cancel, expire.

An offer names its maker (`from_player_id`), its addressee (`to_player_id`),
what the maker gives and what it wants back.  Opening it moves what it gives
out of the maker's inventory and gold into escrow (the offer's record), in the
same atomic step (`commit.lua`) as the offer's record, its `opened` event and
the maker's new state; the units keep their room in the maker's capacity
(`rules.Player.escrow_units`), so they always fit when they come back.  It then
ends exactly once, by the first of:

- `accepted` by the addressee: the escrow goes to the addressee and what was
  wanted to the maker, with a trade event carrying `offer_id` (so the seed's
  tables count it as a trade); an accept the rules refuse (the addressee lacks
  what is wanted, or either would exceed its capacity) is recorded as a
  rejected trade and leaves the offer open;
- `cancelled` by its maker, or `expired` at `expires_at` (the relay's sweep,
  `sweep`, within a second or two, or the first accept or cancel that reaches
  it past due, answered 409 `offer_expired`): the escrow returns to the maker.

Keys (under the store's namespace):

- `{ns}:offer:{id}`            hash: o (the offer, JSON), st (status), n (its number),
                               closed_at, trade_id; kept `offer_keep_s` once closed
- `{ns}:offers:expiry`         sorted set: the open offers by expiry (ms)
- `{ns}:offers:seq`            counter numbering offers (the lists' order and cursor)
- `{ns}:offers:{pid}:{status}` sorted sets by number: a player's offers (made or addressed)
                               open, accepted, cancelled, expired, and `all`; closed ones capped
- player hash field `o`        the number of open offers the player made (its cap)

Every decision is made in Python on a snapshot and committed only if neither
player changed and the offer is still open (optimistic, as trades are); so of
any number of accepts or cancels racing on one offer exactly one wins.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Optional

from engine import events, jsonio, rules
from engine.rules import Offer, Player
from engine.store import (MAX_ATTEMPTS, Answer, Contention, Done, Idem, OfferOp, Preflight, Step, Store,
                          TooManyOpenOffers, TradeOutcome, redis_errors, script_text)

OPEN, ACCEPTED, CANCELLED, EXPIRED = "open", "accepted", "cancelled", "expired"
STATUSES = (OPEN, ACCEPTED, CANCELLED, EXPIRED)
REFUSED = "refused"  # an offer event, not a status: an accept a game rule refused (the offer stays open)
ACCEPT_REFUSED = "accept_refused"
OFFER_NOT_OPEN = "offer_not_open"
OFFER_EXPIRED = "offer_expired"
TOO_MANY_OPEN_OFFERS = "too_many_open_offers"
FIELDS = ("o", "st", "closed_at", "trade_id")


class OfferRefused(Exception):
    """The request cannot be done on this offer: an HTTP status, a stable code, a message."""

    def __init__(self, status: int, code: str, message: str, retry_after_s: Optional[int] = None):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after_s = status, code, message, retry_after_s


class UnknownOffer(Exception):
    pass


def _now_ms() -> int:
    return int(time.time() * 1000)


def _iso_ms(ms: int) -> str:
    return events.utc_iso(datetime.fromtimestamp(ms / 1000, timezone.utc))


def _goods(side: Offer) -> dict:
    return {"items": [rules.item_stack(i, q).model_dump() for i, q in sorted(side.items.items())],
            "gold": side.gold}


@dataclass(frozen=True)
class OfferRecord:
    offer_id: str
    from_player_id: int
    to_player_id: int
    give: Offer  # the maker's side (its player_id is the maker)
    want: Offer  # the addressee's side
    created_at: str
    expires_ms: int
    status: str = OPEN
    closed_at: Optional[str] = None
    trade_id: Optional[str] = None

    @property
    def expires_at(self) -> str:
        return _iso_ms(self.expires_ms)

    def dumps(self) -> str:
        """The offer's lasting part, as stored (`o`); `totals.lua` reads `give` of it."""
        return json.dumps({"from": self.from_player_id, "to": self.to_player_id,
                           "give": {"items": sorted(self.give.items.items()), "gold": self.give.gold},
                           "want": {"items": sorted(self.want.items.items()), "gold": self.want.gold},
                           "created_at": self.created_at, "expires_ms": self.expires_ms}, separators=(",", ":"))

    @classmethod
    def loads(cls, offer_id: str, row: list) -> Optional["OfferRecord"]:
        raw, status, closed_at, trade_id = row
        if raw is None:
            return None
        o = json.loads(raw)
        give = Offer(o["from"], dict(o["give"]["items"]), o["give"]["gold"])
        want = Offer(o["to"], dict(o["want"]["items"]), o["want"]["gold"])
        return cls(offer_id, o["from"], o["to"], give, want, o["created_at"], o["expires_ms"], status.decode(),
                   closed_at.decode() if closed_at else None, trade_id.decode() if trade_id else None)

    def body(self) -> dict:
        """The offer as the API answers it."""
        return {"offer_id": self.offer_id, "status": self.status, "from_player_id": self.from_player_id,
                "to_player_id": self.to_player_id, "give": _goods(self.give), "want": _goods(self.want),
                "created_at": self.created_at, "expires_at": self.expires_at, "closed_at": self.closed_at,
                "trade_id": self.trade_id}

    def event(self, action: str, when: str, trade_id: Optional[str] = None,
              reason: Optional[str] = None) -> events.OfferEvent:
        return events.OfferEvent(
            event_id=events.new_id(), event_time=when, offer_id=self.offer_id, action=action, action_time=when,
            from_player_id=self.from_player_id, to_player_id=self.to_player_id,
            give=events.Goods(**_goods(self.give)), want=events.Goods(**_goods(self.want)),
            created_at=self.created_at, expires_at=self.expires_at, trade_id=trade_id, reason=reason)

    def refuse_unless_open(self) -> None:
        if self.status == EXPIRED:
            raise OfferRefused(409, OFFER_EXPIRED, f"offer {self.offer_id} expired at {self.expires_at}")
        if self.status != OPEN:
            raise OfferRefused(409, OFFER_NOT_OPEN, f"offer {self.offer_id} is {self.status}")


@dataclass(frozen=True)
class Totals:
    players: int
    open_offers: int
    inventory_gold: int
    escrow_gold: int
    inventory_items: dict[int, int]
    escrow_items: dict[int, int]


def _pairs_of(flat: list) -> dict[str, int]:
    """A hash as HGETALL gives it in a script's reply (field, value, ...)."""
    return {flat[i].decode(): int(flat[i + 1]) for i in range(0, len(flat), 2)}


def _totals_of(players: int, held: dict[bytes, bytes]) -> Totals:
    """The running totals hash (`goods.lua`) as `Totals`."""
    fields = {k.decode(): int(v) for k, v in held.items()}
    return Totals(players, fields.get("open", 0), fields.get("g", 0), fields.get("eg", 0),
                  {int(k[2:]): v for k, v in fields.items() if k.startswith("i:") and v},
                  {int(k[2:]): v for k, v in fields.items() if k.startswith("e:") and v})


@dataclass(frozen=True)
class Audit:
    """A recount of the economy (`found`) beside the running totals (`kept`) at the same instant."""

    found: Totals
    kept: Totals

    @property
    def matches(self) -> bool:
        return self.found == self.kept


class OfferBook:
    def __init__(self, store: Store, max_open: int = 20, keep_s: int = 7 * 24 * 3600,
                 refusals: tuple[int, float] = (5, 5 / 60)):
        self.store = store
        self.max_open = max_open
        self.keep_s = keep_s
        self.refusals = refusals  # refused accepts of one offer: a bucket's size and its refill a second
        ns = store.ns
        self.k_expiry = f"{ns}:offers:expiry"
        self.k_seq = f"{ns}:offers:seq"
        self._totals = store.r.register_script(script_text("totals.lua"))
        self._audit = store.r.register_script(script_text("audit.lua"))
        self._bucket = store.r.register_script(script_text("bucket.lua"))

    def offer_key(self, offer_id: str) -> str:
        return f"{self.store.ns}:offer:{offer_id}"

    def list_key(self, player_id: int, status: str) -> str:
        return f"{self.store.ns}:offers:{player_id}:{status}"

    def _op(self, offer: OfferRecord, status: str, spec: dict) -> OfferOp:
        keys = [self.offer_key(offer.offer_id), self.k_expiry, self.k_seq]
        for pid in (offer.from_player_id, offer.to_player_id):
            keys += [self.list_key(pid, OPEN), self.list_key(pid, status), self.list_key(pid, "all")]
        return OfferOp(offer.from_player_id, keys,
                       {"id": offer.offer_id, "keep": self.store.history_max, **spec})

    def _close(self, offer: OfferRecord, status: str, when: str, trade_id: str = "") -> OfferOp:
        return self._op(offer, status, {"op": "close", "status": status, "closed_at": when, "trade_id": trade_id,
                                        "keep_s": self.keep_s})

    # -- reads ---------------------------------------------------------------
    def get(self, offer_id: str) -> Optional[OfferRecord]:
        with redis_errors():
            return OfferRecord.loads(offer_id, self.store.r.hmget(self.offer_key(offer_id), *FIELDS))

    def list(self, player_id: int, status: Optional[str], limit: int,
             before: Optional[int] = None) -> tuple[list[OfferRecord], Optional[str]]:
        """A player's offers (made or addressed), newest first: up to `limit` numbered below `before`, and
        the cursor to continue from when there are more. A closed offer past its keep is left out."""
        top = "+inf" if before is None else f"({before}"
        with redis_errors():
            rows = self.store.r.zrevrangebyscore(self.list_key(player_id, status or "all"), top, "-inf",
                                                 start=0, num=limit + 1, withscores=True)
            pipe = self.store.r.pipeline(transaction=False)
            for member, _ in rows[:limit]:
                pipe.hmget(self.offer_key(member.decode()), *FIELDS)
            found = pipe.execute()
        page = [r for r in (OfferRecord.loads(m.decode(), row) for (m, _), row in zip(rows, found)) if r is not None]
        return page, (str(int(rows[limit - 1][1])) if len(rows) > limit else None)

    def totals(self) -> Totals:
        """Gold and units per item in every inventory and in escrow: the running totals the scripts
        that move goods keep (`goods.lua`), read in one step whatever the number of players.  A Redis
        whose totals were never counted (filled by an engine without them) is counted once first, in
        one atomic step (`totals.lua`: its time grows with the players)."""
        with redis_errors():
            pipe = self.store.r.pipeline(transaction=True)
            pipe.hgetall(self.store.k_totals).hget(self.store.k_counters, "players")
            held, players = pipe.execute()
            if b"counted" not in held:
                self._totals(keys=[self.store.k_seq, self.k_expiry, self.store.k_totals],
                             args=[f"{self.store.ns}:player:", f"{self.store.ns}:offer:"])
                return self.totals()
        return _totals_of(int(players or 0), held)

    def audit_step(self, chunk: int, ttl_s: int = 600) -> list:
        """One step of an audit (`audit.lua`): the next `chunk` players counted; its raw reply."""
        keys = [self.store.k_audit, self.store.k_seq, self.store.k_totals, self.k_expiry, self.store.k_counters]
        with redis_errors():
            return self._audit(keys=keys, args=[f"{self.store.ns}:player:", f"{self.store.ns}:offer:", chunk, ttl_s])

    def audit(self, chunk: int = 100, pause_s: float = 0.04, ttl_s: int = 600,
              progress: Callable[[int, int], None] = lambda done, of: None) -> Audit:
        """Count every inventory and the escrow again, `chunk` players a step with `pause_s` between
        steps (Redis answers trades meanwhile), and hold the count beside the running totals read in
        the same instant as the last step (`audit.lua`)."""
        self.totals()  # the running totals exist before anything is held against them
        while True:
            got = self.audit_step(chunk, ttl_s)
            if got[0] == b"more":
                progress(int(got[1]), int(got[2]))
                time.sleep(pause_s)
                continue
            _, counted, escrow_gold, escrow_items, opened, running, created = got
            counted = _pairs_of(counted)
            found = Totals(counted.pop("players", 0), int(opened), counted.pop("g", 0), int(escrow_gold),
                           {int(k[2:]): v for k, v in counted.items() if k.startswith("i:") and v},
                           {int(escrow_items[i]): int(escrow_items[i + 1])
                            for i in range(0, len(escrow_items), 2) if int(escrow_items[i + 1])})
            running = _pairs_of(running)
            kept = _totals_of(int(created), {k.encode(): str(v).encode() for k, v in running.items()})
            return Audit(found, kept)

    # -- writes --------------------------------------------------------------
    def open(
        self, maker_id: int, addressee_id: int, give: Offer, want: Offer, expires_in_s: int,
        answer: Callable[[OfferRecord, Player], Answer], idem: Optional[Idem] = None,
        preflight: Optional[Preflight] = None,
    ) -> Done:
        """Open an offer, its `give` into escrow; OfferRefused when the maker cannot give it. `answer` is
        the reply for the offer and the maker's new state."""
        give = Offer(maker_id, give.items, give.gold)
        want = Offer(addressee_id, want.items, want.gold)
        ids = list(dict.fromkeys([maker_id, addressee_id]))
        for attempt in range(MAX_ATTEMPTS):
            # the key's record on every read: a repeat that committed meanwhile is replayed, never refused
            replay, players, (held_open,) = self.store.read(
                ids, preflight if attempt == 0 else None, idem,
                lambda pipe: pipe.hget(self.store.player_key(maker_id), "o"))
            if replay is not None:
                return Done(replay, True)
            snapshot = dict(zip(ids, players))
            maker, addressee = snapshot[maker_id], snapshot[addressee_id]
            reason = rules.open_fail_reason(maker, addressee, give, want)
            if reason is not None:
                raise OfferRefused(409, reason, _OPEN_REFUSALS.get(reason, reason))
            if int(held_open or 0) >= self.max_open:
                raise _too_many(maker_id, self.max_open)
            assert maker is not None
            now = _now_ms()
            when = _iso_ms(now)
            offer = OfferRecord(events.new_id(), maker_id, addressee_id, give, want, when, now + expires_in_s * 1000)
            op = self._op(offer, OPEN, {"op": "open", "offer": offer.dumps(), "expires_ms": offer.expires_ms,
                                        "max_open": self.max_open})
            escrowed = rules.into_escrow(maker, give)
            step = Step(when, answer(offer, escrowed), {maker_id: escrowed},
                        events=(offer.event("opened", when),), offer=op, bumps=("offers_opened",))
            try:
                done = self.store.try_commit({maker_id: maker}, step, idem)  # the addressee only has to exist
            except TooManyOpenOffers:
                raise _too_many(maker_id, self.max_open) from None
            if done is not None:
                return done
        raise Contention(f"player {maker_id} changed on each of {MAX_ATTEMPTS} attempts")

    def accept(
        self, offer_id: str, by: Optional[int], answer: Callable[[TradeOutcome], Answer],
        idem: Optional[Idem] = None, preflight: Optional[Preflight] = None,
    ) -> Done:
        """The addressee accepts (`by` is the acting player, None for the game's API key)."""
        charged: list[bool] = []  # the request's refusal taken from the offer's bucket (once, whatever the retries)

        def decide(offer: OfferRecord, maker: Player, addressee: Player) -> Step:
            if by is not None and by != offer.to_player_id:
                raise OfferRefused(403, "forbidden", f"only player {offer.to_player_id}, the offer's addressee, "
                                                     "may accept it")
            now = _now_ms()
            overdue = self._overdue(offer, maker, now)
            if overdue is not None:
                return overdue
            offer.refuse_unless_open()
            when = _iso_ms(now)
            reason = rules.accept_fail_reason(maker, addressee, offer.give, offer.want)
            if reason is not None:  # an offer event of its own, never a trade of the maker; the offer stays open
                return self._refused(offer, when, reason, charged)
            trade = events.trade_event(events.new_id(), when, None, rules.trade_side(offer.give),
                                       rules.trade_side(offer.want), offer.offer_id)
            maker, addressee = rules.apply_accept(maker, addressee, offer.give, offer.want)
            return Step(when, answer(TradeOutcome(trade, maker, addressee)),
                        {maker.player_id: maker, addressee.player_id: addressee}, trade,
                        (offer.event(ACCEPTED, when, trade.trade_id),),
                        self._close(offer, ACCEPTED, when, trade.trade_id), ("offers_accepted",))

        return self._on_offer(offer_id, decide, idem, preflight)

    def cancel(
        self, offer_id: str, by: Optional[int], answer: Callable[[OfferRecord, Player], Answer],
        idem: Optional[Idem] = None, preflight: Optional[Preflight] = None,
    ) -> Done:
        """The maker cancels (`by` as for `accept`): the escrow returns to it."""

        def decide(offer: OfferRecord, maker: Player, addressee: Player) -> Step:
            if by is not None and by != offer.from_player_id:
                raise OfferRefused(403, "forbidden", f"only player {offer.from_player_id}, the offer's maker, "
                                                     "may cancel it")
            now = _now_ms()
            overdue = self._overdue(offer, maker, now)
            if overdue is not None:
                return overdue
            offer.refuse_unless_open()
            return self._returned(offer, maker, CANCELLED, now, answer)

        return self._on_offer(offer_id, decide, idem, preflight)

    def _refused(self, offer: OfferRecord, when: str, reason: str, charged: list[bool]) -> Step:
        """An accept a game rule refuses: a `refused` offer event with its reason, answered 409; the
        offer's refusals are rate limited (`refusals`), so an addressee cannot flood the outbox with
        them: over the limit, 429 and nothing recorded. A request takes one refusal from the bucket,
        however often a race makes it decide again (`charged`)."""
        wait_ms = 0
        if not charged:
            with redis_errors():
                wait_ms = int(self._bucket(keys=[f"{self.store.ns}:offer-refusals:{offer.offer_id}"],
                                           args=[self.refusals[0], self.refusals[1]]))
            if not wait_ms:
                charged.append(True)
        if wait_ms:
            raise OfferRefused(429, "rate_limited", f"offer {offer.offer_id} was refused too often; retry after the "
                                                    "delay given, once the trade can go through",
                               retry_after_s=max(1, math.ceil(wait_ms / 1000)))
        body = jsonio.dumps({"error": ACCEPT_REFUSED, "message": f"a game rule refuses this accept ({reason}); the "
                                                                 "offer stays open",
                             "offer_id": offer.offer_id, "fail_reason": reason})
        return Step(when, (409, body), events=(offer.event(REFUSED, when, reason=reason),), bumps=("offers_refused",))

    def _overdue(self, offer: OfferRecord, maker: Player, now_ms: int) -> Optional[Step]:
        """An open offer past its expiry, which a request reached before the sweep: the request ends
        it (its escrow back to the maker) and is answered 409 `offer_expired`, so escrow never
        waits on the relay for a player who asks."""
        if offer.status != OPEN or now_ms < offer.expires_ms:
            return None
        body = jsonio.dumps({"error": OFFER_EXPIRED, "message": f"offer {offer.offer_id} expired at "
                                                              f"{offer.expires_at}; its escrow is back with its maker"})
        return self._returned(offer, maker, EXPIRED, now_ms, lambda o, m: (409, body))

    def expire(self, offer_id: str, now_ms: Optional[int] = None) -> bool:
        """End an open offer past its expiry, its escrow back to its maker; False if there was none
        (an id in the expiry set without its offer, which only a hand-edited Redis can leave, is dropped)."""

        def decide(offer: OfferRecord, maker: Player, addressee: Player) -> Step:
            now = _now_ms() if now_ms is None else now_ms
            if offer.status != OPEN or now < offer.expires_ms:
                raise _Skip()
            return self._returned(offer, maker, EXPIRED, now, lambda o, m: (200, ""))

        try:
            self._on_offer(offer_id, decide)
        except _Skip:
            return False
        except UnknownOffer:
            with redis_errors():
                self.store.r.zrem(self.k_expiry, offer_id)
            return False
        return True

    def sweep(self, now_ms: Optional[int] = None, batch: int = 200) -> int:
        """Expire every open offer past its expiry (the relay runs this about once a second)."""
        now = _now_ms() if now_ms is None else now_ms
        swept, last = 0, None
        while True:
            with redis_errors():
                due = self.store.r.zrangebyscore(self.k_expiry, "-inf", now, start=0, num=batch)
            if due == last:  # the same batch again: nothing in it can end now (never loop on it)
                return swept
            swept += sum(self.expire(member.decode(), now) for member in due)
            if len(due) < batch:
                return swept
            last = due

    def _returned(self, offer: OfferRecord, maker: Player, status: str, now_ms: int,
                  answer: Callable[[OfferRecord, Player], Answer]) -> Step:
        when = _iso_ms(now_ms)
        closed = OfferRecord(offer.offer_id, offer.from_player_id, offer.to_player_id, offer.give, offer.want,
                             offer.created_at, offer.expires_ms, status, when)
        returned = rules.out_of_escrow(maker, offer.give)
        return Step(when, answer(closed, returned), {maker.player_id: returned},
                    events=(offer.event(status, when),), offer=self._close(offer, status, when),
                    bumps=(f"offers_{status}",))

    def _on_offer(self, offer_id: str, decide: Callable[[OfferRecord, Player, Player], Step],
                  idem: Optional[Idem] = None, preflight: Optional[Preflight] = None) -> Done:
        """Decide on a snapshot of the offer and both players, and commit while neither the offer nor a
        player the step depends on changed; again when one did.  The first round trip reads the offer
        with the request's checks (its parties are needed to read them); every read takes the
        Idempotency-Key's record last, so a repeat that committed meanwhile is replayed, not refused."""
        key = self.offer_key(offer_id)
        replay, _, (row,) = self.store.read([], preflight, idem, lambda pipe: pipe.hmget(key, *FIELDS))
        if replay is not None:
            return Done(replay, True)
        offer = OfferRecord.loads(offer_id, row)
        if offer is None:
            raise UnknownOffer(offer_id)
        ids = [offer.from_player_id, offer.to_player_id]
        for _ in range(MAX_ATTEMPTS):
            replay, players, (row,) = self.store.read(ids, None, idem, lambda pipe: pipe.hmget(key, *FIELDS))
            if replay is not None:
                return Done(replay, True)
            offer = OfferRecord.loads(offer_id, row)
            if offer is None or None in players:
                raise UnknownOffer(offer_id)
            step = decide(offer, *players)  # type: ignore[arg-type]
            # an accept (executed or refused) depends on both players; a return of escrow on the maker only
            both = step.trade is not None or any(getattr(e, "action", None) == REFUSED for e in step.events)
            depends = {p.player_id: p for p in players if both or p.player_id in step.changed}
            done = self.store.try_commit(depends, step, idem)  # type: ignore[arg-type]
            if done is not None:
                return done
        raise Contention(f"offer {offer_id} or its players changed on each of {MAX_ATTEMPTS} attempts")


class _Skip(Exception):
    """Nothing to do (an offer already closed, or not yet due)."""


def _too_many(player_id: int, cap: int) -> OfferRefused:
    return OfferRefused(409, TOO_MANY_OPEN_OFFERS, f"player {player_id} has {cap} open offers, the most it may "
                                                   "hold; cancel one or wait for one to end")


_OPEN_REFUSALS = {
    rules.SAME_PLAYER: "an offer's addressee must be another player",
    rules.UNKNOWN_ITEM: "an item id the catalog does not define",
    rules.EMPTY_TRADE: "the offer gives and wants nothing",
    rules.UNKNOWN_PLAYER: "the maker or the addressee does not exist",
    rules.INSUFFICIENT_ITEMS: "the maker does not hold the items it gives",
    rules.INSUFFICIENT_GOLD: "the maker does not hold the gold it gives",
}
