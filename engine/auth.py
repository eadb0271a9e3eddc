"""Who may call the engine: API keys for the game backend, each with its own rate, and the
player tokens it mints (`engine.tokens`), each acting for one player on its own routes only.

A key is `bzk_` and 43 URL-safe characters (32 random bytes).  Redis keeps only
its SHA-256 (a key is random, so a plain hash cannot be reversed by guessing),
with a name, the creation time, the last use and a rate:

- `{ns}:apikeys`          hash: name -> the key's hash (names are unique)
- `{ns}:apikey:{hash}`    hash: name, created, rate, scope, gen, and the token bucket (tokens, ts, used)
- `{ns}:apikeys:gen`      counter: each key registered takes the next generation
- `{ns}:token-epoch:{player}`  counter: each revocation of the player's tokens increments it

A key has a scope: `backend` (the game backend: players, trades, offers, player tokens) or
`admin` (all that, and what reads the whole economy: `GET /economy/totals`).  A key stored
before keys had scopes is a `backend` key.  A player token names the key that minted it, so
a revoked key's tokens are refused too, as are a player's tokens minted before
`DELETE /players/{id}/tokens` (or `bazaar tokens revoke --player N`).

Every request but `GET /health`, `/openapi.json` and `/docs` sends
`Authorization: Bearer <key>`.  One Lua step (`authorize.lua`) checks the key and
takes a token from its bucket, so the rate holds across every worker and a revoked
key is refused by the next request anywhere.  A missing, malformed, unknown or
revoked key is a 401 `unauthorized` with `WWW-Authenticate: Bearer`; an empty
bucket a 429 `rate_limited` with `Retry-After`; either way nothing changes.  A
request without the header stops before its body is read.  The two writes
(`POST /trade`, `PUT /create_player`) check the key in their own first round
trip to Redis (`KeyCheck`), so they parse the body of a request that sent some
key first; one that fails to parse is checked before it is answered, so an
unknown key still hears 401.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator, Optional

import redis
from flask import Flask, current_app, g, request

from engine.errors import ApiError
from engine.tokens import Claims, TokenProblem, Tokens
from engine.tokens import PREFIX as TOKEN_PREFIX
from engine.store import redis_errors, script_text

PREFIX = "bzk_"
KEY_BYTES = 32
KEY_FORMAT = re.compile(r"bzk_[A-Za-z0-9_-]{43}")  # what `new_key` makes
NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
PUBLIC_ENDPOINTS = frozenset({"meta.health", "meta.openapi", "meta.docs", "metrics"})
SCOPES = ("backend", "admin")
ADMIN_ENDPOINTS = frozenset({"offers.totals"})  # what only an admin key may call
CHALLENGE = 'Bearer realm="bazaar"'


class KeyProblem(Exception):
    """A key operation the caller asked for cannot be done (the message says why)."""


@dataclass(frozen=True)
class KeyInfo:
    name: str
    created: str
    last_used: Optional[str]
    rate: int
    scope: str


@dataclass(frozen=True)
class Verdict:
    """What `authorize.lua` decided: `allowed`, else `retry_after_ms` when limited, else unknown."""

    allowed: bool
    name: Optional[str] = None
    retry_after_ms: Optional[int] = None
    scope: str = "backend"


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(KEY_BYTES)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def scope_of(key: str) -> str:
    """What a key's Idempotency-Keys are scoped to (a prefix of its hash)."""
    return key_hash(key)[:32]


def _iso_ms(ms: Optional[bytes]) -> Optional[str]:
    if not ms:
        return None
    return datetime.fromtimestamp(int(ms) / 1000, timezone.utc).isoformat(timespec="seconds")


def _check_scope(scope: str) -> None:
    if scope not in SCOPES:
        raise KeyProblem(f"a key's scope is one of {', '.join(SCOPES)} (got {scope!r})")


