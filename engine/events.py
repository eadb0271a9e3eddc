"""The event contract: one definition for the engine, the relay and the sinks.

Every player state, every trade (executed or rejected) and every step of an
offer (opened, accepted, cancelled, expired) becomes one event.  Each event is
one JSON document carrying the envelope (`event_id`, `event_type`,
`schema_version`, `event_time`) and its payload.  Kafka messages are keyed by
player id (`player_state`), trade id (`trade`) or offer id (`offer`).

Times are ISO-8601 UTC strings with microseconds (`2026-11-28T19:20:00.123456Z`),
always with all six fraction digits so that they sort as text.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Literal, Optional, Union

import orjson
from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"
PLAYER_STATE = "player_state"
TRADE = "trade"
OFFER = "offer"


def utc_iso(moment: datetime) -> str:
    """A UTC moment, as the events spell time."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_now_iso() -> str:
    """Now, as the events spell time."""
    return utc_iso(datetime.now(timezone.utc))


def new_id() -> str:
    """32 random hex digits (128 bits from the OS, as uuid4 draws; a fifth of its cost)."""
    return os.urandom(16).hex()


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ItemStack(_Frozen):
    """An item as the catalog defines it, with a quantity.

    `name`, `level` and `value` are null only for an item id the catalog does
    not know (a trade rejected as `unknown_item`)."""

    item_id: int
    name: Optional[str]
    level: Optional[int]
    value: Optional[int]
    quantity: int


class Inventory(_Frozen):
    max_capacity: int = Field(description="Units (sum of quantities) the player may hold.")
    current_capacity: int = Field(
        description="Free units left: max_capacity minus the units held and the units in the player's open "
                    "offers' escrow (the seed's meaning, with escrow)."
    )
    items: list[ItemStack]


class PlayerState(_Frozen):
    player_id: int
    username: str
    player_class: str
    version: int = Field(description="Bumped by every change; starts at 1.")
    inventory: Inventory
    gold: int


class TradeSide(_Frozen):
    player_id: int
    items_traded: list[ItemStack]
    gold_traded: int


class Envelope(_Frozen):
    event_id: str
    event_type: str
    schema_version: int = SCHEMA_VERSION
    event_time: str = Field(pattern=TIME_PATTERN)


class PlayerStateEvent(Envelope):
    event_type: Literal["player_state"] = PLAYER_STATE
    state_id: str
    state_time: str = Field(pattern=TIME_PATTERN)
    player: PlayerState

    @property
    def kafka_key(self) -> str:
        return str(self.player.player_id)


class TradeEvent(Envelope):
    event_type: Literal["trade"] = TRADE
    trade_id: str
    trade_time: str = Field(pattern=TIME_PATTERN)
    valid_trade: bool
    fail_reason: Optional[str]
    player_1: TradeSide
    player_2: TradeSide
    offer_id: Optional[str] = Field(default=None, description="The offer an accepted trade executed, if any.")

    @property
    def kafka_key(self) -> str:
        return self.trade_id


class Goods(_Frozen):
    """What one side of an offer gives: item stacks and gold."""

    items: list[ItemStack]
    gold: int


class OfferEvent(Envelope):
    """A step of an offer: `opened` (the maker's `give` went into escrow), `accepted` (exchanged:
    `trade_id` names the trade event), `refused` (an accept a game rule refused, `reason` says which;
    the offer stays open), `cancelled` by its maker or `expired` (escrow returned)."""

    event_type: Literal["offer"] = OFFER
    offer_id: str
    action: Literal["opened", "accepted", "refused", "cancelled", "expired"]
    action_time: str = Field(pattern=TIME_PATTERN)
    from_player_id: int
    to_player_id: int
    give: Goods
    want: Goods
    created_at: str = Field(pattern=TIME_PATTERN)
    expires_at: str = Field(pattern=TIME_PATTERN)
    trade_id: Optional[str] = None
    reason: Optional[str] = None

    @property
    def kafka_key(self) -> str:
        return self.offer_id


Event = Union[PlayerStateEvent, TradeEvent, OfferEvent]
EVENT_TYPES: dict[str, type[Envelope]] = {PLAYER_STATE: PlayerStateEvent, TRADE: TradeEvent, OFFER: OfferEvent}


def player_state_event(state: PlayerState, when: str) -> PlayerStateEvent:
    return PlayerStateEvent(
        event_id=new_id(), event_time=when, state_id=new_id(), state_time=when, player=state
    )


def state_event_json(state: dict, when: str) -> bytes:
    """`player_state_event(state, when).model_dump_json()` for a state given as plain data
    (`rules.Player.api_state`), byte for byte, without building the models: the trade's hot path
    writes two per executed trade (tests/engine/test_events.py holds the two spellings equal)."""
    return orjson.dumps({"event_id": new_id(), "event_type": PLAYER_STATE, "schema_version": SCHEMA_VERSION,
                         "event_time": when, "state_id": new_id(), "state_time": when, "player": state})


def trade_event(
    trade_id: str, when: str, fail_reason: Optional[str], side_1: TradeSide, side_2: TradeSide,
    offer_id: Optional[str] = None,
) -> TradeEvent:
    return TradeEvent(
        event_id=new_id(),
        event_time=when,
        trade_id=trade_id,
        trade_time=when,
        valid_trade=fail_reason is None,
        fail_reason=fail_reason,
        player_1=side_1,
        player_2=side_2,
        offer_id=offer_id,
    )

