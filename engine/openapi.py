"""The OpenAPI 3.1 description of the engine, built from the same pydantic models
that validate requests and define events, so it cannot drift from the code."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from engine import rules
from engine.events import Goods as GoodsOut
from engine.events import PlayerState
from engine.offerbook import ACCEPT_REFUSED, OFFER_EXPIRED, OFFER_NOT_OPEN, STATUSES, TOO_MANY_OPEN_OFFERS
from engine.schemas import CreatePlayerIn, HistoryQuery, OfferIn, OffersQuery, TokenIn, TradeIn


class TradeResult(BaseModel):
    trade_id: str
    status: str = Field(description="`executed` or `rejected`.")
    trade_time: str
    fail_reason: str | None = Field(description=f"Null when executed; else one of {', '.join(rules.FAIL_REASONS)}.")
    player_1: PlayerState | None = Field(description="State after the trade (current state when rejected).")
    player_2: PlayerState | None


class AcceptResult(TradeResult):
    offer_id: str = Field(description="The offer accepted.")


class OfferOut(BaseModel):
    offer_id: str
    status: str = Field(description=f"One of {', '.join(STATUSES)}.")
    from_player_id: int = Field(description="The maker.")
    to_player_id: int = Field(description="The addressee.")
    give: GoodsOut = Field(description="What the maker gives (held in escrow while the offer is open).")
    want: GoodsOut = Field(description="What the addressee gives on accepting.")
    created_at: str
    expires_at: str
    closed_at: str | None = Field(description="When it was accepted, cancelled or expired.")
    trade_id: str | None = Field(description="The trade of an accepted offer.")


class OfferChange(OfferOut):
    maker_state: PlayerState = Field(description="The maker's state after the step: its goods left for escrow "
                                                 "(open) or came back (cancel).")


class OfferPage(BaseModel):
    player_id: int
    offers: list[OfferOut] = Field(description="Newest first: offers the player made or was sent.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page; null on the last.")


class ItemUnits(BaseModel):
    item_id: int
    units: int


class Holdings(BaseModel):
    gold: int
    items: list[ItemUnits]


class Totals(BaseModel):
    players: int
    open_offers: int
    inventories: Holdings = Field(description="In players' inventories and gold.")
    escrow: Holdings = Field(description="In open offers.")
    total: Holdings = Field(description="Both: it changes only when a player is created.")


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the field, e.g. `player_1.items_traded.0.quantity`.")
    message: str


class Error(BaseModel):
    error: str = Field(description="Stable error code; the README lists every one.")
    message: str = Field(description="What went wrong and what to do next.")
    fields: list[FieldError] | None = Field(default=None, description="Each bad field and why (400).")
    request_id: str | None = Field(default=None, description="The id the engine logged the failure under (500).")


class AcceptRefused(Error):
    offer_id: str = Field(description="The offer, still open.")
    fail_reason: str = Field(description=f"The game rule that refused it: one of {', '.join(rules.FAIL_REASONS)}.")


class TokenOut(BaseModel):
    token: str = Field(description="`bzp_...`: send as `Authorization: Bearer <token>`.")
    player_id: int
    expires_at: str = Field(description="ISO-8601 UTC.")


class TokensRevoked(BaseModel):
    player_id: int
    token_epoch: int = Field(description="The player's token epoch from now on: its tokens minted before are refused.")


class Goods(BaseModel):
    items: list[dict[str, int]] = Field(description="`item_id` and `quantity` of each item line.")
    gold: int


class HistoryEntry(BaseModel):
    trade_id: str
    trade_time: str
    status: str = Field(description="`executed` or `rejected`.")
    fail_reason: str | None
    counterparty: int = Field(description="The other player's id (its own id when a trade named it twice).")
    gave: Goods
    received: Goods
    offer_id: str | None = Field(description="The offer it came from, if any.")


class HistoryPage(BaseModel):
    player_id: int
    trades: list[HistoryEntry] = Field(description="Newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page; null on the last.")


class Health(BaseModel):
    status: str
    redis: str
    players: int


def _json(ref: str, description: str, headers: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}
    out["headers"] = {"X-Request-Id": HEADERS["X-Request-Id"], **{h: HEADERS[h] for h in headers}}
    return out


def _one_of(refs: list[str], description: str, headers: tuple[str, ...] = ()) -> dict[str, Any]:
    out = _json(refs[0], description, headers)
    out["content"]["application/json"]["schema"] = {"anyOf": [{"$ref": r} for r in refs]}
    return out


HEADERS = {
    "X-Request-Id": {"description": "The request's id; a failure is logged under it.", "required": True,
                     "schema": {"type": "string"}},
    "Retry-After": {"description": "Seconds to wait before retrying.", "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9]+$"}},
    "WWW-Authenticate": {"description": "`Bearer realm=\"bazaar\"`, with an `error` when a key was sent.",
                         "required": True, "schema": {"type": "string"}},
    "Allow": {"description": "The methods the route takes.", "required": True, "schema": {"type": "string"}},
    "Idempotent-Replayed": {"description": "`true` when this is the stored answer to an earlier request with "
                                           "the same Idempotency-Key.", "schema": {"type": "string", "enum": ["true"]}},
}

# the HTTP server (granian) refuses a request line over about 64 KiB itself: a long query string can get it
TOO_LONG = {"414": {"description": "The request line is over about 64 KiB: refused by the HTTP server before the "
                                   "engine sees it."}}

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Makes the write safe to retry: the first request with a key executes and its answer is "
                   "stored in the same atomic step; a repeat with the same body gets that answer again "
                   "(`Idempotent-Replayed: true`) and executes nothing. Scoped to the API key, kept 24 h.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
}

OFFER_ID = {"name": "offer_id", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}
PLAYER_ID = {"name": "player_id", "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 1, "maximum": 2**53}}

SECURED_ERRORS = {
    "401": ("Missing, malformed, unknown or revoked API key, or an expired, forged or revoked player token (its "
            "key revoked, or the player's tokens); nothing changed.", ("WWW-Authenticate",)),
    "403": ("`forbidden`: a player token on a route, player or offer that is not its own, or a backend key on an "
            "admin route; nothing changed.", ()),
    "405": ("The route does not take this method.", ("Allow",)),
    "429": ("`rate_limited`: the API key or the player is over its rate, or an offer was refused too often.",
            ("Retry-After",)),
    "500": ("The engine failed (`internal_error`); logged under `request_id`.", ()),
    "503": ("`store_unavailable`, `contention` or `backpressure` (the outbox is full): nothing changed, retry.",
            ("Retry-After",)),
}
WRITE_ERRORS = {
    "400": ("Malformed request (`invalid_json`, `too_deep`, `invalid_request` naming each field, "
            "`invalid_idempotency_key`); nothing changed.", ()),
    "413": ("Body too large.", ()),
    "422": ("`idempotency_key_reused`: the key came with another request.", ()),
}


@cache
def spec() -> dict[str, Any]:
    models = [(m, "validation") for m in (CreatePlayerIn, TradeIn)]
    models += [(m, "serialization") for m in (PlayerState, TradeResult, Error, AcceptRefused, Health, TokenOut, TokensRevoked, HistoryPage,
                                               AcceptResult, OfferOut, OfferChange, OfferPage, Totals)]
    models += [(TokenIn, "validation"), (OfferIn, "validation")]
    refs, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")
    ref = {m: refs[(m, mode)]["$ref"] for m, mode in models}

    def errors(*tables: dict) -> dict[str, Any]:
        return {code: _json(ref[Error], text, headers) for table in tables for code, (text, headers) in table.items()}

    secured = errors(SECURED_ERRORS)
    write = errors(SECURED_ERRORS, WRITE_ERRORS)
    public = {"security": []}
    both = [{"apiKey": []}, {"playerToken": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "Bazaar trade engine", "version": "1.2.0",
                 "description": "Every route but /health, /metrics, /openapi.json and /docs needs `Authorization: Bearer "
                                "<API key>` (`bazaar keys create`); /economy/totals needs an admin key "
                                "(`--scope admin`)."},
        "security": [{"apiKey": []}],
        "paths": {
            "/create_player": {"put": {
                "summary": "Create a player (random class and username unless given).",
                "parameters": [IDEMPOTENCY_KEY],
                "requestBody": {"required": False, **_json(ref[CreatePlayerIn], "Optional body.")},
                "responses": {"201": _json(ref[PlayerState], "The new player's state.", ("Idempotent-Replayed",)),
                              "409": _json(ref[Error], "`username_taken`."),
                              **write}}},
            "/trade": {"post": {
                "summary": "Trade items and gold between two players, atomically.",
                "parameters": [IDEMPOTENCY_KEY],
                "requestBody": {"required": True, **_json(ref[TradeIn], "Both sides of the trade.")},
                "responses": {"200": _json(ref[TradeResult], "Executed.", ("Idempotent-Replayed",)),
                              "409": _json(ref[TradeResult], "Rejected by a game rule (its `fail_reason`); nothing "
                                                             "changed but the trade is recorded.",
                                           ("Idempotent-Replayed",)),
                              **write}}},
            "/players/{player_id}": {"get": {
                "summary": "A player's current state (API key, or the player's own token).",
                "security": [{"apiKey": []}, {"playerToken": []}],
                "parameters": [PLAYER_ID],
                "responses": {"200": _json(ref[PlayerState], "The state."),
                              "404": _json(ref[Error], "No such player."), **secured}}},
            "/players/{player_id}/tokens": {"post": {
                "summary": "Mint a player token (API key only).",
                "parameters": [PLAYER_ID],
                "requestBody": {"required": False, **_json(ref[TokenIn], "Optional body.")},
                "responses": {"201": _json(ref[TokenOut], "The token."),
                              "404": _json(ref[Error], "No such player."),
                              **errors(SECURED_ERRORS, {k: v for k, v in WRITE_ERRORS.items() if k != "422"}),
                              "503": _json(ref[Error], "`tokens_unavailable` (no BAZAAR_TOKEN_SECRET), or "
                                                       "`store_unavailable`.", ("Retry-After",))}},
                "delete": {
                "summary": "Revoke the player's tokens minted so far, on every worker at once (API key only).",
                "parameters": [PLAYER_ID],
                "responses": {"200": _json(ref[TokensRevoked], "Revoked; tokens minted from now on hold."),
                              "404": _json(ref[Error], "No such player."), **secured}}},
            "/players/{player_id}/trades": {"get": {
                "summary": "The player's trades, newest first (API key, or the player's own token).",
                "security": [{"apiKey": []}, {"playerToken": []}],
                "parameters": [PLAYER_ID,
                               {"name": "limit", "in": "query", "required": False,
                                "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
                               {"name": "cursor", "in": "query", "required": False,
                                "description": HistoryQuery.model_fields["cursor"].description,
                                "schema": {"type": "string", "pattern": "^[0-9]{1,19}-[0-9]{1,19}$"}}],
                "responses": {"200": _json(ref[HistoryPage], "A page of trades."), **TOO_LONG,
                              "400": _json(ref[Error], "`invalid_request`: `limit` or `cursor` malformed, or an "
                                                       "unknown query parameter."),
                              "404": _json(ref[Error], "No such player."), **secured}}},
            "/offers": {"post": {
                "summary": "Open an offer to another player; what it gives goes into escrow (API key naming "
                           "`from_player_id`, or the maker's own token).",
                "security": both,
                "parameters": [IDEMPOTENCY_KEY],
                "requestBody": {"required": True, **_json(ref[OfferIn], "The offer.")},
                "responses": {"201": _json(ref[OfferChange], "Open; the maker's goods are in escrow.",
                                           ("Idempotent-Replayed",)),
                              "409": _json(ref[Error], "Refused, nothing changed: `same_player`, `unknown_item`, "
                                                       "`empty_trade`, `unknown_player`, `insufficient_items`, "
                                                       f"`insufficient_gold`, `{TOO_MANY_OPEN_OFFERS}`."),
                              **write,
                              "422": _json(ref[Error], "`maker_required`: the API key sent no `from_player_id`; "
                                                       "`idempotency_key_reused`.")}}},
            "/offers/{offer_id}": {"get": {
                "summary": "An offer (API key, or a token of one of its two players).",
                "security": both, "parameters": [OFFER_ID],
                "responses": {"200": _json(ref[OfferOut], "The offer."),
                              "404": _json(ref[Error], "`unknown_offer` (closed offers are kept a limited time)."),
                              **secured}}},
            "/offers/{offer_id}/accept": {"post": {
                "summary": "Accept an offer: the exchange executes atomically (API key, or the addressee's token).",
                "security": both, "parameters": [OFFER_ID, IDEMPOTENCY_KEY],
                "responses": {"200": _json(ref[AcceptResult], "Executed: the trade, with `offer_id`.",
                                           ("Idempotent-Replayed",)),
                              "409": _one_of([ref[AcceptRefused], ref[Error]],
                                             f"`{ACCEPT_REFUSED}`: a game rule refuses it (its `fail_reason`; recorded "
                                             "as a `refused` offer event, never as a trade; the offer stays open), "
                                             f"or `{OFFER_NOT_OPEN}`, `{OFFER_EXPIRED}`.", ("Idempotent-Replayed",)),
                              "404": _json(ref[Error], "`unknown_offer`."), **write}}},
            "/offers/{offer_id}/cancel": {"post": {
                "summary": "Cancel an offer: its escrow returns to the maker (API key, or the maker's token).",
                "security": both, "parameters": [OFFER_ID, IDEMPOTENCY_KEY],
                "responses": {"200": _json(ref[OfferChange], "Cancelled; the escrow is back with the maker.",
                                           ("Idempotent-Replayed",)),
                              "409": _json(ref[Error], f"`{OFFER_NOT_OPEN}` or `{OFFER_EXPIRED}`."),
                              "404": _json(ref[Error], "`unknown_offer`."), **write}}},
            "/players/{player_id}/offers": {"get": {
                "summary": "The offers a player made or was sent, newest first (API key, or its own token).",
                "security": both,
                "parameters": [PLAYER_ID,
                               {"name": "status", "in": "query", "required": False,
                                "schema": {"type": "string", "enum": list(STATUSES)}},
                               {"name": "limit", "in": "query", "required": False,
                                "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
                               {"name": "cursor", "in": "query", "required": False,
                                "description": OffersQuery.model_fields["cursor"].description,
                                "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"}}],
                "responses": {"200": _json(ref[OfferPage], "A page of offers."), **TOO_LONG,
                              "400": _json(ref[Error], "`invalid_request`: a query parameter is malformed or "
                                                       "unknown."),
                              "404": _json(ref[Error], "No such player."), **secured}}},
            "/economy/totals": {"get": {
                "summary": "Gold and units per item in inventories and in escrow: the running totals the steps "
                           "that move goods keep (an admin key: `bazaar keys create --scope admin`).",
                "responses": {"200": _json(ref[Totals], "The totals."), **secured}}},
            "/health": {"get": {"summary": "Liveness, checking Redis.", **public,
                                "responses": {"200": _json(ref[Health], "Healthy."),
                                              "503": _json(ref[Error], "Redis unreachable.", ("Retry-After",))}}},
            "/metrics": {"get": {"summary": "The engine's metrics in Prometheus' text format: requests, latency, "
                                            "trades, offers, refusals, Redis round trips (no key).", **public,
                                 "responses": {"200": {"description": "Prometheus text exposition format."}}}},
            "/openapi.json": {"get": {"summary": "This document.", **public,
                                      "responses": {"200": {"description": "OpenAPI 3.1 JSON."}}}},
            "/docs": {"get": {"summary": "This document as a page.", **public,
                              "responses": {"200": {"description": "HTML."}}}},
        },
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "An API key from `bazaar keys create`."},
                                "playerToken": {"type": "http", "scheme": "bearer",
                                                "description": "A player token from "
                                                               "`POST /players/{player_id}/tokens`."}},
        },
    }
