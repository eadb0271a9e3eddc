"""The trade engine: a Flask application whose state lives in Redis.

Run it under any WSGI server; `bazaar up` runs granian: `granian --interface wsgi --factory engine:create_app`.
Configured by `engine.settings.EngineSettings` (`BAZAAR_REDIS_URL`, ...).
"""

from __future__ import annotations

from typing import Optional

from flask import Flask

from engine.jsonio import OrjsonProvider
from engine.settings import EngineSettings


def create_app(settings: Optional[EngineSettings] = None) -> Flask:
    """Application factory: one blueprint per concern, one Redis pool per process."""
    settings = settings or EngineSettings()
    app = Flask(__name__)
    app.json = OrjsonProvider(app)
    app.config.from_mapping(BAZAAR_SETTINGS=settings, MAX_CONTENT_LENGTH=settings.max_body_bytes)

    from engine import auth, db, errors, meta, metrics, offers, players, trades

    db.init_app(app)
    errors.init_app(app)
    metrics.init_app(app)  # before auth: a refused request is timed and counted too
    auth.init_app(app)  # after errors: a refused request has its request id too
    app.register_blueprint(players.bp)
    app.register_blueprint(trades.bp)
    app.register_blueprint(offers.bp)
    app.register_blueprint(meta.bp)
    return app
