"""The game's rules, as pure functions over player snapshots.

Nothing here touches Redis: `engine.store` reads a snapshot of both players,
asks these functions what the trade does, and commits the answer in one atomic
Lua step that fails if either player changed since the snapshot (optimistic
concurrency).  So the rules are the single source of truth and can be tested
without a server.

Rejection codes (`fail_reason`), stable across versions, checked in this order:

- `same_player`: both sides name the same player.
- `unknown_item`: an item id the catalog does not define.
- `empty_trade`: neither side gives anything.
- `unknown_player`: a side names a player that does not exist.
- `stale_state`: a side's claimed view (username, class, gold, inventory or
  version) differs from the server's state: the seed's anti-spoofing check.
- `insufficient_items`: a side gives more of an item than it holds.
- `insufficient_gold`: a side gives more gold than it holds.
- `capacity_exceeded`: a side would hold more units than its capacity.

Offers (`engine.offerbook`) use the same codes: opening one checks the maker's
side (`same_player`, `unknown_item`, `empty_trade`, `unknown_player`,
`insufficient_items`, `insufficient_gold`); accepting checks the addressee's
side and both players' capacity.  Units a player has in escrow (given in its
open offers) count against its capacity until they leave or come back, so a
cancelled or expired offer can always return them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Mapping, Optional

import orjson

from engine import catalog
from engine.events import ItemStack, PlayerState, TradeSide

SAME_PLAYER = "same_player"
UNKNOWN_ITEM = "unknown_item"
EMPTY_TRADE = "empty_trade"
UNKNOWN_PLAYER = "unknown_player"
STALE_STATE = "stale_state"
INSUFFICIENT_ITEMS = "insufficient_items"
INSUFFICIENT_GOLD = "insufficient_gold"
CAPACITY_EXCEEDED = "capacity_exceeded"
FAIL_REASONS = (
    SAME_PLAYER,
    UNKNOWN_ITEM,
    EMPTY_TRADE,
    UNKNOWN_PLAYER,
    STALE_STATE,
    INSUFFICIENT_ITEMS,
    INSUFFICIENT_GOLD,
    CAPACITY_EXCEEDED,
)


@dataclass(frozen=True)
class Player:
    """The server's state of one player; `items` maps item id to a positive quantity."""

    player_id: int
    username: str
    player_class: str
    version: int
    gold: int
    max_capacity: int
    items: Mapping[int, int]
    escrow_units: int = 0  # units in the player's open offers: not held, but their room is kept

    @property
    def held_units(self) -> int:
        return sum(self.items.values())

    @property
    def free_capacity(self) -> int:
        return self.max_capacity - self.held_units - self.escrow_units

    def to_state(self) -> PlayerState:
        """The state as the API and the events spell it (`PlayerState`)."""
        return PlayerState.model_validate(self.api_state)

    @cached_property
    def api_state(self) -> dict:
        """`to_state()` as plain data, in its fields' order, built once per Player (it is immutable):
        the hot path's answer and state event serialize it without building pydantic models."""
        return {
            "player_id": self.player_id,
            "username": self.username,
            "player_class": self.player_class,
            "version": self.version,
            "inventory": {
                "max_capacity": self.max_capacity,
                "current_capacity": self.free_capacity,
                "items": [stack_data(i, q) for i, q in sorted(self.items.items())],
            },
            "gold": self.gold,
        }

    def dumps(self) -> bytes:
        """Compact storage form (the Redis value)."""
        return orjson.dumps([self.username, self.player_class, self.gold, self.max_capacity,
                             sorted(self.items.items()), self.escrow_units])

    @classmethod
    def loads(cls, player_id: int, version: int, raw: str | bytes) -> "Player":
        username, player_class, gold, max_capacity, items, *escrow = orjson.loads(raw)  # no escrow before offers
        return cls(player_id, username, player_class, version, gold, max_capacity, dict(items), *escrow)


@dataclass(frozen=True)
class Claim:
    """What a client believes a player's state is; None means "not claimed"."""

    username: Optional[str] = None
    player_class: Optional[str] = None
    gold: Optional[int] = None
    version: Optional[int] = None
    max_capacity: Optional[int] = None
    current_capacity: Optional[int] = None
    items: Optional[Mapping[int, int]] = None


@dataclass(frozen=True)
class Offer:
    """What one side of a trade gives: item id -> quantity, and gold."""

    player_id: int
    items: Mapping[int, int] = field(default_factory=dict)
    gold: int = 0
    claim: Claim = field(default_factory=Claim)

    @property
    def units(self) -> int:
        return sum(self.items.values())


def item_stack(item_id: int, quantity: int) -> ItemStack:
    return ItemStack(**stack_data(item_id, quantity))


def stack_data(item_id: int, quantity: int) -> dict:
    """An `ItemStack` as plain data: the catalog's item and a quantity (name, level and value null
    for an id the catalog does not know)."""
    item = catalog.get_item(item_id)
    if item is None:
        return {"item_id": item_id, "name": None, "level": None, "value": None, "quantity": quantity}
    return {"item_id": item_id, "name": item.name, "level": item.level, "value": item.value, "quantity": quantity}


