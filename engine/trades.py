"""The trade route: 200 when executed, 409 with a `fail_reason` when a game rule rejects it."""

from __future__ import annotations

from flask import Blueprint

from engine.body import parse
from engine.db import get_store
from engine.schemas import TradeIn

bp = Blueprint("trades", __name__)


@bp.post("/trade")
def trade():
    body = parse(TradeIn)
    outcome = get_store().trade(body.player_1.to_offer(), body.player_2.to_offer())
    ev = outcome.event
    answer = {
        "trade_id": ev.trade_id,
        "status": "executed" if ev.valid_trade else "rejected",
        "trade_time": ev.trade_time,
        "fail_reason": ev.fail_reason,
        "player_1": outcome.player_1.to_state().model_dump() if outcome.player_1 else None,
        "player_2": outcome.player_2.to_state().model_dump() if outcome.player_2 else None,
    }
    return answer, 200 if ev.valid_trade else 409
