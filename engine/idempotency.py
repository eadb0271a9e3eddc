"""Idempotent writes: `Idempotency-Key` on `POST /trade` and `PUT /create_player`.

As Stripe's: the first request with a key executes, and its answer (status and
body) is stored in the same atomic Redis step as its effect (`commit.lua`,
`create_player.lua`), so no crash can leave the one without the other.  A later
request with the same key and the same body gets that answer again, with
`Idempotent-Replayed: true`, and executes nothing; the same key with another
body is a 422 `idempotency_key_reused`; a repeat while the first still runs
waits for its answer (up to `idempotency_wait_s`), else 409
`idempotency_key_in_use` with `Retry-After`.  Keys are scoped to the API key
that sent them and kept `idempotency_keep_s` (24 h).

A request refused before it executes (a 400, or a 503 that changed nothing)
stores no answer and frees its key, so the client may retry it with the key.
A claim whose worker died before the commit lapses after `LOCK_MS`.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid
from importlib import resources
from typing import Callable, Optional

from flask import Response, current_app, g, request
from pydantic import BaseModel

from engine.errors import ApiError
from engine.store import Answer, Claim, Store, redis_errors

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_LENGTH = 255
LOCK_MS = 30_000  # far beyond a request's longest run (Redis timeouts are 5 s)
POLL_S = 0.02


def fingerprint(method: str, path: str, body: BaseModel) -> str:
    """The request as compared for a reused key: method, path and the validated body in canonical
    JSON (keys sorted, defaults filled in, 3.0 as 3: one request however the client spelled it)."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def valid_key(value: str) -> bool:
    return 1 <= len(value) <= MAX_LENGTH and all(" " <= ch <= "~" for ch in value)


def json_response(answer: Answer, replayed: bool = False) -> Response:
    status, body = answer
    response = current_app.response_class(body, status=status, mimetype="application/json")
    if replayed:
        response.headers[REPLAYED] = "true"
    return response


class Ledger:
    """The Idempotency-Key records of one store."""

    def __init__(self, store: Store):
        self.store = store
        files = resources.files("engine").joinpath("lua")
        self._begin = store.r.register_script(files.joinpath("idempotency_begin.lua").read_text())
        self._release = store.r.register_script(files.joinpath("idempotency_release.lua").read_text())

    def record(self, scope: str, key: str) -> str:
        return f"{self.store.ns}:idem:{scope}:{hashlib.sha256(key.encode()).hexdigest()}"

    def begin(self, record: str, fp: str, keep_s: int, wait_s: float) -> Claim | Answer:
        """Claim the key (a `Claim`), or the stored answer to replay; else an ApiError."""
        token = uuid.uuid4().hex
        deadline = time.monotonic() + wait_s
        while True:
            with redis_errors():
                state = self._begin(keys=[record], args=[fp, token, LOCK_MS])
            kind = state[0].decode()
            if kind == "new":
                return Claim(record, token, keep_s)
            if kind == "done":
                return int(state[1]), state[2].decode()
            if kind == "reused":
                raise ApiError(422, "idempotency_key_reused",
                               f"this {HEADER} came with another request; use a new key for a new request")
            if time.monotonic() >= deadline:  # "running": the first request has not answered yet
                retry = max(1, math.ceil(min(int(state[1]), 1000 * wait_s or 1000) / 1000))
                raise ApiError(409, "idempotency_key_in_use",
                               f"a request with this {HEADER} is still running; retry after the delay given",
                               headers={"Retry-After": str(retry)})
            time.sleep(POLL_S)

    def release(self, claim: Claim) -> None:
        try:
            with redis_errors():
                self._release(keys=[claim.record], args=[claim.token])
        except Exception:  # the key lapses on its own (LOCK_MS); the original error is what the client needs
            pass


def get_ledger(store: Store) -> Ledger:
    ledger = current_app.extensions.get("bazaar_idempotency")
    if ledger is None:
        ledger = current_app.extensions["bazaar_idempotency"] = Ledger(store)
    return ledger


def run(store: Store, body: BaseModel, execute: Callable[[Optional[Claim]], Answer]) -> Response:
    """Answer a write: `execute(claim)` runs it and stores its answer under the claim (if any)."""
    key = request.headers.get(HEADER)
    if key is None:
        return json_response(execute(None))
    if not valid_key(key):
        raise ApiError(400, "invalid_idempotency_key",
                       f"{HEADER} must be 1-{MAX_LENGTH} printable ASCII characters")
    settings = current_app.config["BAZAAR_SETTINGS"]
    ledger = get_ledger(store)
    begun = ledger.begin(ledger.record(g.key_scope, key), fingerprint(request.method, request.path, body),
                         settings.idempotency_keep_s, settings.idempotency_wait_s)
    if not isinstance(begun, Claim):
        return json_response(begun, replayed=True)
    try:
        return json_response(execute(begun))
    except BaseException:
        ledger.release(begun)  # a no-op when the answer was stored (the failure came after the commit)
        raise
