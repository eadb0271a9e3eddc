"""Offers held in escrow, against a real Redis: opening takes the maker's goods, accepting exchanges
them once, cancelling and expiring return them, and the economy's totals hold through all of it.
The races run under the engine's server (granian) (`engine_service`), many clients at once."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest
import requests

from engine import create_app
from engine.auth import key_hash
from engine.db import make_store
from engine.offerbook import OfferBook
from engine.store import Idem
from engine.tokens import Tokens
from tests.pipeline import authorized


def players(client, *classes):
    out = []
    for cls in classes:
        r = client.put("/create_player", json={"player_class": cls})
        assert r.status_code == 201, r.get_data(as_text=True)
        out.append(r.get_json())
    return out


def held(state) -> dict[int, int]:
    return {i["item_id"]: i["quantity"] for i in state["inventory"]["items"]}


def counted(states, offers) -> tuple[int, Counter]:
    """Gold and units per item in the given players' states and the given open offers' `give`,
    summed here from what the API answered (not from the engine's own totals)."""
    gold, units = 0, Counter()
    for s in states:
        gold += s["gold"]
        units.update(held(s))
    for o in offers:
        gold += o["give"]["gold"]
        units.update({i["item_id"]: i["quantity"] for i in o["give"]["items"]})
    return gold, units


def totals_of(doc) -> tuple[int, Counter]:
    return doc["total"]["gold"], Counter({i["item_id"]: i["units"] for i in doc["total"]["items"]})


def offer(client, maker, to, give_items=(), give_gold=0, want_items=(), want_gold=0, **extra):
    body = {"from_player_id": maker, "to_player_id": to,
            "give": {"items": [{"item_id": i, "quantity": q} for i, q in give_items], "gold": give_gold},
            "want": {"items": [{"item_id": i, "quantity": q} for i, q in want_items], "gold": want_gold}, **extra}
    return client.post("/offers", json=body)


def test_opening_takes_the_goods_into_escrow_and_cancel_returns_them(client, outbox):
    maker, taker = players(client, "merchant", "monk")
    item, qty = next(iter(held(maker).items()))
    r = offer(client, 1, 2, [(item, qty)], 100, want_gold=5)
    assert r.status_code == 201, r.get_data(as_text=True)
    opened = r.get_json()
    assert opened["status"] == "open" and opened["from_player_id"] == 1 and opened["to_player_id"] == 2
    assert opened["give"]["gold"] == 100 and opened["give"]["items"][0]["quantity"] == qty
    assert opened["closed_at"] is None and opened["expires_at"] > opened["created_at"]
    now = client.get("/players/1").get_json()
    assert now["gold"] == maker["gold"] - 100 and item not in held(now)  # left the inventory
    assert now["version"] == maker["version"] + 1
    assert now["inventory"]["current_capacity"] == maker["inventory"]["current_capacity"]  # its room is kept
    assert opened.pop("maker_state") == now  # the answer carries the maker's new state
    assert client.get(f"/offers/{opened['offer_id']}").get_json() == opened
    totals = client.get("/economy/totals").get_json()
    assert totals["escrow"] == {"gold": 100, "items": [{"item_id": item, "units": qty}]}
    assert totals_of(totals) == counted([maker, taker], [])  # the starting kits, nothing more or less

    r = client.post(f"/offers/{opened['offer_id']}/cancel")
    assert r.status_code == 200 and r.get_json()["status"] == "cancelled" and r.get_json()["closed_at"]
    back = client.get("/players/1").get_json()
    assert r.get_json()["maker_state"] == back
    assert back["gold"] == maker["gold"] and held(back) == held(maker) and back["version"] == maker["version"] + 2
    assert back["inventory"]["current_capacity"] == maker["inventory"]["current_capacity"]
    totals = client.get("/economy/totals").get_json()
    assert totals["escrow"] == {"gold": 0, "items": []} and totals["open_offers"] == 0
    assert totals_of(totals) == counted([maker, taker], [])
    again = client.post(f"/offers/{opened['offer_id']}/cancel")
    assert again.status_code == 409 and again.get_json()["error"] == "offer_not_open"

    kinds = [(e["type"], e["event"].get("action")) for e in outbox.entries()]
    assert kinds[2:] == [("offer", "opened"), ("player_state", None), ("offer", "cancelled"), ("player_state", None)]
    opened_event = outbox.events("offer")[0]
    assert opened_event["offer_id"] == opened["offer_id"] and opened_event["give"]["gold"] == 100
    assert opened_event["want"]["gold"] == 5 and opened_event["trade_id"] is None
    assert outbox.events("player_state")[-1]["player"] == back  # the event is the state the API shows


def test_accept_exchanges_once_and_is_a_trade_with_the_offer_id(client, outbox):
    maker, taker = players(client, "merchant", "monk")
    item, qty = next(iter(held(maker).items()))
    opened = offer(client, 1, 2, [(item, 1)], want_gold=7).get_json()
    r = client.post(f"/offers/{opened['offer_id']}/accept")
    assert r.status_code == 200, r.get_data(as_text=True)
    trade = r.get_json()
    assert trade["status"] == "executed" and trade["offer_id"] == opened["offer_id"] and trade["fail_reason"] is None
    assert trade["player_1"]["player_id"] == 1 and trade["player_2"]["player_id"] == 2
    m, t = client.get("/players/1").get_json(), client.get("/players/2").get_json()
    assert trade["player_1"] == m and trade["player_2"] == t
    assert m["gold"] == maker["gold"] + 7 and held(m).get(item, 0) == qty - 1
    assert t["gold"] == taker["gold"] - 7 and held(t).get(item, 0) == held(taker).get(item, 0) + 1
    assert m["inventory"]["current_capacity"] == maker["inventory"]["current_capacity"] + 1  # escrow room freed
    closed = client.get(f"/offers/{opened['offer_id']}").get_json()
    assert closed["status"] == "accepted" and closed["trade_id"] == trade["trade_id"]
    for again in ("accept", "cancel"):
        r = client.post(f"/offers/{opened['offer_id']}/{again}")
        assert r.status_code == 409 and r.get_json()["error"] == "offer_not_open"

    (trade_event,) = outbox.events("trade")
    assert trade_event["trade_id"] == trade["trade_id"] and trade_event["offer_id"] == opened["offer_id"]
    assert trade_event["valid_trade"] and trade_event["player_2"]["gold_traded"] == 7
    assert [e["action"] for e in outbox.events("offer")] == ["opened", "accepted"]
    assert outbox.events("offer")[1]["trade_id"] == trade["trade_id"]
    for pid in (1, 2):
        (entry,) = client.get(f"/players/{pid}/trades").get_json()["trades"]
        assert entry["trade_id"] == trade["trade_id"] and entry["offer_id"] == opened["offer_id"]
    assert totals_of(client.get("/economy/totals").get_json()) == counted([maker, taker], [])


def test_an_accept_the_rules_refuse_is_an_offer_event_not_a_trade_and_the_offer_stays_open(client, outbox):
    maker, taker = players(client, "merchant", "monk")
    opened = offer(client, 1, 2, give_gold=1, want_gold=taker["gold"] + 1).get_json()
    for _ in range(5):  # the default: 5 refusals of one offer a minute, as a burst
        r = client.post(f"/offers/{opened['offer_id']}/accept")
        assert r.status_code == 409 and r.get_json()["error"] == "accept_refused"
        assert r.get_json()["fail_reason"] == "insufficient_gold" and r.get_json()["offer_id"] == opened["offer_id"]
    flood = client.post(f"/offers/{opened['offer_id']}/accept")
    assert flood.status_code == 429 and flood.get_json()["error"] == "rate_limited"
    assert 1 <= int(flood.headers["Retry-After"]) <= 12  # a token back every 12 s
    assert client.get(f"/offers/{opened['offer_id']}").get_json()["status"] == "open"
    assert client.get("/players/2").get_json() == taker
    assert outbox.events("trade") == []  # no trade, so nothing in either player's history
    for player in (1, 2):
        assert client.get(f"/players/{player}/trades").get_json()["trades"] == []
    refused = [e for e in outbox.events("offer") if e["action"] == "refused"]
    assert len(refused) == 5 and {e["reason"] for e in refused} == {"insufficient_gold"}  # the 429 left nothing
    assert {e["offer_id"] for e in refused} == {opened["offer_id"]}
    other = offer(client, 1, 2, give_gold=1, want_gold=taker["gold"] + 1).get_json()  # its own bucket
    assert client.post(f"/offers/{other['offer_id']}/accept").get_json()["error"] == "accept_refused"
    for body, code in ((dict(give_gold=maker["gold"]), "insufficient_gold"),  # 1 gold sits in escrow already
                       (dict(give_items=[(999_999, 1)]), "unknown_item"), (dict(), "empty_trade")):
        r = offer(client, 1, 2, **body)
        assert r.status_code == 409 and r.get_json()["error"] == code, (body, r.get_data(as_text=True))
    r = client.post("/offers", json={"from_player_id": 1, "to_player_id": 1, "give": {"gold": 1}})
    assert r.status_code == 409 and r.get_json()["error"] == "same_player"
    r = client.post("/offers", json={"from_player_id": 1, "to_player_id": 99, "give": {"gold": 1}})
    assert r.status_code == 409 and r.get_json()["error"] == "unknown_player"
    r = client.post("/offers", json={"to_player_id": 2, "give": {"gold": 1}})
    assert r.status_code == 422 and r.get_json()["error"] == "maker_required"
    for path in ("/offers/" + "0" * 32, "/offers/nope", "/offers/" + "0" * 32 + "/accept"):
        r = client.get(path) if "accept" not in path else client.post(path)
        assert r.status_code == 404 and r.get_json()["error"] == "unknown_offer", path
    # the two offers and their refused accepts; the opens refused above and the 404s recorded nothing
    assert [e["action"] for e in outbox.events("offer")] == ["opened", *["refused"] * 5, "opened", "refused"]


def test_escrowed_units_keep_their_room_so_a_return_always_fits(client):
    maker, taker = players(client, "monk", "merchant")  # a monk: 25 units of room, 15 held (10 of item 1, 5 of 4)
    assert (maker["inventory"]["max_capacity"], held(maker)) == (25, {1: 10, 4: 5})
    opened = offer(client, 1, 2, [(4, 5)]).get_json()
    assert client.get("/players/1").get_json()["inventory"]["current_capacity"] == 10  # the escrow's room kept

    def give(units):
        return client.post("/trade", json={"player_1": {"player_id": 2, "items_traded": [
            {"item_id": 1, "quantity": units}]}, "player_2": {"player_id": 1}})

    assert give(11).get_json()["fail_reason"] == "capacity_exceeded"  # 20 + 1 held + 5 in escrow > 25
    assert give(10).status_code == 200
    full = client.get("/players/1").get_json()
    assert full["inventory"]["current_capacity"] == 0 and held(full) == {1: 20}
    assert give(1).get_json()["fail_reason"] == "capacity_exceeded"
    assert client.post(f"/offers/{opened['offer_id']}/cancel").status_code == 200
    after = client.get("/players/1").get_json()
    assert held(after) == {1: 20, 4: 5} and after["inventory"]["current_capacity"] == 0  # back, and it fits


def test_a_player_holds_at_most_its_cap_of_open_offers(stack, api_key):
    client = authorized(create_app(stack.engine.model_copy(update={"max_open_offers": 3})).test_client(), api_key)
    players(client, "merchant", "monk")
    ids = [offer(client, 1, 2, give_gold=1).get_json()["offer_id"] for _ in range(3)]
    r = offer(client, 1, 2, give_gold=1)
    assert r.status_code == 409 and r.get_json()["error"] == "too_many_open_offers"
    assert offer(client, 2, 1, give_gold=1).status_code == 201  # the cap is the maker's
    assert client.post(f"/offers/{ids[0]}/cancel").status_code == 200
    assert offer(client, 1, 2, give_gold=1).status_code == 201
    assert client.get("/economy/totals").get_json()["escrow"]["gold"] == 4


def test_offers_expire_by_the_sweep_or_the_first_request_past_due(client, stack, outbox):
    maker, taker = players(client, "merchant", "monk")
    swept = offer(client, 1, 2, give_gold=10, expires_in_s=1).get_json()
    asked = offer(client, 1, 2, give_gold=20, expires_in_s=1).get_json()
    cancelled = offer(client, 1, 2, give_gold=40, expires_in_s=1).get_json()
    long = offer(client, 1, 2, give_gold=80, expires_in_s=600).get_json()
    book = OfferBook(make_store(stack.engine))
    assert book.sweep() == 0  # nothing due yet
    time.sleep(1.05)
    # past expires_at, not yet swept: the request ends it, returns the escrow, and hears offer_expired
    for oid, path in ((asked["offer_id"], "accept"), (cancelled["offer_id"], "cancel")):
        r = client.post(f"/offers/{oid}/{path}")
        assert r.status_code == 409 and r.get_json()["error"] == "offer_expired", r.get_data(as_text=True)
        assert client.get(f"/offers/{oid}").get_json()["status"] == "expired"
    assert client.get("/players/1").get_json()["gold"] == maker["gold"] - 10 - 80
    assert client.get("/players/2").get_json() == taker  # an accept past due gave nothing
    assert book.sweep() == 1 and book.sweep() == 0  # the one no request reached
    expired = client.get(f"/offers/{swept['offer_id']}").get_json()
    assert expired["status"] == "expired" and expired["closed_at"] >= expired["expires_at"]
    assert client.get("/players/1").get_json()["gold"] == maker["gold"] - 80
    r = client.post(f"/offers/{swept['offer_id']}/cancel")
    assert r.status_code == 409 and r.get_json()["error"] == "offer_expired"
    assert [e["action"] for e in outbox.events("offer")] == ["opened"] * 4 + ["expired"] * 3
    assert not outbox.events("trade")
    page = client.get("/players/2/offers?status=expired").get_json()
    assert {o["offer_id"] for o in page["offers"]} == {swept["offer_id"], asked["offer_id"], cancelled["offer_id"]}
    assert [o["offer_id"] for o in client.get("/players/1/offers?status=open").get_json()["offers"]] == [
        long["offer_id"]]
    totals = client.get("/economy/totals").get_json()
    assert totals["escrow"]["gold"] == 80 and totals_of(totals) == counted([maker, taker], [])


def test_the_sweep_drops_an_expiry_entry_whose_offer_is_gone(client, stack, redis_client):
    players(client, "merchant", "monk")
    ns = stack.redis.namespace
    redis_client.zadd(f"{ns}:offers:expiry", {f"{i:032x}": 1 for i in range(300)})  # ids without their offers
    book = OfferBook(make_store(stack.engine))
    assert book.sweep() == 0 and redis_client.zcard(f"{ns}:offers:expiry") == 0
    assert client.get("/economy/totals").get_json()["open_offers"] == 0


def test_a_repeat_racing_the_first_accept_replays_its_answer(client, stack, outbox):
    """Two accepts with one Idempotency-Key read before either commits: the second finds the first's
    answer on its next read and replays it, rather than being refused as offer_not_open."""
    players(client, "merchant", "monk")
    oid = offer(client, 1, 2, give_gold=5).get_json()["offer_id"]
    book = OfferBook(make_store(stack.engine))
    idem = Idem(f"{stack.redis.namespace}:idem:race-accept", "fingerprint", 60)
    answer = lambda o: (200 if o.event.valid_trade else 409, o.event.trade_id)  # noqa: E731
    first = []

    class RunTheFirstMeanwhile:  # judged after the second's first read, before it decides
        def queue(self, pipe):
            pipe.ping()

        def judge(self, results):
            first.append(book.accept(oid, None, answer, idem))

        def load_scripts(self):
            pass

    second = book.accept(oid, None, answer, idem, RunTheFirstMeanwhile())
    assert not first[0].replayed and first[0].answer[0] == 200
    assert second.replayed and second.answer == first[0].answer
    assert [e["trade_id"] for e in outbox.events("trade")] == [first[0].answer[1]]


def test_a_players_offers_page_newest_first_by_status(client):
    players(client, "merchant", "monk", "noble")
    made = [offer(client, 1, random.Random(i).choice([2, 3]), give_gold=1).get_json()["offer_id"] for i in range(9)]
    cancelled = made[::3]
    for oid in cancelled:
        client.post(f"/offers/{oid}/cancel")
    got, cursor = [], None
    while True:
        page = client.get("/players/1/offers", query_string={"limit": 4, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200
        got += page.get_json()["offers"]
        cursor = page.get_json()["next_cursor"]
        if cursor is None:
            break
    assert [o["offer_id"] for o in got] == made[::-1]
    assert [o["status"] for o in got] == ["cancelled" if o in cancelled else "open" for o in made[::-1]]
    open_ = client.get("/players/1/offers?status=open&limit=200").get_json()["offers"]
    assert [o["offer_id"] for o in open_] == [o for o in made[::-1] if o not in cancelled]
    to_2 = client.get("/players/2/offers?status=open").get_json()["offers"]
    assert {o["offer_id"] for o in to_2} == {o["offer_id"] for o in open_ if o["to_player_id"] == 2}
    for query in ("status=gone", "limit=0", "cursor=x", "page=2"):
        r = client.get(f"/players/1/offers?{query}")
        assert r.status_code == 400 and r.get_json()["error"] == "invalid_request", query
    assert client.get("/players/99/offers").status_code == 404


def test_offer_writes_are_idempotent(client, outbox):
    players(client, "merchant", "monk")
    key = {"Idempotency-Key": "open-1"}
    first = client.post("/offers", json={"from_player_id": 1, "to_player_id": 2, "give": {"gold": 3}}, headers=key)
    again = client.post("/offers", json={"to_player_id": 2, "from_player_id": 1, "give": {"gold": 3.0}}, headers=key)
    assert first.status_code == again.status_code == 201 and first.get_data() == again.get_data()
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    other = client.post("/offers", json={"from_player_id": 1, "to_player_id": 2, "give": {"gold": 4}}, headers=key)
    assert other.status_code == 422 and other.get_json()["error"] == "idempotency_key_reused"
    oid = first.get_json()["offer_id"]
    accepted = [client.post(f"/offers/{oid}/accept", headers={"Idempotency-Key": "take"}) for _ in range(2)]
    assert [r.status_code for r in accepted] == [200, 200] and accepted[0].get_data() == accepted[1].get_data()
    assert accepted[1].headers["Idempotent-Replayed"] == "true"
    r = client.post(f"/offers/{oid}/cancel", headers={"Idempotency-Key": "take"})  # another route, same key
    assert r.status_code == 422
    assert [e["action"] for e in outbox.events("offer")] == ["opened", "accepted"] and len(outbox.events("trade")) == 1


# -- races, under the engine's server (granian) -----------------------------------------------------------
def _at_once(n, call):
    barrier, out = threading.Barrier(n), [None] * n

    def run(i):
        barrier.wait()
        out[i] = call(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


@pytest.fixture
def served(engine_service, auth, redis_client):
    base = engine_service.address
    for cls in ("merchant", "monk", "noble", "warrior"):
        assert requests.put(f"{base}/create_player", json={"player_class": cls}, headers=auth).status_code == 201
    return base


def _open(base, auth, maker, to, gold, want_gold=0):
    r = requests.post(f"{base}/offers", headers=auth, timeout=30, json={
        "from_player_id": maker, "to_player_id": to, "give": {"gold": gold}, "want": {"gold": want_gold}})
    assert r.status_code == 201, r.text
    return r.json()["offer_id"]


def test_32_clients_accepting_one_offer_exactly_one_wins(served, auth):
    taker_gold = requests.get(f"{served}/players/2", headers=auth).json()["gold"]
    oid = _open(served, auth, 1, 2, 50, want_gold=1)
    session = [requests.Session() for _ in range(32)]
    answers = _at_once(32, lambda i: session[i].post(f"{served}/offers/{oid}/accept", headers=auth, timeout=60))
    codes = Counter(r.status_code for r in answers)
    assert codes == {200: 1, 409: 31}, [r.text for r in answers if r.status_code not in (200, 409)]
    assert {r.json()["error"] for r in answers if r.status_code == 409} == {"offer_not_open"}
    winner = next(r.json() for r in answers if r.status_code == 200)
    assert winner["player_2"]["gold"] == taker_gold + 50 - 1  # exchanged once
    assert requests.get(f"{served}/players/2", headers=auth).json()["gold"] == taker_gold + 50 - 1
    history = requests.get(f"{served}/players/1/trades", headers=auth).json()["trades"]
    assert [h["trade_id"] for h in history] == [winner["trade_id"]] and history[0]["received"]["gold"] == 1


def test_cancel_racing_accept_exactly_one_wins(served, auth):
    for round_ in range(6):
        oid = _open(served, auth, 1, 2, 5)
        paths = ["cancel", "accept"] if round_ % 2 else ["accept", "cancel"]
        answers = _at_once(2, lambda i: requests.post(f"{served}/offers/{oid}/{paths[i]}", headers=auth, timeout=60))
        assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
        loser = next(r for r in answers if r.status_code == 409)
        assert loser.json()["error"] == "offer_not_open"
        status = requests.get(f"{served}/offers/{oid}", headers=auth).json()["status"]
        winner = paths[[r.status_code for r in answers].index(200)]
        assert status == {"accept": "accepted", "cancel": "cancelled"}[winner]


def test_offers_and_trades_on_hot_players_conserve_everything(served, auth):
    states = [requests.get(f"{served}/players/{i}", headers=auth).json() for i in range(1, 5)]
    start = counted(states, [])
    stop = time.monotonic() + 8
    tally = Counter()

    def worker(i):
        rng, s = random.Random(i), requests.Session()
        while time.monotonic() < stop:
            a, b = rng.sample(range(1, 5), 2)
            pick = rng.random()
            if pick < 0.4:
                r = s.post(f"{served}/offers", headers=auth, timeout=60, json={
                    "from_player_id": a, "to_player_id": b, "give": {"gold": rng.randint(1, 300)},
                    "want": {"gold": rng.randint(0, 50)}, "expires_in_s": rng.choice([1, 600])})
            elif pick < 0.8:
                page = s.get(f"{served}/players/{b}/offers?status=open&limit=5", headers=auth, timeout=60).json()
                if not page["offers"]:
                    continue
                o = rng.choice(page["offers"])
                r = s.post(f"{served}/offers/{o['offer_id']}/{rng.choice(['accept', 'accept', 'cancel'])}",
                           headers=auth, timeout=60)
                if r.status_code == 429:  # an offer refused over and over: its refusals are rate limited
                    assert r.json()["error"] == "rate_limited" and r.url.endswith("/accept"), r.text
                    continue
            else:
                r = s.post(f"{served}/trade", headers=auth, timeout=60, json={
                    "player_1": {"player_id": a, "gold_traded": rng.randint(1, 500)}, "player_2": {"player_id": b}})
            tally[r.status_code] += 1

    _at_once(8, worker)
    assert set(tally) <= {200, 201, 409} and tally[200] > 20 and tally[201] > 20, tally
    states = [requests.get(f"{served}/players/{i}", headers=auth).json() for i in range(1, 5)]
    assert all(s["gold"] >= 0 and s["inventory"]["current_capacity"] >= 0 for s in states)
    open_offers = [o for i in range(1, 5) for o in requests.get(
        f"{served}/players/{i}/offers?status=open&limit=200", headers=auth).json()["offers"] if o["from_player_id"] == i]
    assert counted(states, open_offers) == start  # goods in inventories plus escrow: none made or lost
    assert totals_of(requests.get(f"{served}/economy/totals", headers=auth).json()) == start


# -- who may do what, with a player token ------------------------------------------------
def test_a_player_token_acts_on_its_own_offers_only(served, auth, redis_client, stack):
    from tests.engine.test_auth import snapshot
    from tests.engine.test_tokens import mint

    theirs = _open(served, auth, 2, 3, 5)    # between two other players
    mine = _open(served, auth, 1, 2, 5)      # player 1 made it
    to_me = _open(served, auth, 2, 1, 5)     # sent to player 1
    token = {"Authorization": f"Bearer {mint(served, auth, 1)['token']}"}
    forbidden = [
        ("get", "/players/2/offers", None), ("get", f"/offers/{theirs}", None),
        ("post", f"/offers/{theirs}/accept", None), ("post", f"/offers/{theirs}/cancel", None),
        ("post", f"/offers/{mine}/accept", None),   # a maker cannot accept its own offer
        ("post", f"/offers/{to_me}/cancel", None),  # nor an addressee cancel it
        ("post", "/offers", {"from_player_id": 2, "to_player_id": 1, "give": {"gold": 5}}),  # another's goods
        ("get", "/economy/totals", None), ("get", "/players/2/trades", None), ("get", "/players/3", None),
        ("post", "/trade", {"player_1": {"player_id": 1}, "player_2": {"player_id": 2, "gold_traded": 5}}),
        ("put", "/create_player", None), ("post", "/players/1/tokens", None),
    ]
    before = snapshot(redis_client, stack)
    for method, path, body in forbidden:
        r = requests.request(method, f"{served}{path}", json=body, headers={**token, "Idempotency-Key": "m"},
                             timeout=10)
        assert r.status_code == 403 and r.json()["error"] == "forbidden", (method, path, r.text)
    assert snapshot(redis_client, stack) == before  # nothing changed, nothing appended

    own = requests.get(f"{served}/players/1/offers", headers=token, timeout=10)
    assert own.status_code == 200 and {o["offer_id"] for o in own.json()["offers"]} == {mine, to_me}
    for oid in (mine, to_me):
        assert requests.get(f"{served}/offers/{oid}", headers=token, timeout=10).status_code == 200
    made = requests.post(f"{served}/offers", headers=token, timeout=10,
                         json={"to_player_id": 3, "give": {"gold": 2}})  # the maker is the token's player
    assert made.status_code == 201 and made.json()["from_player_id"] == 1
    same = requests.post(f"{served}/offers", headers=token, timeout=10,
                         json={"from_player_id": 1, "to_player_id": 3, "give": {"gold": 2}})
    assert same.status_code == 201
    assert requests.post(f"{served}/offers/{to_me}/accept", headers=token, timeout=10).status_code == 200
    assert requests.post(f"{served}/offers/{mine}/cancel", headers=token, timeout=10).status_code == 200

    short = mint(served, auth, 1, ttl_s=1)["token"]
    good = mint(served, auth, 1)["token"]
    time.sleep(2.1)
    other = Tokens("x" * 48).mint(1, key_hash(auth["Authorization"].split()[1])).token
    before = snapshot(redis_client, stack)
    for bad in (short, other, good[:-4]):
        for method, path in (("get", "/players/1/offers"), ("post", "/offers"), ("get", f"/offers/{to_me}"),
                             ("post", f"/offers/{made.json()['offer_id']}/cancel")):
            r = requests.request(method, f"{served}{path}", headers={"Authorization": f"Bearer {bad}"},
                                 json={"to_player_id": 3, "give": {"gold": 1}} if path == "/offers" else None,
                                 timeout=10)
            assert r.status_code == 401 and r.json()["error"] == "unauthorized", (path, r.text)
    assert snapshot(redis_client, stack) == before


def test_an_accept_refused_on_its_retry_counts_no_executed_trade(client, stack, api_key, monkeypatch):
    """The first attempt decides the exchange, a race (the addressee spends its gold meanwhile) undoes
    its commit, the retry is refused: the metrics count a refused accept, not an executed trade."""
    from prometheus_client.parser import text_string_to_metric_families

    from engine.store import Store

    _, taker = players(client, "merchant", "monk")
    oid = offer(client, 1, 2, give_gold=1, want_gold=taker["gold"]).get_json()["offer_id"]

    def counted() -> Counter:
        text = client.get("/metrics").get_data(as_text=True)
        return Counter({(s.name, s.labels.get("outcome")): s.value for f in text_string_to_metric_families(text)
                        for s in f.samples if s.name in ("bazaar_engine_trades_total", "bazaar_engine_offers_total")})

    before = counted()
    other = authorized(create_app(stack.engine).test_client(), api_key)  # another worker, as it were
    real, raced = Store.try_commit, []

    def racing(self, snapshot, step, idem):
        if not raced:  # once: the addressee gives all its gold away before this attempt commits
            raced.append(None)  # (the race's own commit comes through here too)
            raced[0] = other.post("/trade", json={"player_1": {"player_id": 2, "gold_traded": taker["gold"]},
                                                  "player_2": {"player_id": 1}}).status_code
        return real(self, snapshot, step, idem)

    monkeypatch.setattr(Store, "try_commit", racing)
    r = client.post(f"/offers/{oid}/accept")
    assert raced == [200] and r.status_code == 409 and r.get_json()["error"] == "accept_refused"
    after = counted()
    assert after[("bazaar_engine_trades_total", "executed")] - before[("bazaar_engine_trades_total", "executed")] == 1
    assert after[("bazaar_engine_offers_total", "accept_refused")] - before[("bazaar_engine_offers_total",
                                                                            "accept_refused")] == 1
