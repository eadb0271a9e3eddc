"""The game rules as pure functions: no Redis."""

import random
from collections import Counter

import pytest

from engine import catalog, rules
from engine.rules import Claim, Offer, Player


def player(pid=1, gold=100, cap=10, items=None, version=3, name="Ann", cls="warrior"):
    return Player(pid, name, cls, version, gold, cap, dict(items or {}))


def test_apply_trade_moves_items_and_gold_and_bumps_versions():
    a = player(1, gold=100, cap=10, items={5: 2, 6: 1})
    b = player(2, gold=50, cap=10, items={7: 1}, version=8, name="Bo")
    give_a, give_b = Offer(1, {5: 2}, 10), Offer(2, {7: 1}, 40)
    assert rules.trade_fail_reason(a, b, give_a, give_b) is None
    a2, b2 = rules.apply_trade(a, b, give_a, give_b)
    assert (a2.gold, dict(a2.items), a2.version) == (130, {6: 1, 7: 1}, 4)
    assert (b2.gold, dict(b2.items), b2.version) == (20, {5: 2}, 9)
    assert a2.free_capacity == 8 and b2.free_capacity == 8


@pytest.mark.parametrize(
    "o1, o2, reason",
    [
        (Offer(1, {5: 1}), Offer(1, {}), rules.SAME_PLAYER),
        (Offer(1, {999: 1}), Offer(2, {}), rules.UNKNOWN_ITEM),
        (Offer(1, {}), Offer(2, {}), rules.EMPTY_TRADE),
        (Offer(1, {5: 1}), Offer(3, {}), rules.UNKNOWN_PLAYER),
        (Offer(1, {5: 3}), Offer(2, {}), rules.INSUFFICIENT_ITEMS),
        (Offer(1, {8: 1}), Offer(2, {}), rules.INSUFFICIENT_ITEMS),
        (Offer(1, {}, 101), Offer(2, {7: 1}), rules.INSUFFICIENT_GOLD),
        (Offer(1, {}, 1), Offer(2, {7: 1}, 0), rules.CAPACITY_EXCEEDED),  # a holds 10 of 10 units
        (Offer(1, {5: 1}), Offer(2, {}, 0, Claim(gold=49)), rules.STALE_STATE),
        (Offer(1, {5: 1}, 0, Claim(version=2)), Offer(2, {}), rules.STALE_STATE),
        (Offer(1, {5: 1}, 0, Claim(items={5: 2})), Offer(2, {}), rules.STALE_STATE),
        (Offer(1, {5: 1}, 0, Claim(username="Bo")), Offer(2, {}), rules.STALE_STATE),
    ],
)
def test_each_rule_rejects(o1, o2, reason):
    a = player(1, gold=100, cap=10, items={5: 2, 6: 8})
    b = player(2, gold=50, cap=10, items={7: 1}, name="Bo")
    players = {1: a, 2: b}
    assert rules.trade_fail_reason(players.get(o1.player_id), players.get(o2.player_id), o1, o2) == reason


def test_a_current_claim_is_not_stale():
    a = player(1, gold=100, cap=10, items={5: 2, 6: 1})
    claim = Claim(username="Ann", player_class="warrior", gold=100, version=3,
                  max_capacity=10, current_capacity=7, items={5: 2, 6: 1})
    assert not rules.is_stale(a, claim)
    assert rules.is_stale(a, Claim(current_capacity=3))  # the seed's meaning: free units


def test_giving_frees_capacity_for_receiving():
    a = player(1, cap=3, items={5: 3})
    b = player(2, cap=3, items={6: 3})
    assert rules.trade_fail_reason(a, b, Offer(1, {5: 3}), Offer(2, {6: 3})) is None
    assert rules.trade_fail_reason(a, b, Offer(1, {5: 1}), Offer(2, {6: 2})) == rules.CAPACITY_EXCEEDED


def test_storage_round_trip():
    a = player(4, gold=7, items={3: 2, 28: 1}, version=12)
    assert Player.loads(4, 12, a.dumps()) == a


def test_new_player_gets_the_class_kit():
    cls = catalog.CLASSES["merchant"]
    p = rules.new_player(9, "Zed", cls)
    assert (p.gold, p.max_capacity, p.version) == (25_000, 80, 1)
    assert dict(p.items) == {1: 20, 3: 10, 10: 2, 18: 1}
    assert p.free_capacity == 80 - 33


def test_catalog_spreads_values_and_fits_capacities():
    values = [i.value for i in catalog.ITEMS.values()]
    assert len(catalog.ITEMS) >= 25 and len(catalog.CLASSES) >= 12
    assert min(values) < 10 and max(values) >= 1_000_000
    for cls in catalog.CLASSES.values():
        assert sum(q for _, q in cls.items) <= cls.max_capacity, cls.name
        assert all(i in catalog.ITEMS for i, _ in cls.items), cls.name


def test_random_class_follows_the_weights():
    rng = random.Random(1)
    n = 40_000
    counts = Counter(catalog.draw_class(rng).name for _ in range(n))
    total = sum(c.weight for c in catalog.CLASSES.values())
    for cls in catalog.CLASSES.values():
        assert abs(counts[cls.name] / n - cls.weight / total) < 0.01, cls.name


def test_usernames_vary():
    rng = random.Random(3)
    names = {catalog.random_username(rng) for _ in range(1000)}
    assert len(names) > 990
    assert all(n[0].isupper() and n[-1].isdigit() for n in names)
