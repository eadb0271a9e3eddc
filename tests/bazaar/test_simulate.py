"""The simulator's trade planning (pure: states in, request bodies out) and its ground truth
file; the whole flow against the engine is in test_demo."""

import random

import pytest

from bazaar.simulate import CHEAT, GIFT, PURCHASE, SWAP, EngineUnreachable, Simulator, Truth
from engine import catalog


def state(pid, gold, items):
    return {"player_id": pid, "gold": gold, "inventory": {"items": [
        {"item_id": i, "value": catalog.get_item(i).value, "quantity": q} for i, q in items]}}


@pytest.fixture
def sim():
    s = Simulator("http://127.0.0.1:9", seed=1, cheater_share=0.1)
    s.states = {1: state(1, 250_000, [(17, 1), (24, 1)]), 2: state(2, 300, [(2, 1)]),
                3: state(3, 500, [(11, 1), (1, 3)]), 4: state(4, 40, [(4, 2)])}
    s.truth.cheaters = {1: [2]}
    return s


def given(body, side):
    return sum(catalog.get_item(line["item_id"]).value * line["quantity"] for line in body[side]["items_traded"]) \
        + body[side]["gold_traded"]


def test_each_honest_behaviour_shapes_its_trade(sim):
    seen = set()
    for k in range(400):
        kind, body = sim._plan(random.Random(k))
        seen.add(kind)
        a, b = body["player_1"]["player_id"], body["player_2"]["player_id"]
        assert a != b
        v1, v2 = given(body, "player_1"), given(body, "player_2")
        if kind == GIFT:  # its cheapest item when that is worth little, else a little gold
            assert v2 == 0 and 0 < v1 <= 500
            held = sim.states[a]["inventory"]["items"]
            cheapest = min(held, key=lambda i: i["value"])
            if cheapest["value"] <= 500:
                assert body["player_1"]["items_traded"] == [{"item_id": cheapest["item_id"], "quantity": 1}]
            else:
                assert body["player_1"]["items_traded"] == [] and body["player_1"]["gold_traded"] <= 500
        elif kind == PURCHASE:  # fair, its price anywhere from half to twice the item's value
            price = body["player_2"]["gold_traded"]
            assert 0.5 * v1 - 1 <= price <= 2 * v1 + 1
        elif kind == SWAP:
            assert body["player_1"]["items_traded"] and body["player_2"]["items_traded"]
            assert body["player_1"]["gold_traded"] == 0 or body["player_2"]["gold_traded"] == 0
            assert v1 == v2  # the difference in value is paid in gold
    assert seen == {GIFT, PURCHASE, SWAP}


def test_accounts_made_for_a_ring_are_never_picked_for_honest_trades(sim):
    sim._scripted = {3, 4}
    picked = set()
    for k in range(200):
        _, body = sim._plan(random.Random(k))
        picked |= {body["player_1"]["player_id"], body["player_2"]["player_id"]}
    assert picked == {1, 2}


def test_purchase_prefers_what_the_buyer_can_afford(sim):
    body = sim._purchase(sim.states[3], sim.states[4], random.Random(3))  # 40 gold: bread yes, sword no
    assert body["player_1"]["items_traded"] == [{"item_id": 1, "quantity": 1}]


def test_bad_cheater_share_is_refused():
    with pytest.raises(ValueError, match="cheater_share"):
        Simulator("http://127.0.0.1:9", cheater_share=0.7)
    with pytest.raises(ValueError, match="offer_share"):
        Simulator("http://127.0.0.1:9", offer_share=1.5)
    with pytest.raises(ValueError, match="lookalike_share"):
        Simulator("http://127.0.0.1:9", lookalike_share=0.5)
    with pytest.raises(ValueError, match=r"unknown patterns \['circle'\]"):
        Simulator("http://127.0.0.1:9", patterns=("pair", "circle"))


def test_truth_round_trips(tmp_path):
    truth = Truth(seed=3, players={5: {"player_id": 5}}, cheaters={5: [6, 7]},
                  roles={5: ("pair", "cheater"), 6: ("pair", "accomplice"), 8: ("guild", "bank")},
                  trades=[{"kind": CHEAT, "request": {"x": 1}, "status": 200, "answer": {"status": "executed"}}],
                  offers=[{"offer_id": "a" * 32, "status": "expired"}], states=[{"player_id": 5, "version": 2}],
                  refused_accepts=[{"offer_id": "b" * 32, "fail_reason": "insufficient_gold"}])
    loaded = Truth.load(truth.save(tmp_path / "sim"))
    assert loaded == truth and loaded.accomplices == {6, 7} and loaded.executed(CHEAT) == truth.trades
    (tmp_path / "sim" / "refused_accepts.jsonl.gz").unlink()  # a truth saved before refusals were kept
    assert Truth.load(tmp_path / "sim").refused_accepts == []


def test_unreachable_engine_is_a_clear_error():
    with pytest.raises(EngineUnreachable, match="cannot reach the engine at http://127.0.0.1:9.*bazaar up"):
        Simulator("http://127.0.0.1:9").run(2, 1, show_progress=False)


@pytest.mark.parametrize("value, message", [("", "name one or more of pair"), ("pair,circle", "unknown circle")])
def test_a_bad_pattern_list_is_refused_before_anything_starts(value, message):
    from click.testing import CliRunner

    from bazaar.cli import main

    out = CliRunner().invoke(main, ["simulate", "--patterns", value])
    assert out.exit_code == 2 and message in out.output, out.output


def test_too_few_players_for_every_pattern_says_which_were_not_planted():
    from bazaar import rings

    few = Simulator("http://127.0.0.1:9", seed=3, cheater_share=0.02)
    few.plan(10)  # rings hold at most five of ten players: not one of each pattern
    planted = {r.pattern for r in few.rings}
    assert few.summary.unplanted and set(few.summary.unplanted) == set(rings.FRAUD) - planted
    enough = Simulator("http://127.0.0.1:9", seed=3, cheater_share=0.02)
    enough.plan(1_000)
    assert enough.summary.unplanted == () and {r.pattern for r in enough.rings} >= set(rings.FRAUD)
