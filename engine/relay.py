"""The outbox relay: moves events from the engine's Redis stream to Kafka.

    python -m engine.relay          (started by `bazaar up`)

At-least-once, in order: entries are read through a consumer group, produced
with acks=all (idempotent producer, batches compressed with `relay_compression`),
and acknowledged and deleted from the stream only after Kafka confirmed them.
The producer is librdkafka's (confluent-kafka): at a steady flow of trades,
kafka-python's producer cost 0.52 ms of CPU per event here and librdkafka's
0.04 ms (the README's benchmark section); kafka-python stays for the
topic's administration and the tests' consumers.  What a crashed relay left pending
(its own, or another consumer's idle past `relay_claim_idle_ms`) is sent
again; such re-sent entries are counted, since Kafka may hold them twice (the
sinks deduplicate by `event_id`).  So the stream holds exactly the entries not
yet confirmed: its length is the relay's lag.

Progress is kept in the hash `{ns}:relay`: sent, resent, batches, heartbeat. Metrics, in
Prometheus' text format at `http://RELAY_METRICS_HOST:RELAY_METRICS_PORT/metrics`:

    bazaar_relay_outbox_entries                 entries waiting in the outbox (read at each scrape)
    bazaar_relay_oldest_entry_age_seconds       age of the oldest (0 when none waits)
    bazaar_relay_events_sent_total              events Kafka confirmed
    bazaar_relay_events_resent_total            of which sent again (Kafka may hold them twice)
    bazaar_relay_batch_size                     events per batch (histogram)
    bazaar_relay_send_seconds                   produce to Kafka's confirmation, per batch (histogram)
    bazaar_relay_offers_expired_total           offers the sweep ended
    bazaar_relay_up                             1 while the outbox is readable

The relay also ends expired offers (`OfferBook.sweep`, about once a second, on
a thread of its own): it is the process always running beside Redis, busy or
idle alike, and one per deployment (a second relay sweeping too would only
lose races: every end of an offer is committed once); an offer's escrow is
back with its maker within about a second of `expires_at`, without any
request.  The sweep's writes are not held back by the outbox's cap (they are
few: one per open offer at most), so escrow returns even while Kafka is away.
While the relay is down, an accept or cancel that reaches an offer past due
ends it (`engine.offerbook`).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from functools import partial
from typing import Optional

import redis
from confluent_kafka import KafkaException, Producer
from prometheus_client import REGISTRY, Counter, Histogram, disable_created_metrics, start_http_server
from prometheus_client.core import GaugeMetricFamily

from engine.db import make_redis
from engine.offerbook import OfferBook
from engine.settings import RelaySettings
from engine.store import Store

log = logging.getLogger("engine.relay")
GROUP = "relay"

disable_created_metrics()
SENT = Counter("bazaar_relay_events_sent", "Events Kafka confirmed.")
RESENT = Counter("bazaar_relay_events_resent", "Events sent again (claimed or pending after a failure).")
BATCH = Histogram("bazaar_relay_batch_size", "Events per batch sent to Kafka.",
                  buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000))
SEND = Histogram("bazaar_relay_send_seconds", "Seconds from producing a batch to Kafka's confirmation of it.",
                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
EXPIRED = Counter("bazaar_relay_offers_expired", "Offers the relay's sweep ended past their expiry.")


@dataclass
class Lag:
    waiting: int
    oldest_age_s: Optional[float]
    sent: int
    resent: int
    heartbeat_age_s: Optional[float]
    pid: Optional[int]


def stream_id_ms(entry_id: bytes | str) -> int:
    return int((entry_id.decode() if isinstance(entry_id, bytes) else entry_id).split("-")[0])


def read_lag(client: redis.Redis, namespace: str) -> Lag:
    """Entries waiting in the outbox, the age of the oldest, and the relay's counters."""
    outbox = f"{namespace}:outbox"
    pipe = client.pipeline(transaction=False)
    pipe.xlen(outbox)
    pipe.xrange(outbox, count=1)
    pipe.hgetall(f"{namespace}:relay")
    pipe.time()
    waiting, first, stats, (now_s, now_us) = pipe.execute()
    now_ms = now_s * 1000 + now_us // 1000
    stats = {k.decode(): v.decode() for k, v in stats.items()}
    beat = float(stats["heartbeat"]) if "heartbeat" in stats else None
    return Lag(
        waiting=waiting,
        oldest_age_s=(now_ms - stream_id_ms(first[0][0])) / 1000 if first else None,
        sent=int(stats.get("sent", 0)),
        resent=int(stats.get("resent", 0)),
        heartbeat_age_s=None if beat is None else now_s + now_us / 1e6 - beat,
        pid=int(stats["pid"]) if "pid" in stats else None,
    )


