"""API keys: the engine under the engine's server (granian) refuses every route without a live key, changes nothing
when it does, limits each key to its rate across workers; `bazaar keys` manages them."""

import os
import re
import stat
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from bazaar.stack.api_key import ensure_stack_key, key_path
from engine.auth import Keys, key_hash

KEY = re.compile(r"^bzk_[A-Za-z0-9_-]{43}$")  # 32 random bytes, URL-safe base64


@pytest.fixture
def keys(redis_client, stack) -> Keys:
    return Keys(redis_client, stack.redis.namespace)


@pytest.fixture
def engine(engine_service, auth):
    """The engine's address, with two players made through it."""
    base = engine_service.address
    for cls in ("merchant", "monk"):
        assert requests.put(f"{base}/create_player", json={"player_class": cls}, headers=auth).status_code == 201
    return base


BUCKET = {b"tokens", b"ts", b"used"}  # a key's token bucket and last use: change with every request it makes


def snapshot(redis_client, stack):
    """Everything the engine keeps, the keys' records included but for their buckets (and the players')."""
    ns = stack.redis.namespace
    out = {}
    for k in sorted(redis_client.scan_iter(f"{ns}:*")):
        kind = redis_client.type(k)
        if k.startswith(f"{ns}:player-bucket:".encode()):
            continue
        if kind == b"zset":
            out[k] = redis_client.zrange(k, 0, -1, withscores=True)
        elif kind == b"hash":
            out[k] = {f: v for f, v in redis_client.hgetall(k).items()
                      if not (k.startswith(f"{ns}:apikey:".encode()) and f in BUCKET)}
        else:
            out[k] = redis_client.xrange(k) if kind == b"stream" else redis_client.get(k)
    return out


TRADE = {"player_1": {"player_id": 1, "gold_traded": 10}, "player_2": {"player_id": 2}}
IDEM = {"Idempotency-Key": "k-401"}
ROUTES = [("put", "/create_player", {"player_class": "noble"}, {}), ("put", "/create_player", None, {}),
          ("put", "/create_player", None, IDEM), ("put", "/create_player", {"player_class": "elf"}, {}),
          ("post", "/trade", TRADE, {}), ("post", "/trade", TRADE, IDEM), ("post", "/trade", {"x": 1}, {}),
          ("options", "/trade", None, {}), ("options", "/create_player", None, {}), ("delete", "/trade", None, {}),
          ("get", "/players/1", None, {}), ("get", "/players/999", None, {}), ("get", "/no_such_route", None, {})]


def test_keys_are_random_stored_as_hashes_listed_without_the_key(keys, redis_client):
    first, second = keys.create("game-eu", 50), keys.create("game-us", 7)
    assert KEY.match(first) and KEY.match(second) and first != second
    dump = b"".join(str(redis_client.hgetall(k)).encode() for k in redis_client.scan_iter("*", _type="HASH"))
    assert first.encode() not in dump and key_hash(first).encode() in dump  # only the hash is kept
    listed = {k.name: k for k in keys.list()}
    assert set(listed) >= {"game-eu", "game-us"} and listed["game-us"].rate == 7
    assert listed["game-eu"].last_used is None
    assert keys.authorize(first).allowed
    assert {k.name: k for k in keys.list()}["game-eu"].last_used is not None
    with pytest.raises(Exception, match="exists"):
        keys.create("game-eu", 5)
    for bad in ("", "a" * 65, "[red]x[/]", "two words", "tab\there"):  # names show in tables as they are
        with pytest.raises(Exception, match="letters, digits"):
            keys.create(bad, 5)
    keys.revoke("game-eu")
    assert not keys.authorize(first).allowed and keys.authorize(second).allowed
    with pytest.raises(Exception, match="no key named"):
        keys.revoke("game-eu")


