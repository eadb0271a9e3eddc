"""The rings the simulator plants (pure: states in, request bodies out); the whole flow against the
engine and the warehouse is in tests/orchestration/test_fraud.py."""

import random
from collections import Counter

import pytest

from bazaar import rings
from engine import catalog


def state(pid, gold, items):
    return {"player_id": pid, "gold": gold, "inventory": {"items": [
        {"item_id": i, "value": catalog.get_item(i).value, "quantity": q} for i, q in items]}}


def worth(side):
    return sum(catalog.get_item(line["item_id"]).value * line["quantity"] for line in side["items_traded"]) \
        + side["gold_traded"]


def test_every_ring_has_its_shape():
    rng = random.Random(3)
    for pattern in rings.FRAUD + rings.LOOKALIKES:
        for _ in range(20):
            ring = rings.build_ring(pattern, 0, rng)
            roles = Counter(m.role for m in ring.members)
            moves = Counter((s.move, ring.member(s.giver).role, s.receiver and ring.member(s.receiver).role)
                            for s in ring.steps)
            if pattern == "pair":
                assert roles["giver"] == 1 and 1 <= roles["receiver"] <= 2
                per = Counter(s.receiver for s in ring.steps)
                assert set(moves) == {("cheat", "giver", "receiver")} and min(per.values()) >= 2
            elif pattern == "star":
                assert roles["banker"] == 1 and 4 <= roles["farmer"] <= 6
                per = Counter(s.giver for s in ring.steps)
                assert set(moves) == {("deliver", "farmer", "banker")} and min(per.values()) >= 2
            elif pattern == "chain":
                assert roles == Counter({"merchant": 1, "banker": 1, "farmer": roles["farmer"]})
                assert moves[("pass", "merchant", "banker")] >= 2
                assert ring.member("merchant").only_scripted  # what it passes on stays whole
            elif pattern == "mule":
                mules = [m for m in ring.members if m.role == "mule"]
                assert 3 <= len(mules) and all(m.fresh for m in mules)
                for m in mules:  # made, fed, then passing it all on: in that order
                    mine = [s.move for s in ring.steps if m.key in (s.giver, s.receiver)]
                    assert mine == ["create", "deliver", "pass"]
            elif pattern == "rmt":
                assert ring.member("seller").player_class == "merchant"  # a kit of cheap items to sell
                assert set(moves) == {("overpay", "buyer", "seller")} and roles["buyer"] >= 4
            elif pattern == "friends":
                givers = [s.giver for s in ring.steps]
                assert Counter(givers)["friend-0"] == Counter(givers)["friend-1"]  # turn about
            elif pattern == "guild":
                assert set(moves) == {("donate", "member", "bank")}
            elif pattern == "starter":
                assert all(m.fresh for m in ring.members if m.role == "newcomer")
                assert {s.move for s in ring.steps} == {"create", "help"}


def test_rings_fill_their_share_with_one_of_each_pattern_at_least():
    planned = rings.plan_rings(10_000, 0.02, 0.03, random.Random(1))
    fraud = [r for r in planned if r.fraud]
    honest = [r for r in planned if not r.fraud]
    assert {r.pattern for r in fraud} == set(rings.FRAUD) and {r.pattern for r in honest} == set(rings.LOOKALIKES)
    assert 200 <= sum(len(r.members) for r in fraud) < 200 + 10
    assert 300 <= sum(len(r.members) for r in honest) < 300 + 12
    assert rings.plan_rings(100, 0, 0, random.Random(1)) == []
    assert sum(len(r.members) for r in rings.plan_rings(20, 0.4, 0.4, random.Random(1))) <= 10  # half at most


