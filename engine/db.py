"""Access to the Redis-backed store from request handlers.

The connection pool is made lazily, on first use in each process (in each of
the server's workers), and kept in `app.extensions`; handlers call `get_store()`.
"""

from __future__ import annotations

import random

import redis
from flask import Flask, current_app, g

from engine.offerbook import OfferBook
from engine.settings import EngineSettings, RedisSettings
from engine.store import Store

_EXT = "bazaar_store"


def make_redis(settings: RedisSettings) -> redis.Redis:
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    return redis.Redis.from_url(settings.redis_url, password=password, socket_timeout=5, socket_connect_timeout=2)


def make_store(settings: RedisSettings) -> Store:
    """The engine's store on its own connection pool (for tools and checks outside a request)."""
    if isinstance(settings, EngineSettings):
        return Store(make_redis(settings), settings.namespace, settings.outbox_max, settings.history_max)
    return Store(make_redis(settings), settings.namespace, history_max=settings.history_max)


def get_store() -> Store:
    store = current_app.extensions.get(_EXT)
    if store is None:
        settings = current_app.config["BAZAAR_SETTINGS"]
        store = make_store(settings)
        if settings.metrics:
            from engine.metrics import observe_redis
            store.round_trip = observe_redis
        current_app.extensions[_EXT] = store
    return store


def get_offerbook() -> OfferBook:
    book = current_app.extensions.get("bazaar_offers")
    if book is None:
        settings = current_app.config["BAZAAR_SETTINGS"]
        book = current_app.extensions["bazaar_offers"] = OfferBook(
            get_store(), settings.max_open_offers, settings.offer_keep_s,
            (settings.offer_refusals_per_minute, settings.offer_refusals_per_minute / 60))
    return book


def get_rng() -> random.Random:
    """A per-request random source (for random classes and usernames)."""
    if "rng" not in g:
        g.rng = random.Random()
    return g.rng


def init_app(app: Flask) -> None:
    app.extensions[_EXT] = None
