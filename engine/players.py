"""Player routes: create one, read one, mint a player token for one or revoke its tokens, read one's
trade history."""

from __future__ import annotations

from flask import Blueprint, current_app, g, request

from engine import auth, catalog, idempotency
from engine.body import json_body
from engine.db import get_rng, get_store
from engine.errors import RETRY, ApiError
from engine.rules import Player
from engine.schemas import CreatePlayerIn, HistoryQuery, TokenIn
from engine.store import Answer, UsernameTaken, redis_errors

bp = Blueprint("players", __name__)


def answer(player: Player) -> Answer:
    return 201, current_app.json.dumps(player.api_state)


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
    return player.api_state


@bp.post("/players/<int:player_id>/tokens")
def mint_token(player_id: int):
    """A player token for this player (the game's API key only: a token cannot mint tokens)."""
    body = TokenIn.model_validate(json_body(allow_empty=True))
    tokens = auth.get_tokens()
    if tokens is None:
        raise ApiError(503, "tokens_unavailable", "this engine mints no player tokens: set BAZAAR_TOKEN_SECRET "
                                                  "(32+ characters) in its environment", headers=RETRY)
    if get_store().get_player(player_id) is None:
        raise ApiError(404, "unknown_player", f"no player with id {player_id}")
    with redis_errors():
        key_gen, epoch = auth.get_keys().minting(g.credential, player_id)
    minted = tokens.mint(player_id, auth.key_hash(g.credential), body.ttl_s, key_gen=key_gen, epoch=epoch)
    return {"token": minted.token, "player_id": minted.player_id, "expires_at": minted.expires_at}, 201


@bp.delete("/players/<int:player_id>/tokens")
def revoke_tokens(player_id: int):
    """Refuse every token of this player minted so far (the game's API key only); tokens minted later hold."""
    if get_store().get_player(player_id) is None:
        raise ApiError(404, "unknown_player", f"no player with id {player_id}")
    with redis_errors():
        epoch = auth.get_keys().revoke_player_tokens(player_id)
    return {"player_id": player_id, "token_epoch": epoch}


@bp.get("/players/<int:player_id>/trades")
def history(player_id: int):
    """The player's trades, newest first, a page at a time (its own, with a player token)."""
    query = HistoryQuery.model_validate(request.args.to_dict())
    store = get_store()
    if store.get_player(player_id) is None:
        raise ApiError(404, "unknown_player", f"no player with id {player_id}")
    page, more = store.history(player_id, query.limit, query.cursor)
    return {"player_id": player_id, "trades": page, "next_cursor": more}
