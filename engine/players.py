"""Player routes: create one, read one."""

from __future__ import annotations

from flask import Blueprint

from engine import catalog
from engine.body import parse
from engine.db import get_rng, get_store
from engine.errors import ApiError
from engine.schemas import CreatePlayerIn
from engine.store import UsernameTaken

bp = Blueprint("players", __name__)


@bp.put("/create_player")
def create_player():
    body = parse(CreatePlayerIn, allow_empty=True)
    rng = get_rng()
    if body.player_class == catalog.RANDOM_CLASS:
        cls = catalog.draw_class(rng)
    else:
        cls = catalog.CLASSES[body.player_class]
    try:
        player = get_store().create_player(cls, body.username, rng)
    except UsernameTaken:
        raise ApiError(409, "username_taken", f"username {body.username!r} is taken; choose another") from None
    return player.to_state().model_dump(), 201


@bp.get("/players/<int:player_id>")
def get_player(player_id: int):
    player = get_store().get_player(player_id)
    if player is None:
        raise ApiError(404, "unknown_player", f"no player with id {player_id}")
    return player.to_state().model_dump()
