"""Redis from Debian's `redis-server`, with an append-only file so that a
killed server restarts with every acknowledged write (fsync every second),
bounded by `maxmemory` with no eviction, and a password (`Stack.redis`: the
environment's, else one made at first start, 0600).  Once it answers, the stack's own API
key is registered in it (`bazaar.stack.api_key`)."""

from __future__ import annotations

import shutil

import redis

from bazaar.settings import private_write
from bazaar.stack.api_key import ensure_stack_key
from bazaar.stack.service import Service, ServiceError


class RedisService(Service):
    port_settings = ('redis_port',)
    name = "redis"
    startup_timeout = 30.0

    @property
    def address(self) -> str:
        return self.stack.redis.redis_url

    @property
    def conf_path(self):
        return self.data_dir / "redis.conf"

    def prepare(self) -> None:
        if shutil.which("redis-server") is None:
            raise ServiceError("redis-server is not installed: run `make system-deps` (apt-get install redis-server)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"bind {self.local.host}",
            f"port {self.local.redis_port}",
            f"dir {self.data_dir}",
            "daemonize no",
            "protected-mode yes",
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            "loglevel notice",
            # bounded: when full, writes are refused whole (the engine answers 503), nothing is evicted
            f"maxmemory {self.local.redis_maxmemory}",
            "maxmemory-policy noeviction",
        ]
        if self.stack.redis.redis_password:
            lines.append(f"requirepass {self.stack.redis.redis_password.get_secret_value()}")
        private_write(self.conf_path, "\n".join(lines) + "\n")  # it holds the password

    def command(self) -> list[str]:
        return ["redis-server", str(self.conf_path)]

    def start(self) -> bool:
        if self.pid() is not None and self.stack.redis.redis_password and self._answers_anyone():
            raise ServiceError(f"Redis at {self.address} runs without the password the stack now keeps "
                               f"({self.stack.home / 'redis-password'}, or BAZAAR_REDIS_PASSWORD): it was started by an "
                               "earlier Bazaar. Run `bazaar down`, then `bazaar up` (its data is kept).")
        return super().start()

    def _answers_anyone(self) -> bool:
        client = redis.Redis(host=self.local.host, port=self.local.redis_port, socket_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:  # NOAUTH: it asks for the password, as it should
            return False
        finally:
            client.close()

    def after_start(self) -> None:
        client = self._client()
        try:  # a Redis started by an earlier version of its config gets the limit now
            client.config_set("maxmemory", self.local.redis_maxmemory)
            client.config_set("maxmemory-policy", "noeviction")
        finally:
            client.close()
        ensure_stack_key(self.stack)

    def _client(self) -> redis.Redis:
        pw = self.stack.redis.redis_password
        return redis.Redis(host=self.local.host, port=self.local.redis_port, socket_timeout=1,
                           password=pw.get_secret_value() if pw else None)

    def healthy(self) -> bool:
        client = self._client()
        try:
            return bool(client.ping())
        finally:
            client.close()
