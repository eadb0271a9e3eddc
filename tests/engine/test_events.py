"""The hot path's plain-data spellings of a player's state and its event against the event
contract's pydantic models: the same document, byte for byte.  Pure code: no Redis."""

import json

import pytest

from engine import catalog, events
from engine.events import PlayerState, PlayerStateEvent
from engine.rules import Player

WHEN = "2026-11-29T10:00:00.123456Z"

PLAYERS = [
    Player(7, "Ann", "warrior", 3, 120, 10, {5: 2, 1: 1}),  # items out of id order
    Player(8, "Bo", "merchant", 1, 0, 40, {}, escrow_units=4),  # empty, units in escrow
    Player(9, "Cy", "monk", 12, 5, 6, {999: 1, 2: 3}, escrow_units=1),  # an id the catalog lacks
]


def expected_state(p: Player) -> dict:
    """The state spelled from the catalog by hand, in the contract's field order."""
    items = []
    for item_id in sorted(p.items):
        item = catalog.ITEMS.get(item_id)
        items.append({"item_id": item_id, "name": item.name if item else None, "level": item.level if item else None,
                      "value": item.value if item else None, "quantity": p.items[item_id]})
    held = sum(p.items.values())
    return {"player_id": p.player_id, "username": p.username, "player_class": p.player_class, "version": p.version,
            "inventory": {"max_capacity": p.max_capacity, "current_capacity": p.max_capacity - held - p.escrow_units,
                          "items": items},
            "gold": p.gold}


@pytest.mark.parametrize("p", PLAYERS, ids=lambda p: p.username)
def test_api_state_is_the_contracts_state_in_its_order(p):
    assert list(p.api_state.items()) == list(expected_state(p).items())  # values and key order
    assert p.api_state["inventory"]["items"] == expected_state(p)["inventory"]["items"]
    assert PlayerState.model_validate(p.api_state).model_dump() == expected_state(p)
    assert p.to_state() == PlayerState.model_validate(expected_state(p))


@pytest.mark.parametrize("p", PLAYERS, ids=lambda p: p.username)
def test_state_event_json_is_the_models_json_byte_for_byte(p):
    fast = events.state_event_json(p.api_state, WHEN)
    doc = json.loads(fast)
    assert len(doc["event_id"]) == 32 and doc["event_id"] != doc["state_id"]
    model = PlayerStateEvent(event_id=doc["event_id"], event_time=WHEN, state_id=doc["state_id"], state_time=WHEN,
                             player=PlayerState.model_validate(expected_state(p)))
    assert fast.decode() == model.model_dump_json()
    assert PlayerStateEvent.model_validate_json(fast) == model  # and the contract accepts it
