"""The engine's HTTP API against a real Redis (through Flask's test client)."""

import codecs
import json

import pytest

from engine import catalog
from engine.events import PlayerStateEvent, TradeEvent


def create(client, **body):
    r = client.put("/create_player", json=body) if body else client.put("/create_player")
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def kit(cls_name):
    cls = catalog.CLASSES[cls_name]
    return {i: q for i, q in cls.items}


def held(state):
    return {i["item_id"]: i["quantity"] for i in state["inventory"]["items"]}


def trade(client, side_1, side_2, **kw):
    return client.post("/trade", json={"player_1": side_1, "player_2": side_2}, **kw)


@pytest.fixture
def pair(client):
    """A merchant (rich, roomy) and a monk (poor, small), created with fixed classes."""
    return create(client, player_class="merchant", username="Mara"), create(client, player_class="monk")


# -- players ------------------------------------------------------------------
def test_create_player_without_body_draws_class_and_name(client, outbox):
    first, second = create(client), create(client)
    assert (first["player_id"], second["player_id"]) == (1, 2)
    for state in (first, second):
        cls = catalog.CLASSES[state["player_class"]]
        assert held(state) == kit(cls.name)
        assert state["gold"] == cls.gold and state["version"] == 1
        inv = state["inventory"]
        assert inv["current_capacity"] == cls.max_capacity - sum(q for _, q in cls.items)
    assert first["username"] != second["username"]
    events = outbox.events("player_state")
    assert [e["player"] for e in events] == [first, second]
    for e in events:
        PlayerStateEvent.model_validate(e)


def test_create_player_with_class_and_username(client):
    state = create(client, player_class="noble", username="Lady_Ashe")
    assert state["username"] == "Lady_Ashe" and state["player_class"] == "noble"
    assert state["gold"] == 250_000 and held(state) == kit("noble")
    # unit value x quantity, from the catalog: 9,500 + 60,000 + 500,000
    assert sum(i["value"] * i["quantity"] for i in state["inventory"]["items"]) == 569_500


