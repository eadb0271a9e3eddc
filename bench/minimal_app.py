"""The ceiling any Flask route reaches here: one route that reads nothing and answers a small JSON,
served by the engine's own server command (`engine_bench.py` runs it beside the engine)."""

from flask import Flask


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.post("/trade")
    def trade():
        return {"status": "executed"}

    return app
