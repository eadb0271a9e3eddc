"""Health, the OpenAPI document and a docs page rendered from it (no CDN needed)."""

from __future__ import annotations

import json

from flask import Blueprint, render_template

from engine.db import get_store
from engine.openapi import spec

bp = Blueprint("meta", __name__)


@bp.get("/health")
def health():
    store = get_store()
    store.ping()  # an unreachable Redis becomes a 503 through the StoreUnavailable handler
    return {"status": "ok", "redis": "ok", "players": store.player_count()}


@bp.get("/openapi.json")
def openapi():
    return spec()


@bp.get("/docs")
def docs():
    doc = spec()
    schemas = {name: json.dumps(s, indent=2) for name, s in doc["components"]["schemas"].items()}
    return render_template("docs.html", doc=doc, schemas=schemas)