def test_username_is_unique_case_insensitively(client, outbox):
    create(client, username="Rook")
    r = client.put("/create_player", json={"username": "rOOK"})
    assert r.status_code == 409 and r.get_json()["error"] == "username_taken"
    assert len(outbox.events()) == 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({"player_class": "dragon"}, "player_class"),
        ({"player_class": 3}, "player_class"),
        ({"username": "x"}, "username"),
        ({"username": "no spaces here"}, "username"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_create_player_rejects_bad_fields(client, body, field, outbox):
    r = client.put("/create_player", json=body)
    assert r.status_code == 400
    assert [f["field"] for f in r.get_json()["fields"]] == [field]
    assert outbox.events() == []


def test_get_player(client, pair):
    mara, _ = pair
    assert client.get(f"/players/{mara['player_id']}").get_json() == mara
    r = client.get("/players/77")
    assert r.status_code == 404 and r.get_json()["error"] == "unknown_player"
    assert client.get("/players/abc").status_code == 404


# -- trades ---------------------------------------------------------------------
def test_executed_trade_moves_goods_and_records_three_events(client, pair, outbox):
    mara, monk = pair
    before = len(outbox.entries())
    r = trade(client,
              {"player_id": mara["player_id"], "items_traded": [{"item_id": 18, "quantity": 1}], "gold_traded": 0},
              {"player_id": monk["player_id"], "items_traded": [{"item_id": 1, "quantity": 4}], "gold_traded": 100})
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "executed" and body["fail_reason"] is None
    m2, k2 = body["player_1"], body["player_2"]
    assert held(m2) == {1: 24, 3: 10, 10: 2}
    assert m2["gold"] == 25_100 and m2["version"] == 2
    assert held(k2) == {1: 6, 4: 5, 18: 1} and k2["gold"] == 50 and k2["version"] == 2
    assert k2["inventory"]["current_capacity"] == 25 - 12
    assert client.get(f"/players/{mara['player_id']}").get_json() == m2

    new = outbox.entries()[before:]
    assert [e["type"] for e in new] == ["trade", "player_state", "player_state"]
    ev = TradeEvent.model_validate(new[0]["event"])
    assert new[0]["key"] == ev.trade_id == body["trade_id"] and ev.valid_trade
    assert ev.player_1.items_traded[0].name == "Mithril Helm" and ev.player_1.items_traded[0].value == 18_000
    assert ev.player_2.gold_traded == 100
    assert [e["event"]["player"] for e in new[1:]] == [m2, k2]
    assert [e["key"] for e in new[1:]] == [str(mara["player_id"]), str(monk["player_id"])]


def test_gold_only_and_gift_trades_execute(client, pair):
    mara, monk = pair
    r = trade(client, {"player_id": mara["player_id"], "gold_traded": 500}, {"player_id": monk["player_id"]})
    assert r.status_code == 200
    assert r.get_json()["player_2"]["gold"] == 650


def rejected(client, outbox, side_1, side_2, reason):
    states_before = [client.get(f"/players/{i}").get_json() for i in (1, 2)]
    n_before = len(outbox.entries())
    r = trade(client, side_1, side_2)
    assert r.status_code == 409, r.get_json()
    body = r.get_json()
    assert body["status"] == "rejected" and body["fail_reason"] == reason
    assert [client.get(f"/players/{i}").get_json() for i in (1, 2)] == states_before
    new = outbox.entries()[n_before:]
    assert [e["type"] for e in new] == ["trade"]
    assert new[0]["event"]["fail_reason"] == reason and new[0]["event"]["valid_trade"] is False
    assert new[0]["event"]["trade_id"] == body["trade_id"]
    return body


def test_reject_same_player(client, pair, outbox):
    body = rejected(client, outbox, {"player_id": 1, "gold_traded": 5}, {"player_id": 1, "gold_traded": 5},
                    "same_player")
    assert body["player_1"]["player_id"] == 1


def test_reject_unknown_item(client, pair, outbox):
    rejected(client, outbox, {"player_id": 1, "items_traded": [{"item_id": 4242, "quantity": 1}]},
             {"player_id": 2, "gold_traded": 1}, "unknown_item")
    ev = outbox.events("trade")[-1]
    assert ev["player_1"]["items_traded"] == [
        {"item_id": 4242, "name": None, "level": None, "value": None, "quantity": 1}]


def test_reject_empty_trade(client, pair, outbox):
    rejected(client, outbox, {"player_id": 1, "items_traded": []}, {"player_id": 2}, "empty_trade")


def test_reject_unknown_player(client, pair, outbox):
    body = rejected(client, outbox, {"player_id": 1, "gold_traded": 5}, {"player_id": 99}, "unknown_player")
    assert body["player_2"] is None and body["player_1"]["player_id"] == 1


def test_reject_insufficient_items(client, pair, outbox):
    rejected(client, outbox, {"player_id": 2, "items_traded": [{"item_id": 1, "quantity": 11}]},
             {"player_id": 1, "gold_traded": 1}, "insufficient_items")


def test_reject_huge_but_valid_quantity_as_insufficient(client, pair, outbox):
    rejected(client, outbox, {"player_id": 2, "items_traded": [{"item_id": 1, "quantity": 1_000_000}]},
             {"player_id": 1}, "insufficient_items")


def test_reject_insufficient_gold(client, pair, outbox):
    rejected(client, outbox, {"player_id": 2, "gold_traded": 151}, {"player_id": 1, "gold_traded": 0},
             "insufficient_gold")


def test_reject_capacity_exceeded(client, pair, outbox):
    # the monk holds 15 of 25 units; 11 more breaks it
    rejected(client, outbox, {"player_id": 1, "items_traded": [{"item_id": 1, "quantity": 11}]},
             {"player_id": 2, "gold_traded": 0}, "capacity_exceeded")


def seed_side(state, items_traded, gold_traded):
    """A side as the seed's client sent it: its cached view plus full item objects."""
    return {**{k: state[k] for k in ("player_id", "username", "player_class", "inventory", "gold")},
            "items_traded": items_traded, "gold_traded": gold_traded}


def test_seed_payload_current_view_executes(client, pair):
    mara, monk = pair
    helm = next(i for i in mara["inventory"]["items"] if i["item_id"] == 18)
    r = trade(client, seed_side(mara, [helm], 0), seed_side(monk, [], 150))
    assert r.status_code == 200, r.get_json()
    assert held(r.get_json()["player_2"]) == {**kit("monk"), 18: 1}


def test_seed_payload_stale_view_is_rejected(client, pair, outbox):
    mara, monk = pair
    trade(client, {"player_id": 2, "gold_traded": 10}, {"player_id": 1})  # the monk's gold changes
    helm = next(i for i in mara["inventory"]["items"] if i["item_id"] == 18)
    rejected(client, outbox, seed_side(mara, [helm], 0), seed_side(monk, [], 140), "stale_state")
    # a client that lies about an item's value gains nothing: the server uses its catalog
    fake = {**helm, "value": 1}
    now_mara, now_monk = (client.get(f"/players/{i}").get_json() for i in (1, 2))
    body = trade(client, seed_side(now_mara, [fake], 0), seed_side(now_monk, [], 140)).get_json()
    assert body["status"] == "executed"
    assert outbox.events("trade")[-1]["player_1"]["items_traded"][0]["value"] == 18_000


def test_version_claim_is_checked(client, pair, outbox):
    rejected(client, outbox, {"player_id": 1, "gold_traded": 1, "version": 5}, {"player_id": 2}, "stale_state")
    r = trade(client, {"player_id": 1, "gold_traded": 1, "version": 1}, {"player_id": 2, "version": 1})
    assert r.status_code == 200


def test_repeated_item_lines_add_up(client, pair):
    r = trade(client, {"player_id": 2, "items_traded": [{"item_id": 1, "quantity": 6}, {"item_id": 1, "quantity": 5}]},
              {"player_id": 1})
    assert r.get_json()["fail_reason"] == "insufficient_items"  # 11 > 10 held


# -- malformed requests -------------------------------------------------------
@pytest.mark.parametrize(
    "body, fields",
    [
        ({"player_1": {"player_id": "1"}, "player_2": {"player_id": 2}}, ["player_1.player_id"]),
        ({"player_1": {"player_id": 1}}, ["player_2"]),
        ({"player_1": {"player_id": 1, "items_traded": [{"item_id": 1, "quantity": -1}]}, "player_2": {"player_id": 2}},
         ["player_1.items_traded.0.quantity"]),
        ({"player_1": {"player_id": 1, "items_traded": [{"item_id": 1, "quantity": 10**7}]}, "player_2": {"player_id": 2}},
         ["player_1.items_traded.0.quantity"]),
        ({"player_1": {"player_id": 1, "items_traded": [{"item_id": 1, "quantity": True}]}, "player_2": {"player_id": 2}},
         ["player_1.items_traded.0.quantity"]),
        ({"player_1": {"player_id": 1, "items_traded": [{"item_id": 1, "quantity": 1.5}]}, "player_2": {"player_id": 2}},
         ["player_1.items_traded.0.quantity"]),
        ({"player_1": {"player_id": 1, "gold_traded": -5}, "player_2": {"player_id": 2}}, ["player_1.gold_traded"]),
        ({"player_1": {"player_id": 1, "gold_traded": 10**30}, "player_2": {"player_id": 2}}, ["player_1.gold_traded"]),
        ({"player_1": {"player_id": 0}, "player_2": {"player_id": 2}}, ["player_1.player_id"]),
        ({"player_1": {"player_id": 1, "items_traded": {"item_id": 1}}, "player_2": {"player_id": 2}},
         ["player_1.items_traded"]),
        ({"player_1": {"player_id": 1, "items_traded": [{"quantity": 1}]}, "player_2": {"player_id": 2}},
         ["player_1.items_traded.0.item_id"]),
        ({"player_1": None, "player_2": {"player_id": 2}}, ["player_1"]),
    ],
)
def test_malformed_trade_is_400_naming_the_field(client, pair, outbox, body, fields):
    n = len(outbox.entries())
    r = client.post("/trade", json=body)
    assert r.status_code == 400
    err = r.get_json()
    assert err["error"] == "invalid_request"
    assert [f["field"] for f in err["fields"]] == fields
    assert len(outbox.entries()) == n


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", b"\xff\xfe", b'"text"', b"null",
                                 # not JSON, though Python's own parser takes them
                                 b'{"player_1": {"player_id": 1, "gold_traded": NaN}, "player_2": {"player_id": 2}}',
                                 b'{"player_1": {"player_id": 1, "gold_traded": 1}, "player_2": {"player_id": 2}, '
                                 b'"note": "\\ud800"}'])
