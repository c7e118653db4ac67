"""One typed settings object, read from ``LIVECTL_*`` environment variables."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIVECTL_", extra="ignore")

    # Where things are. Without URLs, `livectl up` and the tests start embedded servers.
    redis_url: str | None = None
    database_url: str | None = None
    data_dir: Path = Field(default_factory=lambda: Path.home() / ".livectl")
    secret: str | None = Field(default=None, min_length=32)

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None
    # Redis connections per process. A worker holds one blocking read per room per consumer
    # group, so the bound is far above redis-py's default of 100. Past it a caller waits up to
    # the timeout for a free one instead of failing: a burst of consoles must queue, not 500.
    redis_max_connections: int = 2000
    redis_pool_timeout_s: float = 10.0
    # LIVECTL_REDIS_URL names one node of a Redis Cluster (rooms spread across its shards by
    # their hash tag) rather than a single server.
    redis_cluster: bool = False

    # Ingest limits (API.md).
    max_body_bytes: int = MiB
    max_frame_bytes: int = MiB
    max_batch_events: int = 1000
    dedupe_window_ms: int = 24 * 3600 * 1000
    # Room event streams are trimmed approximately to this many entries (one entry is one
    # accepted batch or flush, not one event), so memory stays bounded on a long live.
    events_stream_maxlen: int = 200_000

    # Console history: a reconnecting console can resume from any message younger than
    # history_ms or among the last history_min messages; history_max bounds memory.
    history_min: int = 10_000
    history_ms: int = 10 * 60 * 1000
    history_max: int = 1_000_000

    # Per-socket bound: a console that falls this many frames behind is closed with 4008.
    console_queue_frames: int = 1000
    # Kernel send buffer of a console socket once it follows live; unset, the kernel sizes it
    # (Linux grows it up to 4 MB for a peer that stopped reading, all held before the bound
    # above is even reached). A cap bounds that memory but makes the bound bite sooner for a
    # console that falls behind in a burst.
    console_send_buffer_bytes: int | None = None
    # Frames beyond this are refused by the WebSocket layer itself (close 1009).
    ws_protocol_max_bytes: int = 4 * MiB

    # Limits against abuse (docs/api.md, "Limits"); 0 turns one off. The event defaults leave
    # room for the loadtest suite, which pushes 100k+ events/s through a few sockets of one
    # token, and the socket default for its 10,000-socket fan-out on one token.
    ingest_events_per_s_per_socket: int = 100_000
    ingest_events_per_s_per_token: int = 250_000
    sockets_per_token: int = 20_000
    claims_per_user_per_s: int = 5
    console_messages_per_s: int = 20
    # Browser origins (scheme://host[:port]) that may open console sockets besides the
    # gateway's own; "*" allows any. Set as JSON: LIVECTL_ALLOWED_ORIGINS='["https://a.example"]'.
    allowed_origins: list[str] = []

    # Live numbers: a viewer with no sign of life for this long is no longer counted online.
    online_timeout_ms: int = 5 * 60_000

    # A room still takes events this long after its live ended (late orders, a bridge's
    # backlog); past it, ingest answers 409 room_ended and workers stop following the room
    # once they have handled everything in it.
    ended_room_grace_ms: int = 10 * 60_000

    # Workers.
    worker_batch: int = 500
    worker_block_ms: int = 1000
    # Groups that are not latency-bound (all but the console relay) read at most this often
    # while a room's stream has no backlog, so a steady trickle of events reaches them in
    # batches: each read, handler call and ack then carries many entries instead of one.
    worker_linger_ms: int = 100
    reclaim_idle_ms: int = 30_000
    reclaim_every_ms: int = 5_000
    max_deliveries: int = 5
    room_scan_ms: int = 1000

    @cached_property
    def jwt_secret(self) -> str:
        """The signing secret: configured, or generated once and kept in the data directory."""
        if self.secret:
            return self.secret
        path = self.data_dir / "secret"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Exclusive create: gateway processes starting together must agree on one secret.
            with path.open("x") as created:
                path.chmod(0o600)
                created.write(secrets.token_urlsafe(48))
        except FileExistsError:
            pass
        return path.read_text().strip()

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"
