"""The economy's running totals against a real Redis: kept by the scripts that move goods, started
by one full count on a Redis that never had them, and checked by an audit that counts in chunks
while trades go on between its steps.  What they must equal is summed here from the API's answers
(every player's state and every open offer), never from the engine's own totals."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from engine import catalog
from engine.db import make_store
from engine.offerbook import OfferBook
from tests.engine.test_offers import counted, held, offer, players, totals_of

CLASSES = ("merchant", "monk", "noble", "warrior")


def economy(client, n: int) -> int:
    """`n` players, some trades between them and some offers opened, accepted and cancelled; the
    offers left open."""
    players(client, *(CLASSES[i % len(CLASSES)] for i in range(n)))
    rng = random.Random(5)
    for _ in range(3 * n):
        a, b = rng.sample(range(1, n + 1), 2)
        r = client.post("/trade", json={"player_1": {"player_id": a, "gold_traded": rng.randint(1, 30)},
                                        "player_2": {"player_id": b, "gold_traded": rng.randint(0, 10)}})
        assert r.status_code in (200, 409), r.get_data(as_text=True)
    left = 0
    for i in range(1, n, 2):
        opened = offer(client, i, i + 1, give_gold=7, want_gold=1)
        assert opened.status_code == 201, opened.get_data(as_text=True)
        if i % 4 == 1:
            assert client.post(f"/offers/{opened.get_json()['offer_id']}/accept").status_code == 200
        elif i % 8 == 3:
            assert client.post(f"/offers/{opened.get_json()['offer_id']}/cancel").status_code == 200
        else:
            left += 1
    return left


def answered(client, n: int) -> tuple[int, Counter]:
    """Gold and units per item in every player's state and every open offer, as the API answers them."""
    states = [client.get(f"/players/{p}").get_json() for p in range(1, n + 1)]
    offers = [o for p in range(1, n + 1)
              for o in client.get(f"/players/{p}/offers", query_string={"status": "open"}).get_json()["offers"]
              if o["from_player_id"] == p]
    return counted(states, offers)


@pytest.fixture
def book(stack, redis_client) -> OfferBook:
    return OfferBook(make_store(stack.engine))


def test_the_running_totals_follow_every_trade_and_offer(client, book):
    left = economy(client, 16)
    doc = client.get("/economy/totals").get_json()
    assert totals_of(doc) == answered(client, 16)
    assert left == 2 and doc["players"] == 16 and doc["open_offers"] == left
    assert doc["escrow"]["gold"] == 7 * left


def test_a_redis_without_running_totals_is_counted_once(client, book, redis_client, stack):
    economy(client, 8)
    before = client.get("/economy/totals").get_json()
    redis_client.delete(book.store.k_totals)  # as an engine older than the running totals left it
    assert client.get("/economy/totals").get_json() == before
    assert redis_client.hget(book.store.k_totals, "counted") == b"1"


def test_an_audit_in_chunks_counts_what_trades_between_its_steps_moved(client, book):
    n = 20
    economy(client, n)
    rng, moved = random.Random(8), []

    def trade_between_steps(done: int, of: int) -> None:
        # gold from a player the audit has counted to one it has not, and back, and items too:
        # counted twice, or not at all, unless the audit follows the counted players' changes
        a, b = rng.randint(1, done), rng.randint(done + 1, of)
        for x, y in ((a, b), (b, a)):
            mine = held(client.get(f"/players/{x}").get_json())
            give = [{"item_id": i, "quantity": 1} for i in list(mine)[:1]]
            r = client.post("/trade", json={"player_1": {"player_id": x, "items_traded": give, "gold_traded": 11},
                                            "player_2": {"player_id": y}})
            assert r.status_code == 200 and r.get_json()["status"] == "executed", r.get_data(as_text=True)
            moved.append((x, y))
        opened = offer(client, b, a, give_gold=3)  # escrow grows meanwhile too
        assert opened.status_code == 201

    audit = book.audit(chunk=3, progress=trade_between_steps)
    assert len(moved) >= 2 * (n // 3 - 1)  # trades ran between the steps
    assert audit.matches, (audit.found, audit.kept)
    gold, units = answered(client, n)
    assert (audit.found.inventory_gold + audit.found.escrow_gold,
            Counter(audit.found.inventory_items) + Counter(audit.found.escrow_items)) == (gold, units)
    assert audit.found.players == n
    assert not book.store.r.exists(book.store.k_audit)  # nothing left for commits to count into


def test_an_audit_finds_running_totals_that_went_wrong(client, book, redis_client):
    economy(client, 6)
    assert redis_client.hget(book.store.k_totals, "counted") == b"1"  # kept from the first player on
    redis_client.hincrby(book.store.k_totals, "g", 5)  # as a script that moved gold without telling them would
    audit = book.audit(chunk=4)
    assert not audit.matches
    assert audit.kept.inventory_gold - audit.found.inventory_gold == 5
    assert audit.found.inventory_gold + audit.found.escrow_gold == answered(client, 6)[0]


def test_a_player_whose_id_an_audit_passed_before_it_existed_is_counted(client, book):
    """An id is taken (INCR) before the step that creates the player: an audit's chunk can pass the id
    while it is still empty, and a later id's player is created meanwhile."""
    economy(client, 9)
    book.totals()
    store, real_incr = book.store, book.store.r.incr
    reserved = []

    def incr(name, *more):
        got = real_incr(name, *more)
        if name == store.k_seq and not reserved:
            reserved.append(got)
            players(client, "monk")  # the next id's player, created first (through the app's own store)
            while int(store.r.hget(store.k_audit, "cursor") or 0) < got:  # the audit passes the empty id
                assert book.audit_step(1)[0] == b"more"
        return got

    store.r.incr = incr
    try:
        store.create_player(catalog.CLASSES["noble"], None, random.Random(1))
    finally:
        store.r.incr = real_incr
    assert reserved == [10] and int(store.r.hget(store.k_audit, "cursor")) == 10
    audit = book.audit(chunk=1)  # goes on from its cursor
    assert audit.matches, (audit.found, audit.kept)
    assert audit.found.players == audit.kept.players == 11
    gold, units = answered(client, 11)
    assert audit.found.inventory_gold + audit.found.escrow_gold == gold


def test_bazaar_audit_prints_the_count_and_exits_1_when_the_totals_differ(client, book, redis_client, stack):
    from click.testing import CliRunner

    from bazaar import cli

    economy(client, 5)
    book.totals()
    env = {**stack.env(), **stack.redis_env()}  # the test stack: its home (Redis' password), ports, namespace
    runner = CliRunner()
    ok = runner.invoke(cli.main, ["audit", "--chunk", "2", "--pause-ms", "0"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "match the count" in ok.output
    redis_client.hincrby(book.store.k_totals, "g", 3)
    bad = runner.invoke(cli.main, ["audit", "--chunk", "2", "--pause-ms", "0"], env=env)
    assert bad.exit_code == 1, bad.output
    assert "differ from the count" in bad.output
    gold = answered(client, 5)[0]
    assert f"{gold - book.totals().escrow_gold:,}" in bad.output  # the count's inventory gold, as printed