def test_bad_json_is_400(client, raw):
    r = client.post("/trade", data=raw, content_type="application/json")
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_json"


def test_body_without_json_content_type_is_accepted(client, pair):
    body = json.dumps({"player_1": {"player_id": 1, "gold_traded": 1}, "player_2": {"player_id": 2}})
    assert client.post("/trade", data=body, content_type="text/plain").status_code == 200
    assert client.post("/trade", data=codecs.BOM_UTF8 + body.encode()).status_code == 200  # a byte-order mark
    assert client.put("/create_player", data='{"player_class": "bard"}').status_code == 201


def test_oversized_body_is_413(client):
    r = client.post("/trade", data=b"{" + b" " * 200_000 + b"}", content_type="application/json")
    assert r.status_code == 413 and r.get_json()["error"] == "request_entity_too_large"


def test_wrong_method_and_unknown_route_are_json(client):
    r = client.get("/trade")
    assert r.status_code == 405 and r.get_json()["error"] == "method_not_allowed"
    assert set(r.headers["Allow"].replace(" ", "").split(",")) == {"POST", "OPTIONS"}
    r = client.post("/create_player")
    assert r.status_code == 405 and "PUT" in r.headers["Allow"]
    r = client.get("/nowhere")
    assert r.status_code == 404 and r.get_json()["error"] == "not_found"


