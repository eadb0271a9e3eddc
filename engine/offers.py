"""Offer routes: open, read, accept, cancel; a player's offers; the economy's totals.

With the game's API key every route acts for any player (`from_player_id` names
an offer's maker).  With a player token (`engine.auth`) a player opens offers
giving its own goods, reads offers it is a party to, accepts those addressed to
it and cancels those it made; anything else is 403 `forbidden`.  The writes take
`Idempotency-Key` as `/trade` does.
"""

from __future__ import annotations

import re

from flask import Blueprint, current_app, g, request

from engine import auth, idempotency, metrics
from engine.body import json_body
from engine.db import get_offerbook, get_store
from engine.errors import ApiError
from engine.offerbook import ACCEPT_REFUSED, OfferRecord, OfferRefused, UnknownOffer
from engine.rules import Player
from engine.schemas import NoBody, OfferIn, OffersQuery
from engine.store import Answer, TradeOutcome
from engine.trades import answer as trade_answer

bp = Blueprint("offers", __name__)
OFFER_ID = re.compile(r"[0-9a-f]{32}")


def _offer_answer(status: int):
    """The offer, and the maker's state after the step (its goods into or out of escrow)."""
    def answer(offer: OfferRecord, maker: Player) -> Answer:
        return status, current_app.json.dumps({**offer.body(), "maker_state": maker.api_state})
    return answer


def _accepted(outcome: TradeOutcome) -> Answer:
    status, body = trade_answer(outcome)
    doc = current_app.json.loads(body)
    doc["offer_id"] = outcome.event.offer_id
    return status, current_app.json.dumps(doc)


def _unknown(offer_id: str) -> ApiError:
    return ApiError(404, "unknown_offer", f"no offer with id {offer_id!r} (closed offers are kept a limited time)")


def _checked_id(offer_id: str) -> str:
    if not OFFER_ID.fullmatch(offer_id):
        raise _unknown(offer_id)
    return offer_id


def _refusal(exc: OfferRefused) -> ApiError:
    if exc.retry_after_s is not None:
        return ApiError(exc.status, exc.code, exc.message, headers={"Retry-After": str(exc.retry_after_s)},
                        reason="offer_refusals")
    return ApiError(exc.status, exc.code, exc.message)


@bp.post("/offers")
def open_offer():
    book = get_offerbook()
    player = auth.acting_player()
    with auth.refusals_after_key_check():
        body = OfferIn.model_validate(json_body())
        if player is not None and body.from_player_id not in (None, player):
            raise auth.forbidden(player, ", giving its own goods")
        maker = player if player is not None else body.from_player_id
        if maker is None:  # valid as a body (a player token leaves it out), not from the game's key
            raise ApiError(422, "maker_required", "with the game's API key, from_player_id must name the offer's "
                                                  "maker")
        idem = idempotency.from_request(book.store, body)
    try:
        done = book.open(maker, body.to_player_id, body.give.to_offer(maker), body.want.to_offer(body.to_player_id),
                         body.expires_in_s, _offer_answer(201), idem, auth.key_check())
    except OfferRefused as exc:
        raise _refusal(exc) from None
    return idempotency.respond(done)


@bp.get("/offers/<offer_id>")
def get_offer(offer_id: str):
    offer = get_offerbook().get(_checked_id(offer_id))
    if offer is None:
        raise _unknown(offer_id)
    player = auth.acting_player()
    if player is not None and player not in (offer.from_player_id, offer.to_player_id):
        raise auth.forbidden(player, " it is a party to")
    return offer.body()


def _close(offer_id: str, close):
    book = get_offerbook()
    with auth.refusals_after_key_check():
        offer_id = _checked_id(offer_id)
        body = NoBody.model_validate(json_body(allow_empty=True))
        idem = idempotency.from_request(book.store, body)
    try:
        return idempotency.respond(close(book, offer_id, idem))
    except UnknownOffer:
        raise _unknown(offer_id) from None
    except OfferRefused as exc:
        raise _refusal(exc) from None


@bp.post("/offers/<offer_id>/accept")
def accept(offer_id: str):
    """The addressee takes the offer: 200 with the trade; 409 `accept_refused` with its `fail_reason` when a
    game rule refuses it (an offer event, not a trade; the offer stays open)."""
    def run(book, oid, idem):
        done = book.accept(oid, auth.acting_player(), _accepted, idem, auth.key_check())
        status, body = done.answer
        if status != 200:  # no trade committed: an executed trade decided by an attempt a race undid is not one
            g.pop("trade_outcome", None)
        if status == 409 and f'"{ACCEPT_REFUSED}"' in body:  # else an offer ended, as the status says
            metrics.note_offer("accept_refused")
        return done

    return _close(offer_id, run)


@bp.post("/offers/<offer_id>/cancel")
def cancel(offer_id: str):
    """The maker withdraws the offer: its escrow returns."""
    return _close(offer_id, lambda book, oid, idem: book.cancel(oid, auth.acting_player(), _offer_answer(200), idem,
                                                                 auth.key_check()))


@bp.get("/players/<int:player_id>/offers")
def player_offers(player_id: int):
    """The offers a player made or was sent, newest first, a page at a time."""
    query = OffersQuery.model_validate(request.args.to_dict())
    if get_store().get_player(player_id) is None:
        raise ApiError(404, "unknown_player", f"no player with id {player_id}")
    page, more = get_offerbook().list(player_id, query.status, query.limit,
                                      None if query.cursor is None else int(query.cursor))
    return {"player_id": player_id, "offers": [o.body() for o in page], "next_cursor": more}


@bp.get("/economy/totals")
def totals():
    """Gold and units per item in inventories and in escrow, from the running totals: they change only
    when players are created (an admin key only)."""
    t = get_offerbook().totals()

    def items(held: dict[int, int]) -> list[dict]:
        return [{"item_id": i, "units": q} for i, q in sorted(held.items())]

    return {"players": t.players, "open_offers": t.open_offers,
            "inventories": {"gold": t.inventory_gold, "items": items(t.inventory_items)},
            "escrow": {"gold": t.escrow_gold, "items": items(t.escrow_items)},
            "total": {"gold": t.inventory_gold + t.escrow_gold,
                      "items": items({i: t.inventory_items.get(i, 0) + t.escrow_items.get(i, 0)
                                      for i in set(t.inventory_items) | set(t.escrow_items)})}}
