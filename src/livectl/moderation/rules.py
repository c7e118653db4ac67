"""Whether a chat message is hidden, and why: pure decisions on values the relay gathered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

HideReason = Literal["blocked_word", "muted", "slow_mode", "flood", "bot_wave"]

# Written for livectl (original work, Apache-2.0): the abuse, spam and off-platform lures
# every room blocks, on top of its own list. Folded like chat, so evasions still match.
DEFAULT_BLOCKED_WORDS = (
    *("加微信", "加v", "加vx", "vx", "weixin", "私聊我", "加我", "扫码", "二维码"),
    *("刷单", "兼职", "日结", "代购", "博彩", "赌博", "贷款", "套现", "返利群"),
    *("傻逼", "sb", "煞笔", "脑残", "草泥马", "cnm", "nmsl", "去死", "滚蛋", "废物"),
)

# One user sending the same text this many times within FLOOD_WINDOW_MS floods.
FLOOD_REPEATS = 3
FLOOD_WINDOW_MS = 30_000
# This many distinct users sending the same text within WAVE_WINDOW_MS is a bot wave...
WAVE_USERS = 8
WAVE_WINDOW_MS = 10_000
# ... if the text is at least this long and asks nothing: crowds chant short things (666, 上车,
# 好看) and ask the same questions (什么时候发货) on their own.
WAVE_MIN_CHARS = 8


@dataclass(frozen=True, slots=True)
class Sighting:
    """What Redis knew about a message when it was relayed."""

    muted_until: int  # 0 when not muted
    repeats: int  # times this user sent this text within the flood window, this one included
    senders: int  # distinct users who sent this text within the wave window (0: not counted)
    slowed: bool  # slow mode: this user posted another message within the interval


def hide_reason(
    words: str, *, blocked: bool, asking: bool, at_ms: int, seen: Sighting
) -> HideReason | None:
    if blocked:
        return "blocked_word"
    if seen.muted_until > at_ms:
        return "muted"
    if may_be_wave(words, asking=asking) and seen.senders >= WAVE_USERS:
        return "bot_wave"
    if seen.repeats >= FLOOD_REPEATS:
        return "flood"
    if seen.slowed:
        return "slow_mode"
    return None


def may_be_wave(words: str, *, asking: bool) -> bool:
    """Whether senders of this text are worth counting at all."""
    return len(words) >= WAVE_MIN_CHARS and not asking