@pytest.mark.parametrize("levels", [33, 1_000, 5_000])  # 5,000: the largest that fits in a 64 KiB body
def test_deep_json_is_400_and_changes_nothing(client, pair, outbox, levels):
    n = len(outbox.entries())
    raw = b'{"x":' * levels + b"1" + b"}" * levels
    r = client.post("/trade", data=raw, content_type="application/json")
    assert r.status_code == 400 and r.get_json()["error"] == "too_deep"
    assert len(outbox.entries()) == n


def test_a_body_as_deep_as_a_full_seed_trade_is_fine(client, pair):
    mara, monk = pair
    helm = next(i for i in mara["inventory"]["items"] if i["item_id"] == 18)
    assert trade(client, seed_side(mara, [helm], 0), seed_side(monk, [], 150)).status_code == 200


@pytest.mark.parametrize("body, fields", [
    ({"player_1": {"player_id": 1, "gold_trade": 500}, "player_2": {"player_id": 2}}, ["player_1.gold_trade"]),
    ({"player_1": {"player_id": 1}, "player_2": {"player_id": 2}, "note": "hi"}, ["note"]),
    ({"player_1": {"player_id": 1, "items_traded": [{"item_id": 1, "quantity": 1, "qty": 2}]},
      "player_2": {"player_id": 2, "inventory": {"items": [], "slots": 3}}},
     ["player_1.items_traded.0.qty", "player_2.inventory.slots"]),
])
def test_unknown_fields_are_refused_by_name_and_change_nothing(client, pair, outbox, body, fields):
    before = [client.get(f"/players/{i}").get_json() for i in (1, 2)]
    n = len(outbox.entries())
    r = client.post("/trade", json=body)
    assert r.status_code == 400
    err = r.get_json()
    assert sorted(f["field"] for f in err["fields"]) == sorted(fields)
    assert all(f["message"] == "unknown field" for f in err["fields"])
    assert len(outbox.entries()) == n
    assert [client.get(f"/players/{i}").get_json() for i in (1, 2)] == before


