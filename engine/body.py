"""Reading a JSON request body, whatever Content-Type the client sent.

The seed's clients (and `ab -u`) do not always say `application/json`, so the
body is parsed as JSON regardless; anything that is not a JSON object, or is
nested deeper than `MAX_DEPTH`, is a 400 (never a 500 from the parser's recursion).
The parser is orjson's, which holds to the JSON standard: `NaN`, `Infinity` and a lone
surrogate escape are not JSON, so a 400 `invalid_json`; a UTF-8 byte-order mark is skipped.
"""

from __future__ import annotations

import codecs
from typing import Any

import orjson
from flask import request

from engine.errors import ApiError

MAX_DEPTH = 32  # the deepest valid body (a trade side's inventory items) is 5


def depth(doc: Any) -> int:
    """How deeply arrays and objects nest in a parsed document (a scalar is 0), without recursion."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def json_body(allow_empty: bool = False) -> dict[str, Any]:
    raw = request.get_data(cache=False).removeprefix(codecs.BOM_UTF8)  # as the standard library's parser did
    if not raw.strip():
        if allow_empty:
            return {}
        raise ApiError(400, "invalid_json", "the request body is empty; send a JSON object")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):  # nested far deeper than MAX_DEPTH: the parser stops at 1,024 levels
            raise ApiError(400, "too_deep", f"the request body nests arrays and objects more than {MAX_DEPTH} deep") \
                from None
        raise ApiError(400, "invalid_json", f"the request body is not valid JSON: {exc}") from None
    if depth(doc) > MAX_DEPTH:
        raise ApiError(400, "too_deep", f"the request body nests arrays and objects more than {MAX_DEPTH} deep")
    if not isinstance(doc, dict):
        raise ApiError(400, "invalid_json", "the request body must be a JSON object")
    return doc
