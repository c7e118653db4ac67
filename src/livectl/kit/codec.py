"""JSON encoding in one place: orjson everywhere, bytes in and out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
from starlette.responses import Response

JSONDecodeError = orjson.JSONDecodeError

# orjson's own functions, not wrappers around them: each ingested frame is loaded and dumped
# once, and a wrapper's Python call costs more than orjson's work on a small event.
dumps: Callable[[Any], bytes] = orjson.dumps
loads: Callable[[bytes | bytearray | memoryview | str], Any] = orjson.loads


def dumps_str(value: Any) -> str:
    return orjson.dumps(value).decode()


def text(value: bytes | str) -> str:
    """redis-py answers bytes or str depending on the client's decode setting."""
    return value.decode() if isinstance(value, bytes) else value


def text_or_none(value: bytes | str | None) -> str | None:
    return None if value is None else text(value)


def int_fields(flat: Sequence[Any]) -> dict[str, int]:
    """A flat ``[field, value, ...]`` reply (HGETALL from Lua) as field -> integer."""
    return {text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}


class JSONBytesResponse(Response):
    """A JSON response rendered by orjson (FastAPI deprecated its own orjson class)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