def test_every_answer_has_a_request_id_and_an_unforeseen_error_is_a_json_500(app, client, pair, monkeypatch):
    ids = {client.get("/health").headers["X-Request-Id"], client.get("/nowhere").headers["X-Request-Id"]}
    assert len(ids) == 2 and all(len(i) == 32 for i in ids)

    def broken(*_):
        raise RuntimeError("a bug")
    from engine.store import Store
    monkeypatch.setattr(Store, "trade", broken)
    r = trade(client, {"player_id": 1, "gold_traded": 1}, {"player_id": 2})
    body = r.get_json()
    assert r.status_code == 500 and body["error"] == "internal_error"
    assert body["request_id"] == r.headers["X-Request-Id"] and body["request_id"] in body["message"]
    assert "a bug" not in json.dumps(body)  # the details go to the log, not to the client


# -- health, docs ---------------------------------------------------------------
def test_health(client, pair):
    assert client.get("/health").get_json() == {"status": "ok", "redis": "ok", "players": 2}


def test_store_down_is_503_not_500(stack):
    from bazaar.stack.ports import free_port
    from engine import create_app

    dead = stack.engine.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    client = create_app(dead).test_client()
    assert client.get("/health").status_code == 503
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer bzk_any"  # the key cannot be checked either
    r = client.put("/create_player")
    assert r.status_code == 503 and r.get_json()["error"] == "store_unavailable"
    assert r.headers["Retry-After"] == "1"
    assert trade(client, {"player_id": 1, "gold_traded": 1}, {"player_id": 2}).status_code == 503


def test_openapi_describes_every_route(client, app):
    doc = client.get("/openapi.json").get_json()
    routes = {r.rule.replace("<int:player_id>", "{player_id}").replace("<offer_id>", "{offer_id}")
              for r in app.url_map.iter_rules()
              if r.endpoint != "static"}
    assert routes == set(doc["paths"])
    trade_in = doc["components"]["schemas"]["TradeSideIn"]
    assert {"player_id", "items_traded", "gold_traded"} <= set(trade_in["properties"])
    page = client.get("/docs").get_data(as_text=True)
    assert all(path in page for path in doc["paths"])


def test_whole_number_written_as_float_is_that_integer(client, pair):
    """JSON Schema counts 10.0 as the integer 10; the server takes what its document promises."""
    merchant, monk = pair
    r = trade(client, {"player_id": merchant["player_id"], "gold_traded": 10.0},
              {"player_id": monk["player_id"], "gold_traded": 0.0})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["player_1"]["gold"] == merchant["gold"] - 10
    bad = trade(client, {"player_id": merchant["player_id"], "gold_traded": 10.5}, {"player_id": monk["player_id"]})
    assert bad.status_code == 400 and bad.get_json()["fields"][0]["field"] == "player_1.gold_traded"


def test_redis_at_its_memory_limit_refuses_writes_whole(client, pair, redis_client, outbox):
    """Redis runs with maxmemory and noeviction; at the limit every write script is refused whole
    (a 503 `backpressure`), keys are still checked and reads still answer."""
    assert redis_client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    limit = redis_client.config_get("maxmemory")["maxmemory"]
    assert int(limit) > 0
    merchant, monk = pair
    events = outbox.entries()
    redis_client.config_set("maxmemory", 1)
    try:
        r = trade(client, {"player_id": merchant["player_id"], "gold_traded": 5}, {"player_id": monk["player_id"]})
        made = client.put("/create_player")
        read = client.get(f"/players/{merchant['player_id']}")
    finally:
        redis_client.config_set("maxmemory", limit)
    assert r.status_code == made.status_code == 503, (r.get_json(), made.get_json())
    assert r.get_json()["error"] == made.get_json()["error"] == "backpressure"
    assert read.status_code == 200 and read.get_json() == merchant
    assert outbox.entries() == events
    assert trade(client, {"player_id": merchant["player_id"], "gold_traded": 5},
                 {"player_id": monk["player_id"]}).status_code == 200


