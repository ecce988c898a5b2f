"""Prometheus metrics in the text exposition format, without a client library: counters,
gauges and a latency histogram, all thread-safe."""
from __future__ import annotations

import bisect
import threading

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _labels(labels: dict) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                     for k, v in sorted(labels.items()))
    return "{" + inner + "}"


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self._counters: dict = {}
        self._gauges: dict = {}
        self._histograms: dict = {}
        self._gauge_readers: dict = {}  # gauges read when rendered, not set on every change
        self._help: dict = {}

    def describe(self, name: str, kind: str, text: str) -> None:
        self._help[name] = (kind, text)

    def inc(self, name: str, amount: float = 1.0, **labels) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._counters[key] = self._counters.get(key, 0.0) + amount

    def set(self, name: str, value: float, **labels) -> None:
        with self._lock:
            self._gauges[(name, tuple(sorted(labels.items())))] = float(value)

    def gauge_from(self, name: str, read, **labels) -> None:
        """A gauge whose value ``read()`` gives when the metrics are read: a value that changes
        on every request (a queue's depth) then costs the request nothing."""
        with self._lock:
            self._gauge_readers[(name, tuple(sorted(labels.items())))] = read

    def _read_gauges(self) -> dict:
        gauges = dict(self._gauges)
        for key, read in self._gauge_readers.items():
            gauges[key] = float(read())
        return gauges

    def observe(self, name: str, seconds: float, **labels) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            counts, total = self._histograms.get(key, ([0] * (len(LATENCY_BUCKETS) + 1), 0.0))
            counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            self._histograms[key] = (counts, total + seconds)

    def value(self, name: str, **labels) -> float:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            if key in self._gauge_readers:
                return float(self._gauge_readers[key]())
            return self._counters.get(key, self._gauges.get(key, 0.0))

    def render(self) -> str:
        lines = []
        with self._lock:
            gauges = self._read_gauges()
            names = sorted({k[0] for k in [*self._counters, *gauges, *self._histograms]} | set(self._help))
            for name in names:
                kind, text = self._help.get(name, ("untyped", name))
                lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
                for store in (self._counters, gauges):
                    for (n, labels), value in sorted(store.items()):
                        if n == name:
                            lines.append(f"{name}{_labels(dict(labels))} {value:g}")
                for (n, labels), (counts, total) in sorted(self._histograms.items()):
                    if n != name:
                        continue
                    cumulative = 0
                    for bound, count in zip([*LATENCY_BUCKETS, float("inf")], counts):
                        cumulative += count
                        le = "+Inf" if bound == float("inf") else f"{bound:g}"
                        lines.append(f"{name}_bucket{_labels({**dict(labels), 'le': le})} {cumulative}")
                    lines.append(f"{name}_sum{_labels(dict(labels))} {total:g}")
                    lines.append(f"{name}_count{_labels(dict(labels))} {cumulative}")
        return "\n".join(lines) + "\n"


def service_metrics() -> Metrics:
    metrics = Metrics()
    metrics.describe("tt_tf_requests_total", "counter", "Requests by route, run and status code.")
    metrics.describe("tt_tf_request_seconds", "histogram", "Request latency by route and run.")
    metrics.describe("tt_tf_reloads_total", "counter", "Run reloads by outcome.")
    metrics.describe("tt_tf_store_errors_total", "counter", "Store operations that failed, by operation.")
    metrics.describe("tt_tf_log_queue_depth", "gauge", "Request-log rows waiting to be written.")
    metrics.describe("tt_tf_log_spooled_rows", "gauge", "Request-log rows in the local spool file.")
    metrics.describe("tt_tf_log_dropped_total", "counter", "Request-log rows lost (spool full).")
    metrics.describe("tt_tf_rejected_requests_total", "counter", "Requests refused with a 4xx, by route and code.")
    metrics.describe("tt_tf_cold_start_offers_total", "counter", "Eligible offers skipped for lack of a vector.")
    return metrics
