"""Idempotent writes: `Idempotency-Key` on `POST /trade`, `PUT /create_player` and the offer writes.

As Stripe's: the first request with a key executes, and its answer (status and
body) is stored in the same atomic Redis step as its effect (`commit.lua`,
`create_player.lua`), so no crash can leave the one without the other.  A later
request with the same key and the same body gets that answer again, with
`Idempotent-Replayed: true`, and executes nothing; the same key with another
body is a 422 `idempotency_key_reused`.  Keys are scoped to the API key that
sent them (or to the player, for a player token's) and kept `idempotency_keep_s` (24 h).

No lock is taken before a request runs: the record is read with the request's
first reads (the same round trip) and checked again inside the write's own
script.  So requests with one key running at once each decide, the first to
commit executes, and every other one finds its answer in the script and replays
it: one execution, one answer, and no claim that a killed worker could leave
behind.  A request refused before it commits (a 400, a 503) stores nothing, so
it may be retried with the same key.
"""

from __future__ import annotations

import hashlib
import json
from typing import Optional

from flask import Response, current_app, g, request
from pydantic import BaseModel

from engine.errors import ApiError
from engine.store import Done, Idem, Store

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_LENGTH = 255


def fingerprint(method: str, path: str, body: BaseModel) -> str:
    """The request as compared for a reused key: method, path and the validated body in canonical
    JSON (keys sorted, defaults filled in, 3.0 as 3: one request however the client spelled it)."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def valid_key(value: str) -> bool:
    return 1 <= len(value) <= MAX_LENGTH and all(" " <= ch <= "~" for ch in value)


def record(store: Store, scope: str, key: str) -> str:
    """The key's record, scoped to the caller: its API key (a prefix of its hash), or its player."""
    return f"{store.ns}:idem:{scope}:{hashlib.sha256(key.encode()).hexdigest()}"


def from_request(store: Store, body: BaseModel) -> Optional[Idem]:
    """The request's Idempotency-Key, if it sent one (a 400 if it is malformed)."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not valid_key(key):
        raise ApiError(400, "invalid_idempotency_key", f"{HEADER} must be 1-{MAX_LENGTH} printable ASCII characters")
    keep_s = current_app.config["BAZAAR_SETTINGS"].idempotency_keep_s
    return Idem(record(store, g.idem_scope, key), fingerprint(request.method, request.path, body), keep_s)


def respond(done: Done) -> Response:
    status, body = done.answer
    response = current_app.response_class(body, status=status, mimetype="application/json")
    if done.replayed:
        response.headers[REPLAYED] = "true"
    return response