def _everything(redis_client, namespace):
    """All the engine keeps, but the API keys' buckets (they change with every request)."""
    out = {}
    for k in sorted(redis_client.scan_iter(f"{namespace}:*")):
        if not k.startswith(f"{namespace}:apikey".encode()):
            out[k] = redis_client.dump(k)
    return out


@pytest.mark.parametrize("method,path,kwargs,status,code", [
    ("post", "/trade", {"data": "{not json"}, 400, "invalid_json"),
    ("post", "/trade", {"data": "[" * 40 + "]" * 40}, 400, "too_deep"),
    ("post", "/trade", {"data": '{"x":' * 5000 + "1" + "}" * 5000}, 400, "too_deep"),
    ("post", "/trade", {"json": {"player_1": {"player_id": 1, "gold_trade": 5}, "player_2": {"player_id": 2}}},
     400, "invalid_request"),
    ("post", "/trade", {"json": {"player_1": {"player_id": 1}, "player_2": {"player_id": 2}, "note": "hi"}},
     400, "invalid_request"),
    ("put", "/create_player", {"json": {"player_class": "wizard"}}, 400, "invalid_request"),
    ("put", "/create_player", {"json": {"username": "Mara"}}, 409, "username_taken"),
    ("post", "/trade", {"json": {"player_1": {"player_id": 1, "gold_traded": 1}, "player_2": {"player_id": 2}},
                        "headers": {"Idempotency-Key": "x" * 256}}, 400, "invalid_idempotency_key"),
    ("post", "/trade", {"json": {"player_1": {"player_id": 1, "gold_traded": 2}, "player_2": {"player_id": 2}},
                        "headers": {"Idempotency-Key": "once"}}, 422, "idempotency_key_reused"),
    ("post", "/trade", {"data": "x" * (65 * 1024)}, 413, "request_entity_too_large"),
    ("get", "/players/999", {}, 404, "unknown_player"),
    ("delete", "/players/1", {}, 405, "method_not_allowed"),
    ("get", "/no_such_route", {}, 404, "not_found"),
    ("get", "/players/1", {"headers": {"Authorization": "Bearer bzk_nope"}}, 401, "unauthorized"),
])
def test_every_4xx_answers_its_code_and_changes_nothing(client, pair, redis_client, stack, method, path, kwargs,
                                                       status, code):
    first = client.post("/trade", json={"player_1": {"player_id": 1, "gold_traded": 1}, "player_2": {"player_id": 2}},
                        headers={"Idempotency-Key": "once"})
    assert first.status_code == 200
    before = _everything(redis_client, stack.redis.namespace)
    r = getattr(client, method)(path, **kwargs)
    assert r.status_code == status, r.get_data(as_text=True)
    body = r.get_json()
    assert body["error"] == code and body["message"] and r.headers["X-Request-Id"]
    assert _everything(redis_client, stack.redis.namespace) == before


def test_trade_after_redis_forgot_its_scripts(client, pair, redis_client):
    """The key check runs by hash in the trade's first pipeline; a Redis that lost its script cache
    (a restart, SCRIPT FLUSH) gets it loaded again, and the trade goes through."""
    merchant, monk = pair
    redis_client.script_flush()
    r = trade(client, {"player_id": merchant["player_id"], "gold_traded": 7}, {"player_id": monk["player_id"]})
    assert r.status_code == 200 and r.get_json()["player_2"]["gold"] == monk["gold"] + 7
