"""The trade engine: a Flask application whose state lives in Redis.

Run it with gunicorn (`bazaar up` does): `gunicorn 'engine:create_app()'`.
"""

from __future__ import annotations

from typing import Any, Optional

from flask import Flask

from bazaar.settings import Settings, get_settings


def create_app(settings: Optional[Settings] = None, test_config: Optional[dict[str, Any]] = None) -> Flask:
    """Application factory: one blueprint per concern, one Redis pool per process."""
    settings = settings or get_settings()
    app = Flask(__name__)
    app.config.from_mapping(BAZAAR_SETTINGS=settings, MAX_CONTENT_LENGTH=settings.max_body_bytes)
    if test_config:
        app.config.update(test_config)

    from engine import db, errors, meta, players, trades

    db.init_app(app)
    errors.init_app(app)
    app.register_blueprint(players.bp)
    app.register_blueprint(trades.bp)
    app.register_blueprint(meta.bp)
    return app
