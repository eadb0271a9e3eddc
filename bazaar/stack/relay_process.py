"""The outbox relay (`engine.relay`) as a supervised process."""

from __future__ import annotations

import sys

from bazaar.stack.service import Service, Status
from engine.db import make_redis
from engine.relay import read_lag

HEARTBEAT_STALE_S = 60.0  # a relay blocked on a down broker still beats between attempts


class RelayService(Service):
    port_settings = ('relay_metrics_port',)
    name = "relay"
    startup_timeout = 30.0

    @property
    def address(self) -> str:
        r = self.stack.relay
        return f"{r.namespace}:outbox -> {r.kafka_bootstrap}/{r.topic}"

    def environment(self) -> dict[str, str]:
        return {**self.stack.env(), **self.stack.redis_env(), **self.stack.kafka_env("relay")}

    def command(self) -> list[str]:
        return [sys.executable, "-m", "engine.relay"]

    def lag(self):
        client = make_redis(self.stack.relay)
        try:
            return read_lag(client, self.stack.relay.namespace)
        finally:
            client.close()

    def healthy(self) -> bool:
        lag = self.lag()
        return lag.pid == self.main_pid() and lag.heartbeat_age_s is not None and lag.heartbeat_age_s < HEARTBEAT_STALE_S

    def status(self) -> Status:
        st = super().status()
        try:
            lag = self.lag()
            age = "-" if lag.oldest_age_s is None else f"{lag.oldest_age_s:.1f}s"
            st.detail = (st.detail + "; " if st.detail else "") + f"lag {lag.waiting} (oldest {age})"
        except Exception:  # the lag is a courtesy; redis being down shows on its own row
            pass
        return st
