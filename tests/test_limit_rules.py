"""The pure decisions behind the limits: origins a console may come from, per-second windows."""

from __future__ import annotations

import pytest

from livectl.limits.rules import FixedWindow, origin_allowed, token_id


@pytest.mark.parametrize(
    ("origin", "host", "allowed", "expected"),
    [
        (None, "127.0.0.1:8000", [], True),  # not a browser
        ("http://127.0.0.1:8000", "127.0.0.1:8000", [], True),  # the gateway's own page
        ("HTTP://Console.Example:8443", "console.example:8443", [], True),
        ("http://127.0.0.1:8001", "127.0.0.1:8000", [], False),  # another port is another site
        ("https://evil.example", "127.0.0.1:8000", [], False),
        ("null", "127.0.0.1:8000", [], False),  # sandboxed frames and file:// pages
        ("https://ops.example", None, ["https://ops.example/"], True),
        ("https://ops.example", "gw", ["https://OPS.example"], True),
        ("https://ops.example.evil", "gw", ["https://ops.example"], False),
        ("https://anything.example", "gw", ["*"], True),
    ],
)
def test_origin_allowed(
    origin: str | None, host: str | None, allowed: list[str], expected: bool
) -> None:
    assert origin_allowed(origin, host, allowed) is expected


def test_a_window_holds_its_limit_per_whole_second() -> None:
    window = FixedWindow(10)
    assert window.admit(6, 100.1)
    assert not window.admit(5, 100.5)  # 11 > 10: refused, and not counted
    assert window.admit(4, 100.9)
    assert not window.admit(1, 100.99)
    assert window.admit(10, 101.0)  # a new second starts from nothing


def test_a_window_of_zero_is_no_limit() -> None:
    assert FixedWindow(0).admit(10**9, 1.0)


def test_a_token_is_named_by_a_digest_never_by_itself() -> None:
    token = "header.payload.signature"
    assert token_id(token) == token_id(token)
    assert token not in token_id(token)
    assert token_id(token) != token_id(token + "x")