class Keys:
    """The API keys in Redis: created, listed and revoked by `bazaar keys`, checked per request."""

    def __init__(self, client: redis.Redis, namespace: str):
        self.r = client
        self.k_names = f"{namespace}:apikeys"
        self.prefix = f"{namespace}:apikey:"
        self.player_buckets = f"{namespace}:player-bucket:"
        self.token_epochs = f"{namespace}:token-epoch:"
        self.k_gen = f"{namespace}:apikeys:gen"
        self._authorize = client.register_script(script_text("authorize.lua"))
        self._player_token = client.register_script(script_text("player_token.lua"))

    def create(self, name: str, rate: int, scope: str = "backend") -> str:
        """A new key under a new name; the key itself is returned once and stored nowhere."""
        key = new_key()
        self.register(name, key, rate, scope)
        return key

    def register(self, name: str, key: str, rate: int, scope: str = "backend") -> None:
        """Store a key the caller made (the local stack's own, kept in a file) under a new name."""
        if not NAME.fullmatch(name):
            raise KeyProblem(f"a key's name is 1-64 letters, digits, '.', '_' or '-' (got {name!r})")
        if rate < 1:
            raise KeyProblem("a key's rate is at least 1 request per second")
        _check_scope(scope)
        digest = key_hash(key)
        if not self.r.hsetnx(self.k_names, name, digest):
            raise KeyProblem(f"a key named {name!r} exists; revoke it first or choose another name")
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        # a new generation: tokens a key with this hash minted before a revocation stay refused
        self.r.hset(self.prefix + digest, mapping={"name": name, "created": created, "rate": rate, "scope": scope,
                                                   "gen": self.r.incr(self.k_gen)})

    def scope(self, name: str) -> Optional[str]:
        """The scope of the key with this name, if there is one."""
        digest = self.lookup(name)
        return (self.r.hget(self.prefix + digest, "scope") or b"backend").decode() if digest else None

    def set_scope(self, name: str, scope: str) -> None:
        _check_scope(scope)
        digest = self.lookup(name)
        if digest is None:
            raise KeyProblem(f"no key named {name!r}; `bazaar keys list` shows the names")
        self.r.hset(self.prefix + digest, "scope", scope)

    def lookup(self, name: str) -> Optional[str]:
        """The hash of the key with this name, if there is one."""
        digest = self.r.hget(self.k_names, name)
        return digest.decode() if digest else None

    def list(self) -> list[KeyInfo]:
        names = {n.decode(): d.decode() for n, d in self.r.hgetall(self.k_names).items()}
        pipe = self.r.pipeline(transaction=False)
        for digest in names.values():
            pipe.hmget(self.prefix + digest, "created", "used", "rate", "scope")
        out = []
        for name, (created, used, rate, scope) in zip(names, pipe.execute()):
            if created is not None:
                out.append(KeyInfo(name, created.decode(), _iso_ms(used), int(rate), (scope or b"backend").decode()))
        return sorted(out, key=lambda k: k.created)

    def revoke(self, name: str) -> None:
        digest = self.lookup(name)
        if digest is None:
            raise KeyProblem(f"no key named {name!r}; `bazaar keys list` shows the names")
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self.prefix + digest)
        pipe.hdel(self.k_names, name)
        pipe.execute()

    def authorize(self, key: str) -> Verdict:
        return self.verdict(self._authorize(keys=[self.prefix + key_hash(key)]))

    def queue_authorize(self, pipe: redis.client.Pipeline, key: str) -> None:
        """The same check, queued in a pipeline the caller runs (one round trip for it and the reads).
        By its hash: redis-py would ask Redis whether the script exists before every such pipeline
        (a round trip of its own), so a NOSCRIPT answer is handled by `load_scripts` instead."""
        pipe.evalsha(self._authorize.sha, 1, self.prefix + key_hash(key))

    def minting(self, key: str, player_id: int) -> tuple[int, int]:
        """What a token minted now by `key` for the player carries: (the key's generation, the player's
        token epoch)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hget(self.prefix + key_hash(key), "gen")
        pipe.get(f"{self.token_epochs}{player_id}")
        gen, epoch = pipe.execute()
        return int(gen or 0), int(epoch or 0)

    def check_player_token(self, claims: Claims, rate: int) -> tuple[Optional[str], int]:
        """Whether a player token still holds (its key, in the generation that minted it, not revoked; the
        player's tokens not revoked since), and a token taken from the player's bucket (shared by all its
        tokens): (why it is refused or None, the ms until the bucket has a token or 0)."""
        answer = self._player_token(keys=[self.prefix + claims.key, f"{self.token_epochs}{claims.player_id}",
                                          f"{self.player_buckets}{claims.player_id}"],
                                    args=[claims.key_gen, claims.epoch, rate])
        if answer[0] == 0:
            return answer[1].decode(), 0
        return None, int(answer[1]) if answer[0] == 2 else 0

    def revoke_player_tokens(self, player_id: int) -> int:
        """Refuse every token of the player minted so far (on the next request, on any worker); tokens
        minted later hold. Returns the player's new token epoch."""
        return int(self.r.incr(f"{self.token_epochs}{player_id}"))

    def load_scripts(self) -> None:
        """Load `authorize.lua` into Redis (after a restart or SCRIPT FLUSH emptied its cache)."""
        self.r.script_load(self._authorize.script)

    @staticmethod
    def verdict(answer: list) -> Verdict:
        if answer[0] == 0:
            return Verdict(False)
        name = answer[1].decode()
        if answer[0] == 2:
            return Verdict(False, name, int(answer[2]))
        return Verdict(True, name, scope=answer[2].decode() if len(answer) > 2 else "backend")


# -- the Flask side -----------------------------------------------------------
def _unauthorized(message: str, error: Optional[str] = None) -> ApiError:
    challenge = CHALLENGE + (f', error="{error}"' if error else "")
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": challenge},
                    reason=error or "no_credentials")


