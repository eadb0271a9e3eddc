"""Idempotency-Key on the engine under the engine's server (granian): one execution per key whatever the client does
(16 at once, a reply dropped on the way), the original answer replayed, a reused key refused."""

import json
import random
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests

from engine import catalog
from engine.auth import Keys
from engine.db import make_store
from engine.idempotency import fingerprint
from engine.schemas import TradeIn
from engine.store import Idem, KeyReused

TRADE = {"player_1": {"player_id": 1, "gold_traded": 25, "items_traded": [{"item_id": 1, "quantity": 2}]},
         "player_2": {"player_id": 2, "gold_traded": 0}}


@pytest.fixture
def engine(engine_service, auth):
    base = engine_service.address
    made = [requests.put(f"{base}/create_player", json={"player_class": c}, headers=auth).json()
            for c in ("merchant", "monk")]
    return base, made


def versions(base, auth):
    return [requests.get(f"{base}/players/{i}", headers=auth, timeout=10).json()["version"] for i in (1, 2)]


def trade_events(outbox):
    return outbox.events("trade")


def test_sixteen_at_once_execute_once_with_identical_answers(engine, auth, outbox):
    base, _ = engine
    headers = {**auth, "Idempotency-Key": f"order-{uuid.uuid4()}"}
    barrier = threading.Barrier(16)

    def one(_):
        barrier.wait()
        r = requests.post(f"{base}/trade", json=TRADE, headers=headers, timeout=30)
        return r.status_code, r.content, r.headers.get("Idempotent-Replayed")

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(one, range(16)))
    assert {(code, body) for code, body, _ in answers} == {(200, answers[0][1])}  # one answer, byte for byte
    assert sorted(str(h) for _, _, h in answers) == ["None"] + ["true"] * 15
    events = trade_events(outbox)
    assert len(events) == 1 and events[0]["trade_id"] == json.loads(answers[0][1])["trade_id"]
    assert versions(base, auth) == [2, 2]  # each player bumped once
    assert len(outbox.events("player_state")) == 4  # two creations, one trade's two states


def test_reply_dropped_by_the_client_is_replayed_on_retry(engine, auth, outbox):
    base, _ = engine
    key = f"lost-{uuid.uuid4()}"
    body = json.dumps(TRADE).encode()
    url = urlsplit(base)
    request = (f"POST /trade HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
               f"Authorization: {auth['Authorization']}\r\nIdempotency-Key: {key}\r\n"
               f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
    # send, then give up without reading the answer, as a client whose timeout fires does. The
    # socket stays open until the trade is in the outbox: a server may drop a request whose
    # connection closed before it was dispatched, and then there is nothing to replay.
    with socket.create_connection((url.hostname, url.port)) as s:
        s.sendall(request)
        deadline = time.monotonic() + 10
        while not trade_events(outbox) and time.monotonic() < deadline:
            time.sleep(0.05)
    first = trade_events(outbox)
    assert len(first) == 1  # the engine executed it though nobody read the answer

    retry = requests.post(f"{base}/trade", json=TRADE, headers={**auth, "Idempotency-Key": key}, timeout=10)
    assert retry.status_code == 200 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["trade_id"] == first[0]["trade_id"] and retry.json()["status"] == "executed"
    assert trade_events(outbox) == first and versions(base, auth) == [2, 2]


def test_same_key_other_body_is_refused(engine, auth, outbox):
    base, _ = engine
    headers = {**auth, "Idempotency-Key": "k-1"}
    first = requests.post(f"{base}/trade", json=TRADE, headers=headers, timeout=10)
    other = {**TRADE, "player_2": {"player_id": 2, "gold_traded": 1}}
    r = requests.post(f"{base}/trade", json=other, headers=headers, timeout=10)
    assert first.status_code == 200 and r.status_code == 422
    assert r.json()["error"] == "idempotency_key_reused"
    # the same body, keys in another order, spaced otherwise, 25 as 25.0, a default spelled out:
    # the same request
    same = json.dumps({"player_2": {**TRADE["player_2"], "items_traded": []},
                       "player_1": {**TRADE["player_1"], "gold_traded": 25.0}}, indent=3)
    again = requests.post(f"{base}/trade", data=same, headers=headers, timeout=10)
    assert again.status_code == 200 and again.content == first.content
    # the same key on another route is another request
    assert requests.put(f"{base}/create_player", headers=headers, timeout=10).status_code == 422
    assert len(trade_events(outbox)) == 1 and versions(base, auth) == [2, 2]


def test_rejected_trade_is_replayed_too(engine, auth, outbox):
    base, _ = engine
    broke = {"player_1": {"player_id": 2, "gold_traded": 10**9}, "player_2": {"player_id": 1}}
    headers = {**auth, "Idempotency-Key": "too-much"}
    first = requests.post(f"{base}/trade", json=broke, headers=headers, timeout=10)
    second = requests.post(f"{base}/trade", json=broke, headers=headers, timeout=10)
    assert first.status_code == second.status_code == 409 and first.content == second.content
    assert first.json()["fail_reason"] == "insufficient_gold" and second.headers["Idempotent-Replayed"] == "true"
    assert len(trade_events(outbox)) == 1


def test_create_player_once_per_key(engine, auth, outbox):
    base, _ = engine
    headers = {**auth, "Idempotency-Key": "new-hero"}
    answers = [requests.put(f"{base}/create_player", json={"player_class": "bard"}, headers=headers, timeout=10)
               for _ in range(3)]
    assert [a.status_code for a in answers] == [201] * 3 and len({a.content for a in answers}) == 1
    assert answers[0].json()["player_id"] == 3
    assert requests.get(f"{base}/health").json()["players"] == 3 and len(outbox.events("player_state")) == 3


def test_keys_are_scoped_to_the_api_key(engine, auth, redis_client, stack, outbox):
    base, _ = engine
    other = Keys(redis_client, stack.redis.namespace).create("second-game", 1000)
    for key in (auth["Authorization"], f"Bearer {other}"):
        r = requests.post(f"{base}/trade", json=TRADE, headers={"Authorization": key, "Idempotency-Key": "shared"})
        assert r.status_code == 200 and "Idempotent-Replayed" not in r.headers
    assert len(trade_events(outbox)) == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "naïve"])
