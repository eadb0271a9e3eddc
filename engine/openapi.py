"""The OpenAPI 3.1 description of the engine, built from the same pydantic models
that validate requests and define events, so it cannot drift from the code."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from engine import rules
from engine.events import PlayerState
from engine.schemas import CreatePlayerIn, TradeIn


class TradeResult(BaseModel):
    trade_id: str
    status: str = Field(description="`executed` or `rejected`.")
    trade_time: str
    fail_reason: str | None = Field(description=f"Null when executed; else one of {', '.join(rules.FAIL_REASONS)}.")
    player_1: PlayerState | None = Field(description="State after the trade (current state when rejected).")
    player_2: PlayerState | None


class Error(BaseModel):
    error: str = Field(description="Stable error code, e.g. `invalid_request`, `invalid_json`.")
    message: str
    fields: list[dict[str, str]] | None = Field(default=None, description="Each bad field and why (400).")


class Health(BaseModel):
    status: str
    redis: str
    players: int


def _json(ref: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


@cache
def spec() -> dict[str, Any]:
    models = [(m, "validation") for m in (CreatePlayerIn, TradeIn)]
    models += [(m, "serialization") for m in (PlayerState, TradeResult, Error, Health)]
    refs, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")
    ref = {m: refs[(m, mode)]["$ref"] for m, mode in models}
    err = lambda d: _json(ref[Error], d)  # noqa: E731
    return {
        "openapi": "3.1.0",
        "info": {"title": "Bazaar trade engine", "version": "1.0.0"},
        "paths": {
            "/create_player": {"put": {
                "summary": "Create a player (random class and username unless given).",
                "requestBody": {"required": False, **_json(ref[CreatePlayerIn], "Optional body.")},
                "responses": {"201": _json(ref[PlayerState], "The new player's state."),
                              "400": err("Malformed body or unknown class."),
                              "409": err("Username taken."), "413": err("Body too large."),
                              "503": err("Store unreachable.")}}},
            "/trade": {"post": {
                "summary": "Trade items and gold between two players, atomically.",
                "requestBody": {"required": True, **_json(ref[TradeIn], "Both sides of the trade.")},
                "responses": {"200": _json(ref[TradeResult], "Executed."),
                              "409": _json(ref[TradeResult], "Rejected by a game rule; nothing changed."),
                              "400": err("Malformed request; names the field."),
                              "413": err("Body too large."), "503": err("Store unreachable or contention.")}}},
            "/players/{player_id}": {"get": {
                "summary": "A player's current state.",
                "parameters": [{"name": "player_id", "in": "path", "required": True,
                                "schema": {"type": "integer", "minimum": 1}}],
                "responses": {"200": _json(ref[PlayerState], "The state."), "404": err("No such player.")}}},
            "/health": {"get": {"summary": "Liveness, checking Redis.",
                                "responses": {"200": _json(ref[Health], "Healthy."),
                                              "503": err("Redis unreachable.")}}},
            "/openapi.json": {"get": {"summary": "This document.",
                                      "responses": {"200": {"description": "OpenAPI 3.1 JSON."}}}},
            "/docs": {"get": {"summary": "This document as a page.",
                              "responses": {"200": {"description": "HTML."}}}},
        },
        "components": {"schemas": defs.get("$defs", {})},
    }