def bearer() -> str:
    """The credential of `Authorization: Bearer <credential>`, or a 401 naming what is wrong."""
    header = request.headers.get("Authorization")
    if header is None:
        raise _unauthorized("this route needs an API key: send `Authorization: Bearer <key>`")
    scheme, _, credential = header.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential or " " in credential:
        raise _unauthorized("the Authorization header must be `Bearer <key>`", "invalid_request")
    return credential


def get_keys() -> Keys:
    from engine.db import get_store  # one Redis pool per process, made in each server worker

    keys = current_app.extensions.get("bazaar_keys")
    if keys is None:
        store = get_store()
        keys = current_app.extensions["bazaar_keys"] = Keys(store.r, store.ns)
    return keys


def enforce(verdict: Verdict) -> None:
    """Refuse the request unless the verdict allows it."""
    if verdict.retry_after_ms is not None:
        raise ApiError(429, "rate_limited", f"key {verdict.name!r} is over its rate; retry after the delay given",
                       reason="key_rate", headers={"Retry-After": str(max(1, math.ceil(verdict.retry_after_ms / 1000)))})
    if not verdict.allowed:
        raise _unauthorized("unknown or revoked API key", "invalid_token")
    if request.endpoint in ADMIN_ENDPOINTS and verdict.scope != "admin":
        raise ApiError(403, "forbidden", f"key {verdict.name!r} is a {verdict.scope} key; this route needs an admin "
                                         "key (`bazaar keys create --scope admin`)", reason="scope")


class KeyCheck:
    """The key check as a write's preflight (`engine.store.Preflight`): queued with the write's first
    reads, judged before the write uses them, so a write pays no round trip of its own for it."""

    def __init__(self, credential: str):
        self.credential = credential

    def queue(self, pipe: redis.client.Pipeline) -> None:
        get_keys().queue_authorize(pipe, self.credential)

    def judge(self, results: list) -> None:
        enforce(Keys.verdict(results[0]))

    def load_scripts(self) -> None:
        get_keys().load_scripts()


# Write routes that check the key in their own first round trip (`key_check()`), not in a round
# trip of its own before the route runs; they call `refusals_after_key_check()` around their parsing.
DEFERRED = frozenset({("trades.trade", "POST"), ("players.create_player", "PUT"), ("offers.open_offer", "POST"),
                      ("offers.accept", "POST"), ("offers.cancel", "POST")})


