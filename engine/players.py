"""Player routes: create one, read one."""

from __future__ import annotations

from flask import Blueprint, current_app

from engine import auth, catalog, idempotency
from engine.body import json_body
from engine.db import get_rng, get_store
from engine.errors import ApiError
from engine.rules import Player
from engine.schemas import CreatePlayerIn
from engine.store import Answer, UsernameTaken

bp = Blueprint("players", __name__)


def answer(player: Player) -> Answer:
    return 201, current_app.json.dumps(player.to_state().model_dump())


@bp.put("/create_player")
def create_player():
    store = get_store()
    with auth.refusals_after_key_check():
        body = CreatePlayerIn.model_validate(json_body(allow_empty=True))
        idem = idempotency.from_request(store, body)
    rng = get_rng()
    if body.player_class == catalog.RANDOM_CLASS:
        cls = catalog.draw_class(rng)
    else:
        cls = catalog.CLASSES[body.player_class]
    try:
        done = store.create_player(cls, body.username, rng, answer, idem, auth.key_check())
    except UsernameTaken:
        raise ApiError(409, "username_taken", f"username {body.username!r} is taken; choose another") from None
    return idempotency.respond(done)


@bp.get("/players/<int:player_id>")
def get_player(player_id: int):
    player = get_store().get_player(player_id)
    if player is None:
        raise ApiError(404, "unknown_player", f"no player with id {player_id}")
    return player.to_state().model_dump()
