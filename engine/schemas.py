"""Request bodies, validated with pydantic; a violation becomes a 400 naming the field.

Types are strict (`"3"` is not a player id, `true` is not a quantity; `3.0` is 3,
as JSON Schema has it).  Unknown fields are refused, each named in the 400 (a typo
such as `gold_trade` must not silently trade zero gold); the seed's full item
objects and player views stay known: of an item only `item_id` and `quantity` are
trusted, `name`, `level` and `value` are accepted and ignored.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr

from engine import catalog
from engine.tokens import DEFAULT_TTL_S as DEFAULT_TOKEN_TTL_S
from engine.tokens import MAX_TTL_S as MAX_TOKEN_TTL_S
from engine.rules import Claim, Offer

def _whole(value: object) -> object:
    """JSON has one number type: 7007.0 is the integer 7007 (as JSON Schema says); 7007.5, "7007"
    and true are not integers."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def whole(ge: Optional[int] = None, le: Optional[int] = None):
    """A JSON integer within bounds (the validator goes last, so the bounds stay in the JSON schema)."""
    return Annotated[StrictInt, Field(ge=ge, le=le), BeforeValidator(_whole)]


Int = whole()

MAX_QUANTITY = 1_000_000
MAX_GOLD = 10**12  # far above any balance the catalog can produce, well inside exact JSON integers
MAX_ITEM_LINES = 100

PlayerId = whole(ge=1, le=2**53)
Quantity = whole(ge=1, le=MAX_QUANTITY)
Gold = whole(ge=0, le=MAX_GOLD)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _CatalogFields(_Strict):
    """What the seed's clients send of an item beside its id and quantity: ignored, the catalog decides."""

    name: Optional[StrictStr] = Field(default=None, description="Ignored: the catalog's name is used.")
    level: Optional[Int] = Field(default=None, description="Ignored: the catalog's level is used.")
    value: Optional[Int] = Field(default=None, description="Ignored: the catalog's value is used.")


class ItemLine(_CatalogFields):
    """An item given in a trade."""

    item_id: whole(ge=1, le=2**31)
    quantity: Quantity


class HeldItem(_CatalogFields):
    item_id: whole(ge=1, le=2**31)
    quantity: whole(ge=0, le=MAX_QUANTITY)


class InventoryView(_Strict):
    max_capacity: Optional[Int] = None
    current_capacity: Optional[Int] = None
    items: Optional[list[HeldItem]] = Field(default=None, max_length=MAX_ITEM_LINES)


class TradeSideIn(_Strict):
    """One side of a trade; `username`, `player_class`, `gold`, `inventory` and `version`,
    when present, are the client's view of the player and must match the server's."""

    player_id: PlayerId
    items_traded: list[ItemLine] = Field(default_factory=list, max_length=MAX_ITEM_LINES)
    gold_traded: Gold = 0
    username: Optional[StrictStr] = None
    player_class: Optional[StrictStr] = None
    gold: Optional[Int] = None
    version: Optional[Int] = None
    inventory: Optional[InventoryView] = None

    def to_offer(self) -> Offer:
        items: dict[int, int] = {}
        for line in self.items_traded:  # repeated lines of one item add up
            items[line.item_id] = items.get(line.item_id, 0) + line.quantity
        inv = self.inventory
        held = None
        if inv is not None and inv.items is not None:
            held = {}
            for h in inv.items:
                held[h.item_id] = held.get(h.item_id, 0) + h.quantity
            held = {i: q for i, q in held.items() if q > 0}
        claim = Claim(
            username=self.username,
            player_class=self.player_class,
            gold=self.gold,
            version=self.version,
            max_capacity=inv.max_capacity if inv else None,
            current_capacity=inv.current_capacity if inv else None,
            items=held,
        )
        return Offer(self.player_id, items, self.gold_traded, claim)


class TradeIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"player_1": {"player_id": 1, "items_traded": [{"item_id": 1, "quantity": 1}], "gold_traded": 0},
         "player_2": {"player_id": 2, "items_traded": [], "gold_traded": 10}},
        {"player_1": {"player_id": 2, "items_traded": [], "gold_traded": 1},
         "player_2": {"player_id": 1, "items_traded": [], "gold_traded": 0}},
    ]})

    player_1: TradeSideIn
    player_2: TradeSideIn


ClassName = Literal[(catalog.RANDOM_CLASS, *sorted(catalog.CLASSES))]  # type: ignore[valid-type]


class CreatePlayerIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"player_class": "merchant"}, {"player_class": "random", "username": "Lady_Ashe"}]})

    player_class: ClassName = Field(
        default=catalog.RANDOM_CLASS,
        description="`random` (drawn from the game's class distribution) or a class name.",
    )
    username: Optional[
        Annotated[StrictStr, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{2,31}$")]
    ] = Field(default=None, description="3-32 letters, digits, `_`, `.`, `-`; random when absent.")


class TokenIn(_Strict):
    ttl_s: whole(ge=1, le=MAX_TOKEN_TTL_S) = Field(  # type: ignore[valid-type]
        default=DEFAULT_TOKEN_TTL_S, description="Seconds the token is good for (default 1 h, at most 24 h).")


class HistoryQuery(_Strict):
    """Query string of a history page (strings, as query strings are)."""

    limit: Annotated[int, Field(ge=1, le=200)] = Field(default=50, description="Trades per page, 1-200.")
    cursor: Optional[Annotated[str, Field(pattern=r"^[0-9]{1,19}-[0-9]{1,19}$")]] = Field(
        default=None, description="`next_cursor` of the page before (opaque); absent for the newest trades.")


MAX_OFFER_EXPIRY_S = 7 * 24 * 3600


class GoodsIn(_Strict):
    """One side of an offer: item lines and gold."""

    items: list[ItemLine] = Field(default_factory=list, max_length=MAX_ITEM_LINES)
    gold: Gold = 0

    def to_offer(self, player_id: int) -> Offer:
        items: dict[int, int] = {}
        for line in self.items:  # repeated lines of one item add up
            items[line.item_id] = items.get(line.item_id, 0) + line.quantity
        return Offer(player_id, items, self.gold)


class OfferIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"from_player_id": 1, "to_player_id": 2, "give": {"items": [{"item_id": 1, "quantity": 1}], "gold": 0},
         "want": {"items": [], "gold": 25}, "expires_in_s": 600},
    ]})

    from_player_id: Optional[PlayerId] = Field(  # type: ignore[valid-type]
        default=None, description="The maker: required with the API key; with a player token, its own player "
                                  "(absent or the same id).")
    to_player_id: PlayerId = Field(description="The addressee, the only player who may accept it.")  # type: ignore
    give: GoodsIn = Field(default_factory=GoodsIn, description="What the maker gives: held in escrow until the "
                                                               "offer ends.")
    want: GoodsIn = Field(default_factory=GoodsIn, description="What the addressee gives on accepting.")
    expires_in_s: whole(ge=1, le=MAX_OFFER_EXPIRY_S) = Field(  # type: ignore[valid-type]
        default=600, description="Seconds until the offer expires and its escrow returns (at most 7 days).")


class NoBody(_Strict):
    """The body of accept and cancel: none, or `{}`."""


class OffersQuery(_Strict):
    """Query string of a page of a player's offers."""

    status: Optional[Literal["open", "accepted", "cancelled", "expired"]] = Field(
        default=None, description="Only offers with this status; all when absent.")
    limit: Annotated[int, Field(ge=1, le=200)] = Field(default=50, description="Offers per page, 1-200.")
    cursor: Optional[Annotated[str, Field(pattern=r"^[0-9]{1,19}$")]] = Field(
        default=None, description="`next_cursor` of the page before (opaque); absent for the newest offers.")
