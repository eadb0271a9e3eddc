"""The event contract: one definition for the engine, the relay and the sinks.

Every player state and every trade (executed or rejected) becomes one event.
Each event is one JSON document carrying the envelope (`event_id`,
`event_type`, `schema_version`, `event_time`) and its payload.  Kafka messages
are keyed by player id (`player_state`) or trade id (`trade`).

Times are ISO-8601 UTC strings with microseconds (`2026-11-28T19:20:00.123456Z`),
always with all six fraction digits so that they sort as text.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"
PLAYER_STATE = "player_state"
TRADE = "trade"


def utc_iso(moment: datetime) -> str:
    """A UTC moment, as the events spell time."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_now_iso() -> str:
    """Now, as the events spell time."""
    return utc_iso(datetime.now(timezone.utc))


def new_id() -> str:
    return uuid.uuid4().hex


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
        description="Free units left: max_capacity minus the units held (the seed's meaning)."
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

    @property
    def kafka_key(self) -> str:
        return self.trade_id


Event = Union[PlayerStateEvent, TradeEvent]
EVENT_TYPES: dict[str, type[Envelope]] = {PLAYER_STATE: PlayerStateEvent, TRADE: TradeEvent}


def player_state_event(state: PlayerState, when: str) -> PlayerStateEvent:
    return PlayerStateEvent(
        event_id=new_id(), event_time=when, state_id=new_id(), state_time=when, player=state
    )


def trade_event(
    trade_id: str, when: str, fail_reason: Optional[str], side_1: TradeSide, side_2: TradeSide
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
    )

