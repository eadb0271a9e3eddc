"""A sink driver's metrics, in Prometheus' text format at
`http://SPARK_DRIVER_HOST:SINK_METRICS_PORT(+1 for player_states)/metrics`.

    bazaar_sink_records_read_total{sink}                 Kafka records the sink's batches read
    bazaar_sink_records_written_total{sink}              valid events written to the tables
    bazaar_sink_records_quarantined_total{sink}          records quarantined
    bazaar_sink_batches_total{sink}                      batches committed
    bazaar_sink_batch_seconds{sink}                      a micro-batch's duration (histogram)
    bazaar_sink_offsets_behind{sink}                     records in the topic past the last batch's end
    bazaar_sink_newest_arrival_timestamp_seconds{sink}   Kafka arrival time of the newest event landed:
                                                         freshness is time() minus it while events flow
    bazaar_sink_last_progress_timestamp_seconds{sink}    when the query last reported progress

Counters start from zero with each driver process; Prometheus' `rate` and `increase` see the reset.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics, start_http_server

SINK_ORDER = ("trades", "player_states")  # the metrics port's offset from `sink_metrics_port`

disable_created_metrics()
READ = Counter("bazaar_sink_records_read", "Kafka records the sink's batches read.", ["sink"])
WRITTEN = Counter("bazaar_sink_records_written", "Valid events written to the tables.", ["sink"])
QUARANTINED = Counter("bazaar_sink_records_quarantined", "Records quarantined.", ["sink"])
BATCHES = Counter("bazaar_sink_batches", "Batches committed.", ["sink"])
BATCH_SECONDS = Histogram("bazaar_sink_batch_seconds", "A micro-batch's duration, trigger to commit.", ["sink"],
                          buckets=(0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60, 120, 300))
BEHIND = Gauge("bazaar_sink_offsets_behind", "Records in the topic past the end of the sink's last batch.", ["sink"])
NEWEST = Gauge("bazaar_sink_newest_arrival_timestamp_seconds",
               "Kafka arrival time of the newest event landed in the tables.", ["sink"])
_newest: dict[str, float] = {}
PROGRESS = Gauge("bazaar_sink_last_progress_timestamp_seconds", "When the query last reported progress.", ["sink"])


def port_of(base: int, sink: str) -> int:
    return base + SINK_ORDER.index(sink)


def serve(sink: str, host: str, base_port: int) -> None:
    """Serve `/metrics` from a thread of the driver (nothing when the port setting is 0)."""
    if not base_port:
        return
    for metric in (READ, WRITTEN, QUARANTINED, BATCHES):  # present at zero from the start
        metric.labels(sink)
    try:
        start_http_server(port_of(base_port, sink), addr=host)
    except OSError as exc:  # the sink runs on without them; Prometheus shows its target down
        print(f"sink {sink}: no metrics at {host}:{port_of(base_port, sink)} ({exc}); another program holds "
              f"the port: free it, or move every sink's with BAZAAR_SINK_METRICS_PORT", flush=True)


def progress(sink: str, at: float, input_rows: int | None, batch_ms: float | None, behind: int | None) -> None:
    """A Structured Streaming progress event."""
    PROGRESS.labels(sink).set(at)
    if input_rows:
        READ.labels(sink).inc(input_rows)
    if batch_ms is not None and input_rows:
        BATCH_SECONDS.labels(sink).observe(batch_ms / 1000)
    if behind is not None:
        BEHIND.labels(sink).set(behind)


def committed(sink: str, written: int, quarantined: int, newest_arrival: float | None) -> None:
    """A batch committed (its commit record written)."""
    BATCHES.labels(sink).inc()
    WRITTEN.labels(sink).inc(written)
    QUARANTINED.labels(sink).inc(quarantined)
    if newest_arrival is not None and newest_arrival > _newest.get(sink, 0.0):  # a late batch never moves it back
        _newest[sink] = newest_arrival
        NEWEST.labels(sink).set(newest_arrival)
