"""The trade route: 200 when executed, 409 with a `fail_reason` when a game rule rejects it."""

from __future__ import annotations

from flask import Blueprint, current_app

from engine import auth, idempotency, metrics
from engine.body import json_body
from engine.db import get_store
from engine.schemas import TradeIn
from engine.store import Answer, TradeOutcome

bp = Blueprint("trades", __name__)


def answer(outcome: TradeOutcome) -> Answer:
    ev = outcome.event
    metrics.note_trade(ev.valid_trade, ev.fail_reason)
    body = {
        "trade_id": ev.trade_id,
        "status": "executed" if ev.valid_trade else "rejected",
        "trade_time": ev.trade_time,
        "fail_reason": ev.fail_reason,
        "player_1": outcome.player_1.api_state if outcome.player_1 else None,
        "player_2": outcome.player_2.api_state if outcome.player_2 else None,
    }
    return 200 if ev.valid_trade else 409, current_app.json.dumps(body)


@bp.post("/trade")
def trade():
    store = get_store()
    with auth.refusals_after_key_check():
        body = TradeIn.model_validate(json_body())
        idem = idempotency.from_request(store, body)
    offers = body.player_1.to_offer(), body.player_2.to_offer()
    return idempotency.respond(store.trade(*offers, answer, idem, auth.key_check()))