@pytest.mark.parametrize("method,path,body,extra", ROUTES)
@pytest.mark.parametrize("header", ["none", "Basic dXNlcjpwdw==", "Bearer", "Bearer a b", "unknown", "revoked"])
def test_every_route_refuses_a_caller_without_a_live_key(engine, keys, redis_client, stack, method, path, body,
                                                         extra, header):
    if header == "unknown":
        header = f"Bearer {keys.create('other', 10) + 'x'}"
    elif header == "revoked":
        key = keys.create("gone", 10)
        keys.revoke("gone")
        header = f"Bearer {key}"
    headers = {**extra, **({} if header == "none" else {"Authorization": header})}
    before = snapshot(redis_client, stack)
    r = requests.request(method, f"{engine}{path}", json=body, headers=headers, timeout=10)
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "unauthorized" and r.json()["message"]
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.headers["X-Request-Id"]
    assert snapshot(redis_client, stack) == before  # nothing changed, nothing appended to the outbox


def test_public_routes_need_no_key(engine_service):
    base = engine_service.address
    for path in ("/health", "/openapi.json", "/docs"):
        assert requests.get(f"{base}{path}", timeout=10).status_code == 200, path


def test_revoked_key_is_refused_by_every_worker_at_once(engine, keys):
    key = keys.create("soon-gone", 10_000)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    assert {session.get(f"{engine}/players/1", timeout=10).status_code for _ in range(30)} == {200}
    keys.revoke("soon-gone")
    revoked_at = time.monotonic()
    assert session.get(f"{engine}/players/1", timeout=10).status_code == 401
    assert time.monotonic() - revoked_at < 1
    # fresh connections land on every worker (3 in the test stack)
    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(lambda _: requests.get(f"{engine}/players/1", headers=session.headers,
                                                     timeout=10).status_code, range(60)))
    assert codes == [401] * 60


def test_rate_limit_holds_across_workers(engine, keys):
    key = keys.create("slow", 20)
    headers = {"Authorization": f"Bearer {key}"}
    codes, retry_after, lock = [], set(), threading.Lock()

    def one(_):
        r = requests.get(f"{engine}/players/1", headers=headers, timeout=10)
        with lock:
            codes.append(r.status_code)
            if r.status_code == 429:
                assert r.json()["error"] == "rate_limited"
                retry_after.add(r.headers["Retry-After"])

    start = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(100)))
    elapsed = time.monotonic() - start
    allowed = codes.count(200)
    # a full bucket of 20, and 20 more for every second the burst took
    assert 20 <= allowed <= 20 + 20 * elapsed + 1, (allowed, elapsed)
    assert codes.count(429) == 100 - allowed and retry_after == {"1"}
    time.sleep(1.1)  # the bucket refills
    assert requests.get(f"{engine}/players/1", headers=headers, timeout=10).status_code == 200


def test_rate_limited_writes_change_nothing(engine, keys, redis_client, stack):
    key = keys.create("one-a-second", 1)
    headers = {"Authorization": f"Bearer {key}"}
    assert requests.get(f"{engine}/players/1", headers=headers, timeout=10).status_code == 200  # the one token
    before = snapshot(redis_client, stack)
    for method, path, body in (("post", "/trade", TRADE), ("put", "/create_player", None)):
        r = requests.request(method, f"{engine}{path}", json=body, headers={**headers, **IDEM}, timeout=10)
        assert r.status_code == 429 and r.json()["error"] == "rate_limited" and r.headers["Retry-After"] == "1"
    assert snapshot(redis_client, stack) == before


