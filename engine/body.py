"""Reading a JSON request body, whatever Content-Type the client sent.

The seed's clients (and `ab -u`) do not always say `application/json`, so the
body is parsed as JSON regardless; anything that is not a JSON object is a 400.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel

from engine.errors import ApiError

M = TypeVar("M", bound=BaseModel)


def json_body(allow_empty: bool = False) -> dict[str, Any]:
    raw = request.get_data(cache=False)
    if not raw.strip():
        if allow_empty:
            return {}
        raise ApiError(400, "invalid_json", "the request body is empty; send a JSON object")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "invalid_json", "the request body must be a JSON object")
    return doc


def parse(model: type[M], allow_empty: bool = False) -> M:
    return model.model_validate(json_body(allow_empty))
