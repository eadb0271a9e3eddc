"""Fixtures: real services started through the same code as `bazaar up`,
on free ports and in a temporary home folder, stopped afterwards."""

from __future__ import annotations

import json
import socket

import pytest
import redis as redis_lib

from bazaar.settings import Settings
from bazaar.stack import EngineService, KafkaService, MetastoreService, RedisService, TrinoService


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def settings(tmp_path_factory) -> Settings:
    return Settings(
        home=tmp_path_factory.mktemp("bazaar-home"),
        redis_port=free_port(),
        engine_port=free_port(),
        engine_workers=3,
        namespace="test",
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        metastore_port=free_port(),
        trino_port=free_port(),
        dagster_port=free_port(),
        reports_port=free_port(),
    )


@pytest.fixture(scope="session")
def redis_service(settings):
    svc = RedisService(settings)
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture
def redis_client(redis_service, settings):
    client = redis_lib.Redis.from_url(settings.effective_redis_url)
    client.flushall()
    yield client
    client.flushall()
    client.close()


@pytest.fixture
def app(settings, redis_client):
    from engine import create_app

    return create_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()


def _running(svc):
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def kafka_service(settings):
    yield from _running(KafkaService(settings))


@pytest.fixture(scope="session")
def metastore_service(settings):
    yield from _running(MetastoreService(settings))


@pytest.fixture(scope="session")
def trino_service(settings, metastore_service):
    yield from _running(TrinoService(settings))


@pytest.fixture(scope="session")
def engine_service(settings, redis_service):
    svc = EngineService(settings)
    svc.start()
    yield svc
    svc.stop()


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
def outbox(redis_client, settings) -> Outbox:
    return Outbox(redis_client, settings.namespace)