def trade_side(offer: Offer) -> TradeSide:
    return TradeSide(
        player_id=offer.player_id,
        items_traded=[item_stack(i, q) for i, q in sorted(offer.items.items())],
        gold_traded=offer.gold,
    )


def new_player(player_id: int, username: str, cls: catalog.PlayerClass) -> Player:
    return Player(player_id, username, cls.name, 1, cls.gold, cls.max_capacity, dict(cls.items))


def request_fail_reason(o1: Offer, o2: Offer) -> Optional[str]:
    """Rules that need no server state."""
    if o1.player_id == o2.player_id:
        return SAME_PLAYER
    if any(catalog.get_item(i) is None for o in (o1, o2) for i in o.items):
        return UNKNOWN_ITEM
    if o1.units == 0 and o2.units == 0 and o1.gold == 0 and o2.gold == 0:
        return EMPTY_TRADE
    return None


def is_stale(player: Player, claim: Claim) -> bool:
    actual = {
        "username": player.username,
        "player_class": player.player_class,
        "gold": player.gold,
        "version": player.version,
        "max_capacity": player.max_capacity,
        "current_capacity": player.free_capacity,
        "items": dict(player.items),
    }
    return any(
        getattr(claim, name) is not None and getattr(claim, name) != value
        for name, value in actual.items()
    )


def trade_fail_reason(
    p1: Optional[Player], p2: Optional[Player], o1: Offer, o2: Offer
) -> Optional[str]:
    """The first rule the trade breaks, given both players' current state."""
    reason = request_fail_reason(o1, o2)
    if reason is not None:
        return reason
    if p1 is None or p2 is None:
        return UNKNOWN_PLAYER
    sides = ((p1, o1, o2), (p2, o2, o1))
    if any(is_stale(p, o.claim) for p, o, _ in sides):
        return STALE_STATE
    if any(p.items.get(i, 0) < q for p, o, _ in sides for i, q in o.items.items()):
        return INSUFFICIENT_ITEMS
    if any(p.gold < o.gold for p, o, _ in sides):
        return INSUFFICIENT_GOLD
    if any(p.held_units + p.escrow_units - gives.units + gets.units > p.max_capacity for p, gives, gets in sides):
        return CAPACITY_EXCEEDED
    return None


NOTHING = Offer(0)


def _after(player: Player, gives: Offer, gets: Offer, escrow: int = 0) -> Player:
    """The player once `gives` left its inventory and `gets` came in; `escrow` units more held in escrow."""
    items = dict(player.items)
    for item_id, qty in gives.items.items():
        items[item_id] -= qty
    for item_id, qty in gets.items.items():
        items[item_id] = items.get(item_id, 0) + qty
    return replace(
        player,
        version=player.version + 1,
        gold=player.gold - gives.gold + gets.gold,
        items={i: q for i, q in items.items() if q > 0},
        escrow_units=player.escrow_units + escrow,
    )


def apply_trade(p1: Player, p2: Player, o1: Offer, o2: Offer) -> tuple[Player, Player]:
    """Both players after a trade that `trade_fail_reason` accepted."""
    return _after(p1, o1, o2), _after(p2, o2, o1)


# -- offers ---------------------------------------------------------------------
def _lacks(player: Player, gives: Offer) -> Optional[str]:
    if any(player.items.get(i, 0) < q for i, q in gives.items.items()):
        return INSUFFICIENT_ITEMS
    if player.gold < gives.gold:
        return INSUFFICIENT_GOLD
    return None


def open_fail_reason(maker: Optional[Player], addressee: Optional[Player], give: Offer, want: Offer) -> Optional[str]:
    """Why an offer cannot open: `give` is the maker's side, `want` the addressee's."""
    reason = request_fail_reason(give, want)
    if reason is not None:
        return reason
    if maker is None or addressee is None:
        return UNKNOWN_PLAYER
    return _lacks(maker, give)


def into_escrow(maker: Player, give: Offer) -> Player:
    """The maker once its offer opened: `give` left its inventory and gold, its room is kept."""
    return _after(maker, give, NOTHING, escrow=give.units)


def out_of_escrow(maker: Player, give: Offer) -> Player:
    """The maker once its offer was cancelled or expired: `give` is back."""
    return _after(maker, NOTHING, give, escrow=-give.units)


def accept_fail_reason(maker: Player, addressee: Player, give: Offer, want: Offer) -> Optional[str]:
    """Why an open offer cannot be accepted now (its `give` sits in escrow)."""
    reason = _lacks(addressee, want)
    if reason is not None:
        return reason
    if (maker.held_units + maker.escrow_units - give.units + want.units > maker.max_capacity
            or addressee.held_units + addressee.escrow_units - want.units + give.units > addressee.max_capacity):
        return CAPACITY_EXCEEDED
    return None


def apply_accept(maker: Player, addressee: Player, give: Offer, want: Offer) -> tuple[Player, Player]:
    """Both players after an accepted offer: the escrow goes to the addressee, `want` to the maker."""
    return _after(maker, NOTHING, want, escrow=-give.units), _after(addressee, want, give)