def key_check() -> Optional[KeyCheck]:
    """The API key's check for a deferred write (None for a player token: checked before the route)."""
    return None if acting_player() is not None else KeyCheck(g.credential)


def acting_player() -> Optional[int]:
    """The player a request's token acts for; None with the game's API key (which acts for any player)."""
    return g.get("player_id")


def check_now() -> None:
    """The key check on its own round trip."""
    with redis_errors():  # an unreachable Redis is a 503, as everywhere
        enforce(get_keys().authorize(g.credential))


@contextmanager
def refusals_after_key_check() -> Iterator[None]:
    """In a deferred route, a request refused before its first round trip (a bad body) is checked
    first: an unknown key hears 401, not what is wrong with its body."""
    try:
        yield
    except Exception:
        if acting_player() is None:
            check_now()
        raise


# What a player token may call: (endpoint, method) -> the view argument that must be its own id, or
# None where the view checks the object (an offer: its parties) against `acting_player()`
PLAYER_ROUTES = {("players.get_player", "GET"): "player_id", ("players.history", "GET"): "player_id",
                 ("offers.player_offers", "GET"): "player_id", ("offers.open_offer", "POST"): None,
                 ("offers.get_offer", "GET"): None, ("offers.accept", "POST"): None, ("offers.cancel", "POST"): None}


def get_tokens() -> Optional[Tokens]:
    if "bazaar_tokens" not in current_app.extensions:
        secret = current_app.config["BAZAAR_SETTINGS"].token_secret
        current_app.extensions["bazaar_tokens"] = Tokens(secret.get_secret_value()) if secret else None
    return current_app.extensions["bazaar_tokens"]


def _as_player(token: str) -> None:
    """A player token acts as its player on that player's own routes; anything else is 403."""
    tokens = get_tokens()
    if tokens is None:
        raise _unauthorized("this engine takes no player tokens (BAZAAR_TOKEN_SECRET is unset)", "invalid_token")
    try:
        claims = tokens.claims(token)
    except TokenProblem as exc:
        raise _unauthorized(str(exc), "invalid_token") from None
    player_id = claims.player_id
    route = (request.endpoint, "GET" if request.method == "HEAD" else request.method)
    if route not in PLAYER_ROUTES or (PLAYER_ROUTES[route] is not None
                                      and (request.view_args or {}).get(PLAYER_ROUTES[route]) != player_id):
        raise forbidden(player_id)
    with redis_errors():
        refused, wait_ms = get_keys().check_player_token(claims, current_app.config["BAZAAR_SETTINGS"].player_rate)
    if refused == "key_revoked":
        raise _unauthorized("the API key that minted this token is revoked; ask the game for a new token",
                            "invalid_token")
    if refused:
        raise _unauthorized("this player's tokens were revoked after this one was minted; ask the game for a new "
                            "one", "invalid_token")
    if wait_ms:
        raise ApiError(429, "rate_limited", f"player {player_id} is over its rate; retry after the delay given",
                       reason="player_rate", headers={"Retry-After": str(max(1, math.ceil(wait_ms / 1000)))})
    g.player_id = player_id
    g.idem_scope = f"player-{player_id}"  # a player's Idempotency-Keys hold across its tokens


def forbidden(player_id: int, what: str = "") -> ApiError:
    return ApiError(403, "forbidden", f"a player token acts for player {player_id} only: its own state, history "
                                      f"and offers{what}; this needs the game's API key")


def _authenticate() -> None:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    credential = bearer()
    if credential.startswith(TOKEN_PREFIX):
        _as_player(credential)
        return
    g.credential = credential
    g.idem_scope = scope_of(credential)
    # a write defers its check to its first round trip; anything else (OPTIONS, HEAD, a 404 or a
    # 405 the view never sees) is checked here
    if (request.endpoint, request.method) not in DEFERRED:
        check_now()


def init_app(app: Flask) -> None:
    app.before_request(_authenticate)
