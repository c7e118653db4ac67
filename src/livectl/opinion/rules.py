"""The alert lifecycle: open -> acked -> resolved (an open alert may be resolved at once)."""

from __future__ import annotations

from typing import Literal

AlertStatus = Literal["open", "acked", "resolved"]
AlertAction = Literal["ack", "resolve"]

_NEXT: dict[tuple[str, AlertAction], AlertStatus] = {
    ("open", "ack"): "acked",
    ("open", "resolve"): "resolved",
    ("acked", "resolve"): "resolved",
}


def next_alert_status(current: str, action: AlertAction) -> AlertStatus | None:
    """The status after ``action``; None when nothing changes (ack twice, resolve twice).

    Raises ValueError for a step backwards: acknowledging a resolved alert."""
    if (current, action) in _NEXT:
        return _NEXT[current, action]
    if current == "resolved" and action == "ack":
        raise ValueError("the alert is resolved already")
    return None
