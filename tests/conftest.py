"""Fixtures: real services started through the same code as `bazaar up`,
on free ports and in a temporary home folder, stopped afterwards."""

from __future__ import annotations

import json

import pytest
import redis as redis_lib

from bazaar.settings import Stack
from bazaar.stack.api_key import ensure_stack_key
from tests.pipeline import authorized
from bazaar.stack import EngineService, KafkaService, MetastoreService, RedisService, TrinoService
from bazaar.stack.ports import isolated_stack
from engine.db import make_redis


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    return isolated_stack(tmp_path_factory.mktemp("bazaar-home"), engine_workers=3, namespace="test")


def _running(svc):
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def redis_service(stack):
    yield from _running(RedisService(stack))


@pytest.fixture
def redis_client(redis_service, stack):
    client = make_redis(stack.redis)
    client.flushall()
    yield client
    client.flushall()
    client.close()


@pytest.fixture
def app(stack, redis_client):
    from engine import create_app

    return create_app(stack.engine)


@pytest.fixture
def api_key(stack, redis_client) -> str:
    """The test stack's own key, registered in Redis (as `bazaar up` does) after the flush."""
    return ensure_stack_key(stack)


@pytest.fixture
def client(app, api_key):
    return authorized(app.test_client(), api_key)


@pytest.fixture
def auth(api_key) -> dict[str, str]:
    """The header the engine under the engine's server (granian) needs."""
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture(scope="session")
def kafka_service(stack):
    yield from _running(KafkaService(stack))


@pytest.fixture(scope="session")
def metastore_service(stack):
    yield from _running(MetastoreService(stack))


@pytest.fixture(scope="session")
def trino_service(stack, metastore_service):
    yield from _running(TrinoService(stack))


@pytest.fixture(scope="session")
def engine_service(stack, redis_service):
    yield from _running(EngineService(stack))


class Outbox:
    """Reads the engine's outbox stream as parsed events."""

    def __init__(self, client: redis_lib.Redis, namespace: str):
        self.client, self.key = client, f"{namespace}:outbox"

    def entries(self) -> list[dict]:
        out = []
        for _id, fields in self.client.xrange(self.key):
            ev = json.loads(fields[b"e"])
            out.append({"key": fields[b"k"].decode(), "type": fields[b"t"].decode(), "event": ev})
        return out

    def events(self, event_type: str | None = None) -> list[dict]:
        return [e["event"] for e in self.entries() if event_type in (None, e["type"])]


@pytest.fixture
def outbox(redis_client, stack) -> Outbox:
    return Outbox(redis_client, stack.redis.namespace)
