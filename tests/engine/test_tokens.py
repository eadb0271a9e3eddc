"""Player tokens and trade history: a token acts for its own player on its own routes only, under
the engine's server (granian) against a real Redis; a player's history holds every trade once, newest first, across pages."""

import json
import os
import random
import stat
import time
from datetime import datetime

import pytest
import requests

from engine import create_app
from engine.db import make_store
from engine.auth import Keys, key_hash
from engine.tokens import SALT, Claims, Tokens, TokenProblem
from itsdangerous import URLSafeSerializer
from tests.engine.test_auth import bazaar_cli, snapshot
from tests.pipeline import authorized

SECRET = "s" * 40
KEY = "ab" * 32  # an API key's SHA-256, as a token names the key that minted it


# -- the tokens themselves (pure) ------------------------------------------------
def test_token_round_trip_and_every_way_to_be_refused():
    tokens = Tokens(SECRET)
    minted = tokens.mint(7, KEY, 60, now=1_000.25, key_gen=4, epoch=2)
    assert minted.token.startswith("bzp_") and minted.player_id == 7
    assert datetime.fromisoformat(minted.expires_at).timestamp() == 1_061  # rounded up to the second
    assert tokens.player(minted.token, now=1_059) == 7
    assert tokens.claims(minted.token, now=1_059) == Claims(7, KEY, 4, 2)  # its key, its generation, the epoch
    body, sig = minted.token.rsplit(".", 1)
    forged = {
        "expired": minted.token,
        "other secret": Tokens("t" * 40).mint(7, KEY, 60, now=1_000).token,
        "truncated": minted.token[:-3],
        "tampered signature": f"{body}.{sig[::-1]}",
        "an API key": "bzk_" + "a" * 43,
        # signed with the secret, but as an engine before tokens named their key minted them
        "no key named": "bzp_" + URLSafeSerializer(SECRET, salt=SALT).dumps({"p": 7, "x": 2_000}),
    }
    for name, token in forged.items():
        with pytest.raises(TokenProblem):
            tokens.player(token, now=1_061 if name == "expired" else 1_001)
    with pytest.raises(ValueError):
        Tokens("short")
    for ttl in (0, 24 * 3600 + 1):
        with pytest.raises(ValueError):
            tokens.mint(7, KEY, ttl)


# -- authorization, under the engine's server (granian) -------------------------------------------------
@pytest.fixture
def players(engine_service, auth):
    base = engine_service.address
    for cls in ("merchant", "monk"):
        assert requests.put(f"{base}/create_player", json={"player_class": cls}, headers=auth).status_code == 201
    return base


