"""`livectl tail` prints one readable line per envelope."""

from __future__ import annotations

from livectl.console.tail import format_envelope


def test_chat_line_names_the_viewer_and_the_text() -> None:
    line = format_envelope(
        {
            "seq": 42,
            "type": "chat",
            "ts": 0,
            "data": {
                "user": {"id": "u1", "name": "小王", "new": True, "fan": True},
                "text": "上车",
                "hidden": True,
            },
        }
    )
    assert "#    42" in line
    assert "小王[新粉]: 上车 (hidden)" in line


def test_pin_room_snapshot_and_reset_lines() -> None:
    assert format_envelope({"seq": 1, "type": "pin", "data": {"product_id": "sku-1"}}).endswith(
        "pinned sku-1"
    )
    assert format_envelope({"seq": 2, "type": "pin", "data": {"product_id": None}}).endswith(
        "unpinned"
    )
    assert format_envelope(
        {"seq": 3, "type": "room", "data": {"id": "r", "status": "live"}}
    ).endswith("r is live")
    snapshot = format_envelope(
        {
            "seq": 4,
            "type": "snapshot",
            "data": {
                "room": {"title": "秋季上新", "status": "live"},
                "pinned": None,
                "products": [{"id": "a"}],
            },
        }
    )
    assert "秋季上新 (live); pinned -; products: a" in snapshot
    assert "history gap (history_gap)" in format_envelope(
        {"type": "reset", "data": {"reason": "history_gap"}}
    )


def test_other_types_show_their_data_cut_short() -> None:
    line = format_envelope({"seq": 5, "type": "stats", "data": {"x": "y" * 500}})
    assert line.endswith("…")
    assert len(line) < 220