class OutboxCollector:
    """The outbox's length and its oldest entry's age, read from Redis at each scrape."""

    def __init__(self, client: redis.Redis, namespace: str):
        self.client, self.namespace = client, namespace

    def collect(self):
        up = GaugeMetricFamily("bazaar_relay_up", "1 while the relay reads the outbox's Redis.")
        try:
            lag = read_lag(self.client, self.namespace)
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("bazaar_relay_outbox_entries", "Entries waiting in the outbox.", value=lag.waiting)
        yield GaugeMetricFamily("bazaar_relay_oldest_entry_age_seconds", "Age of the outbox's oldest entry "
                                "(0 when none waits).", value=lag.oldest_age_s or 0.0)


class Relay:
    def __init__(self, client: redis.Redis, settings: RelaySettings, consumer: Optional[str] = None):
        self.r = client
        self.s = settings
        self.outbox = f"{settings.namespace}:outbox"
        self.stats = f"{settings.namespace}:relay"
        self.consumer = consumer or settings.relay_consumer
        self.producer: Optional[Producer] = None
        self.stopping = False
        self._own_pending = True  # after a start or a failure, first re-send what we hold
        # the sweep's store takes no outbox cap: returning escrow must not wait for Kafka
        self.offers = OfferBook(Store(client, settings.namespace, outbox_max=2**62,
                                      history_max=settings.history_max), keep_s=settings.offer_keep_s)
        self.sweep_every_s = 1.0
        self._next_claim = 0.0  # monotonic times of the next look for abandoned entries, and heartbeat
        self._next_beat = 0.0

    def ensure_group(self) -> None:
        try:
            self.r.xgroup_create(self.outbox, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _producer(self) -> Producer:
        if self.producer is None:
            self.producer = Producer({
                "bootstrap.servers": self.s.kafka_bootstrap,
                "acks": "all",
                "enable.idempotence": True,  # producer retries never duplicate or reorder
                "compression.type": self.s.relay_compression,
                # kafka-python's and the Java client's partitioner: a key's events stay in the partition
                # they went to before (librdkafka's default hashes keys differently)
                "partitioner": "murmur2_random",
                "linger.ms": 5,  # a batch is sent as one request anyway: this only gathers stragglers
                "batch.size": 1024 * 1024,
                "message.timeout.ms": 30_000,  # a batch Kafka has not confirmed by then is sent again
                "socket.timeout.ms": 15_000,
                **self.s.kafka_login().librdkafka(),  # the relay's principal: WRITE on the topic, nothing else
                "logger": log,
            })
        return self.producer

    def _drop_producer(self) -> None:
        """Discard the producer and whatever it still holds: those entries are still pending in the
        outbox and are sent again, by a new producer, in order."""
        if self.producer is not None:
            self.producer.purge()
            self.producer.flush(0)
            self.producer = None

    def next_batch(self, block_ms: int) -> tuple[list, bool]:
        """(entries, resent): claimed or own pending entries first, then new ones.  Another relay's
        abandoned entries are looked for a few times per idle period, not on every batch (they can
        only be claimed once idle that long): a round trip saved per batch at a steady flow."""
        n = self.s.relay_batch
        now = time.monotonic()
        if now >= self._next_claim:
            _, claimed, _ = self.r.xautoclaim(self.outbox, GROUP, self.consumer, self.s.relay_claim_idle_ms,
                                              "0-0", count=n)
            # a full batch: there may be more to claim on the next one
            self._next_claim = 0.0 if len(claimed) == n else now + self.s.relay_claim_idle_ms / 4000
            if claimed:
                return claimed, True
        if self._own_pending:
            mine = self.r.xreadgroup(GROUP, self.consumer, {self.outbox: "0"}, count=n)
            entries = mine[0][1] if mine else []
            if entries:
                return entries, True
            self._own_pending = False
        fresh = self.r.xreadgroup(GROUP, self.consumer, {self.outbox: ">"}, count=n, block=block_ms)
        return (fresh[0][1] if fresh else []), False

    def send(self, entries: list, resent: bool) -> int:
        """Produce a batch; acknowledge what Kafka confirmed. Returns how many were confirmed."""
        entries = [(eid, f) for eid, f in entries if f]  # a deleted entry claimed by id comes back empty
        ok: list = []
        failed: list = []

        def delivered(eid, err, _msg) -> None:  # called from flush(), on this thread
            (failed if err is not None else ok).append(eid)

        started = time.perf_counter()
        try:
            producer = self._producer()
            topic = self.s.topic
            for eid, f in entries:
                producer.produce(topic, f[b"e"], f[b"k"], on_delivery=partial(delivered, eid))
            left = producer.flush(30)
        except (KafkaException, BufferError) as exc:
            log.warning("kafka unavailable (%s); will retry", exc)
            left = -1
        if left or failed:
            if failed:
                log.warning("kafka refused %d of %d events; will retry", len(failed), len(entries))
            self._drop_producer()
            self._own_pending = True
        if ok:
            SEND.observe(time.perf_counter() - started)
            BATCH.observe(len(ok))
            SENT.inc(len(ok))
            if resent:
                RESENT.inc(len(ok))
            pipe = self.r.pipeline(transaction=True)
            pipe.xack(self.outbox, GROUP, *ok)
            pipe.xdel(self.outbox, *ok)
            pipe.hincrby(self.stats, "sent", len(ok))
            if resent:
                pipe.hincrby(self.stats, "resent", len(ok))
            pipe.execute()
        return len(ok)

    def beat(self) -> None:
        """The heartbeat in `{ns}:relay`, at most once a second (by Redis's clock, as `read_lag` reads it)."""
        now = time.monotonic()
        if now < self._next_beat:
            return
        self._next_beat = now + 1.0
        now_s, now_us = self.r.time()
        self.r.hset(self.stats, mapping={"heartbeat": f"{now_s + now_us / 1e6:.3f}", "pid": os.getpid()})

    def sweep_forever(self) -> None:
        """End the offers past their expiry about once a second until the relay stops; on a thread of
        its own, so a slow Kafka never holds it back, and never ended by a failure (it tries again)."""
        while not self.stopping:
            try:
                swept = self.offers.sweep()
                if swept:
                    EXPIRED.inc(swept)
                    log.info("expired %d offers, their escrow returned", swept)
            except Exception:  # Redis away or full, or anything else: logged, tried again in a second
                log.exception("offer sweep failed; retrying in %.0fs", self.sweep_every_s)
            time.sleep(self.sweep_every_s)

    def run(self, block_ms: int = 500) -> None:
        self.ensure_group()
        self._own_pending = True  # entries read before a Redis failure may be pending unacknowledged
        backoff = 0.5
        gather_s = self.s.relay_gather_ms / 1000
        while not self.stopping:
            started = time.monotonic()
            self.beat()
            entries, resent = self.next_batch(block_ms)
            if not entries:
                continue
            if self.send(entries, resent) == 0:
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.5
            if len(entries) < self.s.relay_batch:
                # a steady flow: let the next batch gather for a moment instead of paying a Redis and
                # a Kafka round trip for every few events (a first event after a quiet spell goes at once)
                time.sleep(max(0.0, gather_s - (time.monotonic() - started)))
        self._drop_producer()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = RelaySettings()
    relay = Relay(make_redis(settings), settings)

    def stop(*_):
        relay.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if settings.relay_metrics_port:
        REGISTRY.register(OutboxCollector(make_redis(settings), settings.namespace))
        try:
            start_http_server(settings.relay_metrics_port, addr=settings.relay_metrics_host)
            log.info("metrics at http://%s:%d/metrics", settings.relay_metrics_host, settings.relay_metrics_port)
        except OSError as exc:  # events go on flowing without them; Prometheus shows the target down
            log.error("no metrics at %s:%d (%s): another program holds the port; free it or move the relay's with "
                      "BAZAAR_RELAY_METRICS_PORT", settings.relay_metrics_host, settings.relay_metrics_port, exc)
    log.info("relaying %s:outbox to %s topic %s", settings.namespace, settings.kafka_bootstrap,
             settings.topic)
    threading.Thread(target=relay.sweep_forever, name="offer-sweep", daemon=True).start()
    while not relay.stopping:
        try:
            relay.run()
        except redis.ConnectionError as exc:
            log.warning("redis unavailable (%s); retrying in 1s", exc)
            time.sleep(1)


if __name__ == "__main__":
    main()
