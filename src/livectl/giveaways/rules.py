"""Pure decisions about giveaways: who enters, the draw, and its verification. No I/O.

The draw, documented so anyone can re-run it (``verify`` does):

1. ``entries`` are the distinct user ids that entered, sorted by code point (the ids are
   ASCII, so this is byte order); ``entries_hash`` is sha256 of them joined by ``\\n``.
2. The seed is 32 random bytes, made at creation; its sha256 (``commitment``) is published
   then, the seed itself only with the draw, so nobody can pick it after seeing the entries.
3. Winners come from a partial Fisher-Yates shuffle of the sorted entries: for step
   ``i = 0 .. k-1`` (``k = min(winners, len(entries))``), pick ``j = i + r`` with ``r``
   uniform in ``[0, n - i)`` and swap positions ``i`` and ``j``; the first ``k`` are the
   winners, in draw order. ``r`` comes from ``HMAC-SHA256(key=seed, msg=f"{i}:{c}")``: its
   first 8 bytes as a big-endian integer, rejected and redrawn with ``c + 1`` while it falls
   in the last partial multiple of ``n - i`` below 2**64 (so no modulo bias).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from livectl.errors import Conflict, NotFound
from livectl.giveaways.schemas import GiveawayState
from livectl.kit.text import fold


class GiveawayNotFound(NotFound):
    code = "giveaway_not_found"


class GiveawayEnded(Conflict):
    code = "giveaway_ended"


class GiveawayNotDrawn(Conflict):
    code = "not_drawn"


ALGORITHM = "hmac-sha256-fisher-yates-v1"
_SPAN = 2**64


def commitment(seed: bytes) -> str:
    return hashlib.sha256(seed).hexdigest()


def sorted_entries(user_ids: Iterable[str]) -> list[str]:
    """Each identity once, in the order the draw and its hash use."""
    return sorted(set(user_ids))


def entries_hash(entries: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()


def _uniform(seed: bytes, step: int, bound: int) -> int:
    limit = _SPAN - _SPAN % bound
    attempt = 0
    while True:
        digest = hmac.new(seed, f"{step}:{attempt}".encode(), hashlib.sha256).digest()
        value = int.from_bytes(digest[:8], "big")
        if value < limit:
            return value % bound
        attempt += 1


def draw(seed: bytes, entries: Sequence[str], winners: int) -> list[str]:
    """The winners, in draw order, from sorted distinct ``entries`` (see the module doc)."""
    pool = list(entries)
    count = min(winners, len(pool))
    for step in range(count):
        pick = step + _uniform(seed, step, len(pool) - step)
        pool[step], pool[pick] = pool[pick], pool[step]
    return pool[:count]


def verify(
    *,
    seed: str,
    commitment_hex: str,
    entries: Sequence[str],
    entries_hash_hex: str,
    winners: int,
    winner_ids: Sequence[str],
) -> bool:
    """Re-run a published draw: the seed matches its commitment, the entries are sorted,
    distinct and match their hash, and the draw gives exactly the published winners."""
    try:
        seed_bytes = bytes.fromhex(seed)
    except ValueError:
        return False
    return (
        hmac.compare_digest(commitment(seed_bytes), commitment_hex)
        and list(entries) == sorted_entries(entries)
        and entries_hash(entries) == entries_hash_hex
        and draw(seed_bytes, entries, winners) == list(winner_ids)
    )


def enters(terms: Mapping[str, str], event: Mapping[str, Any]) -> bool:
    """Whether the event is an entry by the giveaway's route (audience aside).
    ``terms["keyword"]`` is already folded; the chat text is folded here the same way."""
    entry = terms["entry"]
    kind: str = event["type"]
    if entry == "keyword":
        return kind == "chat" and terms["keyword"] in fold(event["text"])
    if entry == "comment":
        return kind == "chat"
    return kind == entry  # follow, share


def within_entry_window(terms: Mapping[str, str], appended_at: int) -> bool:
    """Entries count from creation until ``ends_at``, by server time (when the event was
    appended), never by the client's ``ts``, which a bridge could set to anything."""
    return int(terms["created_at"]) <= appended_at < int(terms["ends_at"])


def state_of(drawn_at: int | None, ends_at: int, now: int) -> GiveawayState:
    """Open for entries until ``ends_at``; drawing until the draw is recorded; then drawn."""
    if drawn_at is not None:
        return "drawn"
    return "drawing" if now >= ends_at else "open"
