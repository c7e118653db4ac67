"""Prometheus metrics (per process; scrape each gateway and worker)."""

from __future__ import annotations

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
