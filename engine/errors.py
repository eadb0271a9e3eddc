"""JSON errors for everything a client can get wrong; never a 500 for client input.

Every error body is `{"error": <code>, "message": <text>}`, plus `fields` (each
with `field` and `message`) for a 400 from validation. Every response carries
`X-Request-Id`; an error the engine did not foresee is a JSON 500 naming it,
logged with its traceback under the same id.
"""

from __future__ import annotations

import logging
from typing import Optional

from flask import Flask, g, jsonify
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from engine.events import new_id
from engine.store import Backpressure, Contention, KeyReused, StoreUnavailable

log = logging.getLogger("engine")
RETRY = {"Retry-After": "1"}


class ApiError(Exception):
    """An error answer: `status`, the stable `code`, a message saying what to do, response `headers`,
    and any other fields of the body."""

    def __init__(self, status: int, code: str, message: str, headers: Optional[dict[str, str]] = None,
                 reason: Optional[str] = None, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra
        self.headers = headers or {}
        self.reason = reason or code  # for the metrics only (`engine.metrics`): what exactly was refused


def error_response(status: int, code: str, message: str, headers: Optional[dict[str, str]] = None, **extra):
    body = {"error": code, "message": message, **extra}
    return jsonify(body), status, headers or {}


def validation_error(exc: ValidationError):
    fields = [
        {"field": ".".join(str(p) for p in e["loc"]) or "body",
         "message": "unknown field" if e["type"] == "extra_forbidden" else e["msg"]}
        for e in exc.errors(include_url=False)
    ]
    names = ", ".join(f["field"] for f in fields)
    return error_response(400, "invalid_request", f"invalid field(s): {names}", fields=fields)


def init_app(app: Flask) -> None:
    app.register_error_handler(ValidationError, validation_error)
    def _api_error(e: ApiError):
        g.refusal_reason = e.reason
        return error_response(e.status, e.code, e.message, e.headers, **e.extra)

    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(
        StoreUnavailable,
        lambda e: error_response(503, "store_unavailable", "the engine's store is unreachable; retry shortly",
                                 RETRY),
    )
    app.register_error_handler(
        Contention,
        lambda e: error_response(503, "contention", "the players kept changing under this trade; retry it", RETRY),
    )
    app.register_error_handler(
        Backpressure,
        lambda e: error_response(503, "backpressure", f"{e}: events wait for the relay to publish them; "
                                                      "nothing was changed, retry after the delay given", RETRY),
    )
    app.register_error_handler(
        KeyReused,
        lambda e: error_response(422, "idempotency_key_reused", "this Idempotency-Key came with another request; "
                                                                "use a new key for a new request"),
    )

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        messages = {413: f"request body larger than {app.config['MAX_CONTENT_LENGTH']} bytes"}
        allow = dict(exc.get_headers()).get("Allow")  # a 405 says which methods the route takes
        return error_response(exc.code or 500, code, messages.get(exc.code, exc.description or exc.name),
                              {"Allow": allow} if allow else None)

    @app.errorhandler(Exception)
    def _unforeseen(exc: Exception):
        log.exception("request %s failed", g.get("request_id", "-"))
        return error_response(500, "internal_error", f"the engine failed on this request; it is logged as "
                                                     f"request {g.get('request_id', '-')}", request_id=g.get("request_id"))

    @app.before_request
    def _start() -> None:
        g.request_id = new_id()

    @app.after_request
    def _finish(response):
        # the client quotes it; a failure is logged under it (`_unforeseen`)
        response.headers["X-Request-Id"] = g.get("request_id", "-")
        return response