def mint(base, auth, player_id, **body):
    r = requests.post(f"{base}/players/{player_id}/tokens", json=body or None, headers=auth, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()


def test_mint_answers_a_token_for_an_existing_player(players, auth):
    before = time.time()
    minted = mint(players, auth, 1, ttl_s=120)
    assert minted["player_id"] == 1 and minted["token"].startswith("bzp_")
    assert before + 119 <= datetime.fromisoformat(minted["expires_at"]).timestamp() <= time.time() + 121
    assert datetime.fromisoformat(mint(players, auth, 2)["expires_at"]).timestamp() >= before + 3599  # 1 h default
    for body, status in (({"ttl_s": 0}, 400), ({"ttl_s": 86_401}, 400), ({"ttl": 5}, 400)):
        r = requests.post(f"{players}/players/1/tokens", json=body, headers=auth, timeout=10)
        assert r.status_code == status and r.json()["error"] == "invalid_request"
    r = requests.post(f"{players}/players/99/tokens", headers=auth, timeout=10)
    assert r.status_code == 404 and r.json()["error"] == "unknown_player"


OWN = [("get", "/players/1", None), ("get", "/players/1/trades", None), ("get", "/players/1/trades?limit=1", None)]
FORBIDDEN = [
    ("get", "/players/2", None), ("get", "/players/2/trades", None), ("get", "/players/999", None),
    ("post", "/trade", {"player_1": {"player_id": 1}, "player_2": {"player_id": 2, "gold_traded": 10}}),
    ("post", "/trade", {"player_1": {"player_id": 2, "gold_traded": 10}, "player_2": {"player_id": 1}}),
    ("put", "/create_player", {"player_class": "noble"}), ("post", "/players/1/tokens", None),
    ("post", "/players/2/tokens", None), ("options", "/trade", None), ("delete", "/players/1", None),
    ("post", "/players/1", None), ("head", "/players/2", None), ("get", "/no_such_route", None),
]


def test_a_player_token_reaches_its_own_player_only(players, auth, redis_client, stack):
    token = {"Authorization": f"Bearer {mint(players, auth, 1)['token']}"}
    for method, path, body in OWN:
        r = requests.request(method, f"{players}{path}", json=body, headers=token, timeout=10)
        assert r.status_code == 200, (path, r.text)
    assert requests.get(f"{players}/players/1", headers=token).json()["player_id"] == 1
    assert requests.head(f"{players}/players/1", headers=token).status_code == 200
    before = snapshot(redis_client, stack)
    for method, path, body in FORBIDDEN:
        r = requests.request(method, f"{players}{path}", json=body, headers={**token, "Idempotency-Key": "x"},
                             timeout=10)
        assert r.status_code == 403, (method, path, r.text)
        assert method == "head" or r.json()["error"] == "forbidden"  # a HEAD answer has no body
    assert snapshot(redis_client, stack) == before  # nothing changed, nothing appended


def test_expired_forged_and_truncated_tokens_are_401(players, auth, redis_client, stack):
    short = mint(players, auth, 1, ttl_s=1)["token"]
    good = mint(players, auth, 1)["token"]
    time.sleep(2.1)  # expiry has a one-second grain
    other = Tokens("x" * 48).mint(1, key_hash(auth["Authorization"].split()[1])).token
    before = snapshot(redis_client, stack)
    for token in (short, other, good[:-4], good.replace("bzp_", "bzp_A", 1)):
        for method, path in (("get", "/players/1"), ("get", "/players/1/trades"), ("post", "/trade")):
            r = requests.request(method, f"{players}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert r.status_code == 401 and r.json()["error"] == "unauthorized", (token, path, r.text)
            assert "invalid_token" in r.headers["WWW-Authenticate"]
    assert snapshot(redis_client, stack) == before


def test_a_token_dies_with_its_key_and_a_players_tokens_can_be_revoked(players, auth, redis_client, stack):
    keys = Keys(redis_client, stack.redis.namespace)
    minter_key = keys.create("minter", 100)
    minter = {"Authorization": f"Bearer {minter_key}"}
    bearer = lambda token: {"Authorization": f"Bearer {token}"}  # noqa: E731
    by_minter = mint(players, minter, 1)["token"]
    mine, theirs = mint(players, auth, 1)["token"], mint(players, auth, 2)["token"]
    reads = lambda: [requests.get(f"{players}/players/{p}", headers=bearer(t), timeout=10)  # noqa: E731
                     for p, t in ((1, by_minter), (1, mine), (2, theirs))]
    assert [r.status_code for r in reads()] == [200, 200, 200]

    keys.revoke("minter")  # its tokens go with it, on the next request; the other key's hold
    first, second, third = reads()
    assert first.status_code == 401 and "revoked" in first.json()["message"]
    assert "invalid_token" in first.headers["WWW-Authenticate"]
    assert (second.status_code, third.status_code) == (200, 200)
    keys.register("minter-again", minter_key, 100)  # the same key registered again is a new one:
    assert reads()[0].status_code == 401  # what it minted before the revocation stays refused
    again = mint(players, minter, 1)["token"]
    assert requests.get(f"{players}/players/1", headers=bearer(again), timeout=10).status_code == 200

    r = requests.delete(f"{players}/players/1/tokens", headers=auth, timeout=10)
    assert r.status_code == 200 and r.json() == {"player_id": 1, "token_epoch": 1}
    _, second, third = reads()
    assert second.status_code == 401 and "revoked" in second.json()["message"]
    assert third.status_code == 200  # another player's token holds
    fresh = mint(players, auth, 1)["token"]  # minted after the revocation: holds
    assert requests.get(f"{players}/players/1", headers=bearer(fresh), timeout=10).status_code == 200

    assert requests.delete(f"{players}/players/1/tokens", headers=bearer(fresh), timeout=10).status_code == 403
    assert requests.delete(f"{players}/players/99/tokens", headers=auth, timeout=10).status_code == 404
    assert requests.get(f"{players}/players/1", headers=bearer(fresh), timeout=10).status_code == 200
    assert requests.delete(f"{players}/players/1/tokens", headers=auth, timeout=10).json()["token_epoch"] == 2
    assert requests.get(f"{players}/players/1", headers=bearer(fresh), timeout=10).status_code == 401


def test_bazaar_tokens_revoke_refuses_a_players_tokens(players, auth, stack):
    token = {"Authorization": f"Bearer {mint(players, auth, 2)['token']}"}
    other = {"Authorization": f"Bearer {mint(players, auth, 1)['token']}"}
    assert requests.get(f"{players}/players/2", headers=token, timeout=10).status_code == 200
    done = bazaar_cli(stack, "tokens", "revoke", "--player", "2")
    assert done.returncode == 0, done.stderr
    assert requests.get(f"{players}/players/2", headers=token, timeout=10).status_code == 401
    assert requests.get(f"{players}/players/1", headers=other, timeout=10).status_code == 200
    assert bazaar_cli(stack, "tokens", "revoke", "--player", "0").returncode == 2  # a clear usage error


# -- history -----------------------------------------------------------------------
def test_history_holds_every_trade_once_newest_first_across_pages(client, outbox):
    for cls in ("merchant", "merchant", "monk"):
        assert client.put("/create_player", json={"player_class": cls}).status_code == 201
    rng = random.Random(9)
    sent = []  # (trade_id, body, status) in the order the engine answered them
    for _ in range(60):
        a, b = rng.sample([1, 2, 3], 2)
        body = {"player_1": {"player_id": a, "gold_traded": rng.choice([1, 5, 10**7])},
                "player_2": {"player_id": b, "items_traded": rng.choice([[], [{"item_id": 1, "quantity": 1}]])}}
        r = client.post("/trade", json=body)
        sent.append((r.get_json()["trade_id"], body, r.get_json()["status"], r.get_json()["fail_reason"]))
    mine = [t for t in sent if 1 in (t[1]["player_1"]["player_id"], t[1]["player_2"]["player_id"])]
    pages, cursor = [], None
    while True:
        r = client.get("/players/1/trades", query_string={"limit": 7, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200
        pages.append(r.get_json()["trades"])
        cursor = r.get_json()["next_cursor"]
        if cursor is None:
            break
    got = [e for page in pages for e in page]
    assert all(len(p) == 7 for p in pages[:-1]) and len(pages) == -(-len(mine) // 7)
    assert [e["trade_id"] for e in got] == [t[0] for t in reversed(mine)]  # each once, newest first
    for entry, (trade_id, body, status, reason) in zip(got, reversed(mine)):
        me, them = ("player_1", "player_2") if body["player_1"]["player_id"] == 1 else ("player_2", "player_1")
        assert entry["status"] == status and entry["fail_reason"] == reason
        assert entry["counterparty"] == body[them]["player_id"] and entry["offer_id"] is None
        assert entry["gave"]["gold"] == body[me].get("gold_traded", 0)
        assert entry["received"]["gold"] == body[them].get("gold_traded", 0)
        assert [i["item_id"] for i in entry["received"]["items"]] == [
            i["item_id"] for i in body[them].get("items_traded", [])]
    assert any(e["status"] == "rejected" for e in got) and any(e["status"] == "executed" for e in got)
    for query in ({"limit": 0}, {"limit": 201}, {"cursor": "nope"}, {"page": 2}):
        r = client.get("/players/1/trades", query_string=query)
        assert r.status_code == 400 and r.get_json()["error"] == "invalid_request", query
    assert client.get("/players/99/trades").status_code == 404


def test_history_is_capped_per_player(stack, redis_client, api_key):
    client = authorized(create_app(stack.engine.model_copy(update={"history_max": 5})).test_client(), api_key)
    for cls in ("merchant", "monk"):
        client.put("/create_player", json={"player_class": cls})
    ids = [client.post("/trade", json={"player_1": {"player_id": 1, "gold_traded": 1},
                                       "player_2": {"player_id": 2}}).get_json()["trade_id"] for _ in range(12)]
    page = client.get("/players/2/trades?limit=200").get_json()
    assert [e["trade_id"] for e in page["trades"]] == ids[::-1][:5] and page["next_cursor"] is None


def test_player_tokens_have_a_rate_of_their_own(stack, api_key):
    app = create_app(stack.engine.model_copy(update={"player_rate": 3}))
    backend = authorized(app.test_client(), api_key)
    backend.put("/create_player")
    token = backend.post("/players/1/tokens").get_json()["token"]
    player = authorized(app.test_client(), token)
    codes = [player.get("/players/1").status_code for _ in range(6)]
    assert codes[:3] == [200] * 3 and set(codes[3:]) == {429}  # a bucket of 3, shared by the player's tokens
    again = authorized(app.test_client(), backend.post("/players/1/tokens").get_json()["token"])
    r = again.get("/players/1")
    assert r.status_code == 429 and r.get_json()["error"] == "rate_limited" and r.headers["Retry-After"] == "1"
    assert backend.get("/players/1").status_code == 200  # the backend's key has its own rate


def test_an_engine_without_a_secret_mints_and_takes_no_tokens(stack, api_key):
    minted = Tokens(stack.engine.token_secret.get_secret_value()).mint(1, key_hash(api_key)).token
    app = create_app(stack.engine.model_copy(update={"token_secret": None}))
    backend = authorized(app.test_client(), api_key)
    backend.put("/create_player")
    r = backend.post("/players/1/tokens")
    assert r.status_code == 503 and r.get_json()["error"] == "tokens_unavailable"
    assert "BAZAAR_TOKEN_SECRET" in r.get_json()["message"]
    assert authorized(app.test_client(), minted).get("/players/1").status_code == 401


def test_the_secret_is_checked_never_echoed_and_kept_private(stack, monkeypatch):
    from engine.settings import EngineSettings

    monkeypatch.setenv("BAZAAR_TOKEN_SECRET", "too-short-a-secret")
    with pytest.raises(Exception) as refused:
        EngineSettings()
    assert "at least 32 characters" in str(refused.value) and "too-short-a-secret" not in str(refused.value)
    monkeypatch.setenv("BAZAAR_TOKEN_SECRET", "")
    assert EngineSettings().token_secret is None  # empty is unset
    path = stack.home / "token-secret"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and len(path.read_text().strip()) >= 32
    assert "BAZAAR_TOKEN_SECRET" not in stack.env() and "BAZAAR_TOKEN_SECRET" in stack.engine_env()


def test_history_pages_step_over_sequence_numbers_and_milliseconds(stack, redis_client):
    """The cursor is an entry id; the next page starts just below it, also across a millisecond."""
    store = make_store(stack.engine)
    key = store.history_key(1)
    ids = ["5-0", "5-1", "6-0", "7-0", "7-1", "7-2", f"8-{2**64 - 1}", "9-0"]
    for entry_id in ids:
        redis_client.xadd(key, {"e": json.dumps({"id": entry_id})}, id=entry_id)
    for limit in (1, 2, 3, 8, 9):
        seen, cursor = [], None
        while True:
            page, cursor = store.history(1, limit, cursor)
            seen += [e["id"] for e in page]
            if cursor is None:
                break
        assert seen == ids[::-1], limit
    assert store.history(1, 5, "0-0") == ([], None)
    assert [e["id"] for e in store.history(1, 5, "5-1")[0]] == ["5-0"]
