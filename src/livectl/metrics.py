"""Prometheus metrics (per process; scrape each gateway and worker)."""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

EVENTS_ACCEPTED = Counter("livectl_events_accepted_total", "Events appended to room streams")
EVENTS_DUPLICATE = Counter("livectl_events_duplicate_total", "Events dropped as duplicates")
EVENTS_REJECTED = Counter("livectl_events_rejected_total", "Events rejected by validation")
REQUESTS_REFUSED = Counter(
    "livectl_requests_refused_total", "Requests and frames refused whole", ["error"]
)
SOCKETS_OPEN = Gauge("livectl_sockets_open", "Open WebSockets", ["kind"])
SOCKETS_OVERFLOWED = Counter(
    "livectl_sockets_overflowed_total", "Console sockets closed with 4008 for reading too slowly"
)
FRAMES_FANNED_OUT = Counter("livectl_frames_fanned_out_total", "Messages queued to sockets")
WORKER_ENTRIES = Counter("livectl_worker_entries_total", "Stream entries handled", ["group"])
WORKER_BATCH_SECONDS = Histogram(
    "livectl_worker_batch_seconds", "Time to handle one batch", ["group"]
)
# A process holding thousands of sockets stops for its full collections (generation 2):
# 0.65-0.86 s over the ~1.07 million objects of a gateway with 10,000 consoles.
COLLECTOR_PAUSE_SECONDS = Histogram(
    "livectl_collector_pause_seconds",
    "Pauses of the cyclic garbage collector",
    ["generation"],
    buckets=(0.001, 0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


class _CollectorTimer:
    """A ``gc.callbacks`` entry: how long each pass took, by generation."""

    def __init__(self) -> None:
        self._pauses = [COLLECTOR_PAUSE_SECONDS.labels(str(generation)) for generation in range(3)]
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self._pauses[info["generation"]].observe(time.perf_counter() - self._began)


_COLLECTOR_TIMER = _CollectorTimer()


def time_collector_pauses() -> None:
    """Observe every pass of the cyclic collector in this process from now on."""
    if _COLLECTOR_TIMER not in gc.callbacks:
        gc.callbacks.append(_COLLECTOR_TIMER)