def test_malformed_idempotency_key_is_a_400(client, outbox, key):
    client.put("/create_player")
    client.put("/create_player")
    r = client.post("/trade", json=TRADE, headers={"Idempotency-Key": key.encode("utf-8").decode("latin-1")})
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_idempotency_key"
    assert trade_events(outbox) == []


def test_refused_request_stores_nothing_and_frees_its_key(client, outbox):
    client.put("/create_player", json={"player_class": "merchant"})
    client.put("/create_player", json={"player_class": "monk"})
    headers = {"Idempotency-Key": "fix-and-retry"}
    bad = client.post("/trade", json={**TRADE, "gold_trade": 5}, headers=headers)
    assert bad.status_code == 400 and bad.get_json()["fields"][0]["field"] == "gold_trade"
    good = client.post("/trade", json=TRADE, headers=headers)
    assert good.status_code == 200 and "Idempotent-Replayed" not in good.headers
    assert len(trade_events(outbox)) == 1


def test_repeat_racing_the_first_replays_its_answer_at_commit(stack, redis_client, api_key, outbox):
    """Two requests with one key read before either commits: the script finds the first one's
    answer when the second commits, so the second replays it and writes nothing."""
    store = make_store(stack.engine)
    rng = random.Random(5)
    for cls in ("merchant", "monk"):
        store.create_player(catalog.CLASSES[cls], None, rng)
    body = TradeIn.model_validate(TRADE)
    idem = Idem(f"{stack.redis.namespace}:idem:race", fingerprint("POST", "/trade", body), 60)
    offers = body.player_1.to_offer(), body.player_2.to_offer()
    answer = lambda o: (200 if o.event.valid_trade else 409, o.event.trade_id)  # noqa: E731
    first = []

    class RunTheFirstMeanwhile:  # judged after the second's read, before its commit
        def queue(self, pipe):
            pipe.ping()

        def judge(self, results):
            first.append(store.trade(*offers, answer, idem))

        def load_scripts(self):
            pass

    second = store.trade(*offers, answer, idem, RunTheFirstMeanwhile())
    assert not first[0].replayed and second.replayed and second.answer == first[0].answer
    assert [e["trade_id"] for e in trade_events(outbox)] == [first[0].answer[1]]
    assert [p.version for p in store.get_players([1, 2])] == [2, 2]
    other = TradeIn.model_validate({**TRADE, "player_2": {"player_id": 2, "gold_traded": 3}})
    with pytest.raises(KeyReused):
        store.trade(other.player_1.to_offer(), other.player_2.to_offer(), answer,
                    Idem(idem.record, fingerprint("POST", "/trade", other), 60))