def test_stack_key_file_is_private_and_reregistered_after_a_flush(stack, redis_client, keys):
    key = ensure_stack_key(stack)
    path = key_path(stack)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and path.read_text().strip() == key
    redis_client.flushall()
    assert not keys.authorize(key).allowed
    assert ensure_stack_key(stack) == key and keys.authorize(key).allowed
    path.write_text("")  # emptied by a crash: a new key replaces it, the old one no longer opens the stack
    fresh = ensure_stack_key(stack)
    assert KEY.match(fresh) and keys.authorize(fresh).allowed and not keys.authorize(key).allowed
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def bazaar_cli(stack, *args):
    env = {**os.environ, "BAZAAR_HOME": str(stack.home), "BAZAAR_REDIS_PORT": str(stack.local.redis_port),
           "BAZAAR_NAMESPACE": stack.redis.namespace, "COLUMNS": "200"}  # a table's rows on one line each
    return subprocess.run([sys.executable, "-m", "bazaar", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def bazaar_keys(stack, *args):
    return bazaar_cli(stack, "keys", *args)


def test_keys_cli_create_list_revoke(stack, keys):
    made = bazaar_keys(stack, "create", "--name", "game-server", "--rate", "25")
    assert made.returncode == 0, made.stderr
    assert KEY.match(made.stdout.rstrip("\n")) and made.stdout.count("\n") == 1  # the key, alone on one line
    key = made.stdout.strip()
    assert keys.authorize(key).allowed
    listed = bazaar_keys(stack, "list")
    row = r"game-server\s*│\s*backend\s*│\s*20\d\d-\d\d-\d\d \d\d:\d\d:\d\d\s*│\s*20\d\d-[-\d]+ [:\d]+\s*│\s*25\s*│"
    assert re.search(row, listed.stdout), listed.stdout  # used once (the check above), rate 25
    assert key not in listed.stdout
    assert bazaar_keys(stack, "create", "--name", "game-server").returncode == 1  # names are unique
    gone = bazaar_keys(stack, "revoke", "game-server")
    assert gone.returncode == 0 and not keys.authorize(key).allowed
    again = bazaar_keys(stack, "revoke", "game-server")
    assert again.returncode == 1 and "no key named 'game-server'" in again.stderr
    admin = bazaar_keys(stack, "create", "--name", "ops", "--scope", "admin")
    assert admin.returncode == 0 and keys.authorize(admin.stdout.strip()).scope == "admin"
    assert re.search(r"ops\s*│\s*admin\s*│", bazaar_keys(stack, "list").stdout)
    assert bazaar_keys(stack, "create", "--name", "x", "--scope", "root").returncode == 2


def test_only_an_admin_key_reads_the_economys_totals(engine, keys, redis_client, stack, api_key):
    backend, admin = keys.create("game", 100), keys.create("ops", 100, "admin")
    read = lambda key: requests.get(f"{engine}/economy/totals", headers={"Authorization": f"Bearer {key}"},  # noqa: E731
                                    timeout=10)
    refused = read(backend)
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert "admin key" in refused.json()["message"]
    assert read(admin).status_code == 200 and read(api_key).status_code == 200  # the stack's own key is admin
    for method, path, body in (("put", "/create_player", None), ("get", "/players/1", None),
                               ("post", "/players/1/tokens", None)):  # a backend key plays
        r = requests.request(method, f"{engine}{path}", json=body, headers={"Authorization": f"Bearer {backend}"},
                             timeout=10)
        assert r.status_code in (200, 201), (path, r.text)
    with pytest.raises(Exception, match="scope is one of"):
        keys.create("wide", 10, "root")
    # a key stored before keys had scopes is a backend key; the stack's own is made admin again by `bazaar up`
    redis_client.hdel(keys.prefix + key_hash(admin), "scope")
    assert read(admin).status_code == 403
    redis_client.hdel(keys.prefix + key_hash(api_key), "scope")
    assert read(api_key).status_code == 403
    assert ensure_stack_key(stack) == api_key and read(api_key).status_code == 200


def ab(*args):
    out = subprocess.run(["ab", "-q", *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    complete = int(re.search(r"Complete requests:\s+(\d+)", out.stdout).group(1))
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out.stdout)
    return complete, int(non2xx.group(1)) if non2xx else 0


def test_seed_load_client_works_with_the_header_added(engine_service, api_key, stack, redis_client, tmp_path):
    """The seed drives the engine with ApacheBench (`ab -u` for PUT); it only adds the header."""
    body = tmp_path / "player.json"
    body.write_text('{"player_class": "random"}')
    url = f"{engine_service.address}/create_player"
    assert ab("-n", "200", "-c", "4", "-u", str(body), "-T", "application/json",
              "-H", f"Authorization: Bearer {api_key}", url) == (200, 0)
    assert ab("-n", "20", "-c", "2", "-u", str(body), "-T", "application/json", url) == (20, 20)  # no key: 401s
    assert int(redis_client.hget(f"{stack.redis.namespace}:counters", "players")) == 200
