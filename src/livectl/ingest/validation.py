"""Turning a request body or frame into accepted events and per-event rejections."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from livectl.errors import InvalidBody, InvalidJson, TooManyEvents
from livectl.ingest.schemas import Event, IngestRejection, validate_events
from livectl.kit import codec

# pydantic error types, as the short words integrators see in `rejected[].error`.
_ERROR_WORDS = {
    "missing": "missing",
    "string_too_long": "too_long",
    "string_too_short": "too_short",
    "string_pattern_mismatch": "invalid",
    "string_type": "not_string",
    "int_type": "not_integer",
    "bool_type": "not_boolean",
    "greater_than_equal": "out_of_range",
    "less_than_equal": "out_of_range",
    "literal_error": "invalid",
    "model_type": "not_object",
    "model_attributes_type": "not_object",
    "dict_type": "not_object",
}


@dataclass(slots=True)  # (not frozen: a frozen dataclass's __init__ costs a setattr call a field)
class ParsedBatch:
    events: Sequence[Event]  # the accepted events, as they are stored
    rejected: list[IngestRejection]
    size: int  # the body's length, in bytes or characters: what the events take, roughly


def parse_batch(raw: bytes | str, *, max_events: int) -> ParsedBatch:
    """Parse one Event or an array of Events. A bad event rejects itself, not the batch."""
    try:
        value = codec.loads(raw)
    except codec.JSONDecodeError as exc:
        raise InvalidJson(f"the body is not valid JSON: {exc}") from None
    items = _as_items(value, max_events)
    try:
        events = validate_events(items)
        rejected: list[IngestRejection] = []
    except ValidationError as exc:
        first_errors: dict[int, ErrorDetails] = {}
        for error in exc.errors(include_url=False, include_context=False, include_input=False):
            index = error["loc"][0]
            assert isinstance(index, int)
            first_errors.setdefault(index, error)
        rejected = [rejection(index, error) for index, error in sorted(first_errors.items())]
        events = validate_events(
            [item for index, item in enumerate(items) if index not in first_errors]
        )
    return ParsedBatch(events=events, rejected=rejected, size=len(raw))


def _as_items(value: Any, max_events: int) -> list[Any]:
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise InvalidBody("expected an Event object or an array of Events")
    if not value:
        raise InvalidBody("the array of Events is empty")
    if len(value) > max_events:
        raise TooManyEvents(f"{len(value)} events; at most {max_events} per request or frame")
    return value


def rejection(index: int, error: ErrorDetails) -> IngestRejection:
    kind = error["type"]
    # loc is (index, event type tag, field, subfield...); union tag errors stop at the index.
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        code = "type_missing" if kind == "union_tag_not_found" else "unknown_type"
    else:
        field = "_".join(str(part) for part in error["loc"][2:]) or "event"
        code = f"{field}_{_ERROR_WORDS.get(kind, 'invalid')}"
    return IngestRejection(index=index, error=code, detail=error["msg"])