def test_the_moves_give_what_they_say():
    rng = random.Random(2)
    noble, poor = state(1, 250_000, [(17, 1), (24, 1)]), state(2, 30, [(1, 2)])
    merchant = state(3, 25_000, [(1, 20), (3, 10), (18, 1)])
    for _ in range(50):
        cheat = rings.cheat(noble, poor, Counter(), rng)  # all of its most valuable item, for a token
        assert cheat["player_1"]["items_traded"] == [{"item_id": 24, "quantity": 1}]
        assert worth(cheat["player_2"]) <= 5
        delivery = rings.deliver(merchant, noble, Counter(), rng)  # one unit of its best item
        assert delivery["player_1"]["items_traded"] == [{"item_id": 18, "quantity": 1}]
        sale = rings.overpay(noble, merchant, Counter(), rng)  # the seller gives a cheap item, the buyer gold
        assert sale["player_1"]["player_id"] == 3 and worth(sale["player_1"]) <= rings.CHEAP
        assert sale["player_2"]["gold_traded"] >= 10 * worth(sale["player_1"])
        assert sale["player_2"]["gold_traded"] >= rings.MIN_VALUE
        donation = rings.donate(poor, merchant, Counter(), rng)
        assert 0 < worth(donation["player_1"]) <= rings.DONATION[1] and worth(donation["player_2"]) == 0
    # a cheater whose best item is worth little passes gold instead
    spent = state(6, 20_000, [(10, 2)])
    gold = rings.cheat(spent, poor, Counter(), rng)
    assert gold["player_1"]["items_traded"] == [] and 4_000 <= gold["player_1"]["gold_traded"] <= 8_000
    broke = state(4, 500, [(2, 1)])
    assert rings.deliver(broke, noble, Counter(), rng) is None  # nothing worth delivering
    assert rings.gift(broke, noble, Counter(), rng) is None
    # a mule passes on what its ring gave it and still holds: not its own goods
    mule = state(5, 4_000, [(18, 1), (2, 3)])
    passed = rings.pass_on(mule, noble, Counter({18: 1, "gold": 2_500}), rng)
    assert passed["player_1"]["items_traded"] == [{"item_id": 18, "quantity": 1}]
    assert passed["player_1"]["gold_traded"] == 2_500 and worth(passed["player_2"]) == 0
    assert rings.pass_on(mule, noble, Counter(), rng) is None


def test_an_unknown_pattern_is_named():
    with pytest.raises(ValueError, match="unknown pattern 'circle'"):
        rings.build_ring("circle", 0, random.Random(1))


def test_evaluate_counts_only_this_runs_players():
    planted = {1: ("star", "banker"), 2: ("star", "farmer"), 3: ("star", "farmer"), 4: ("rmt", "seller"),
               9: ("guild", "bank")}
    flagged = [(1, "star"), (2, "star"), (4, "pair"), (7, "star"), (9, "pair"), (100, "star")]
    rows = {r["pattern"]: r for r in rings.evaluate(flagged, planted, players={1, 2, 3, 4, 7, 9})}
    assert rows["star"] == {"pattern": "star", "planted": 3, "flagged": 3, "found": 2, "precision": 0.667,
                            "recall": 0.667}
    assert rows["rmt"]["recall"] == 0 and rows["rmt"]["precision"] is None
    assert rows["pair"]["precision"] == 0 and rows["pair"]["recall"] is None
    assert rows["look-alikes (honest)"]["flagged"] == 1


def test_a_ring_step_the_rules_refuse_is_planned_again_from_the_state_the_refusal_answered():
    """The source traded its sceptre away meanwhile (its state here is stale): the engine refuses the
    delivery, and the step is tried again with what the refusal says it holds now."""
    from bazaar.simulate import Simulator

    sim = Simulator("http://127.0.0.1:9", seed=1)
    ring = rings.build_ring("mule", 0, random.Random(4))
    ring.ids = {"source": 1, "hub": 2, "mule-0": 3}
    ring.steps.clear()
    ring.steps.append(rings.Step("deliver", "source", "mule-0"))
    stale, now = state(1, 250_000, [(20, 1), (18, 1)]), state(1, 250_000, [(18, 1)])
    sim.states = {1: stale, 2: state(2, 100, []), 3: state(3, 100, [])}
    sim.rings, sent = [ring], []

    def engine(method, path, body=None):  # the rules: the source holds no sceptre any more
        sent.append(body)
        gives = body["player_1"]["items_traded"]
        if any(line["item_id"] == 20 for line in gives):
            return 409, {"status": "rejected", "fail_reason": "insufficient_items", "player_1": now,
                         "player_2": sim.states[3]}
        return 200, {"status": "executed", "player_1": now, "player_2": sim.states[3]}

    sim._call = engine
    while sim._ring_step(random.Random(1)):
        pass
    assert [b["player_1"]["items_traded"] for b in sent] == [[{"item_id": 20, "quantity": 1}],
                                                             [{"item_id": 18, "quantity": 1}]]
    assert ring.acted == {"source", "mule-0"}
