"""Pure decisions for the limits against abuse: who may open a console, how much a window holds."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

ANY_ORIGIN = "*"


def normalise_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case, as browsers send it (no path, no trailing slash)."""
    parts = urlsplit(origin.strip().lower())
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else origin.lower()


def origin_allowed(origin: str | None, host: str | None, allowed: Collection[str]) -> bool:
    """Whether a console socket opened from ``origin`` may proceed.

    A socket without an Origin header is not a browser (a bridge, a test, a CLI), and a
    browser page of the gateway's own origin is its own console: both pass. Any other page
    needs its origin listed, because a page on any site can open a socket to any host."""
    if origin is None:
        return True
    if host is not None and urlsplit(origin.lower()).netloc == host.lower():
        return True
    listed = {normalise_origin(entry) for entry in allowed}
    return ANY_ORIGIN in listed or normalise_origin(origin) in listed


@dataclass(slots=True)
class FixedWindow:
    """A count per whole second, for limits one connection keeps by itself (no I/O).

    ``limit`` 0 means no limit."""

    limit: int
    second: int = 0
    used: int = 0

    def admit(self, amount: int, now_s: float) -> bool:
        if self.limit <= 0:
            return True
        second = int(now_s)
        if second != self.second:
            self.second, self.used = second, 0
        if self.used + amount > self.limit:
            return False
        self.used += amount
        return True


def token_id(token: str) -> str:
    """A token's name in shared counters: its digest, so keys and logs never hold the token."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]
