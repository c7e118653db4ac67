"""ClaimBatcher: which claims share a Lua call, and that every caller gets its own answer
(pure unit: the script is a stand-in that records its batches)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

from livectl.coupons.batcher import ClaimAnswer, ClaimBatcher
from livectl.coupons.claims import ClaimRequest, CouponScripts
from livectl.coupons.schemas import ClaimOut
from livectl.errors import ServiceUnavailable


class _Script:
    """Answers each claim with a code naming its user; a call can be held out until released."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []  # the users of each call, in order
        self.hold = asyncio.Event()
        self.hold.set()
        self.fail = False

    async def claim(
        self,
        room: str,
        requests: Sequence[ClaimRequest],
        now: int,
        *,
        attempts_per_user_per_s: int = 0,
    ) -> list[bytes]:
        self.calls.append([request.user_id for request in requests])
        await self.hold.wait()
        if self.fail:
            raise ConnectionError("redis went away")
        return [f"ok\tc-{r.user_id}\tcode-{r.user_id}\t1".encode() for r in requests]


def _batcher(script: _Script) -> ClaimBatcher:
    return ClaimBatcher(cast(CouponScripts, script), attempts_per_user_per_s=0)


def _frame(*users: str) -> list[ClaimRequest]:
    return [ClaimRequest("d1", user, None) for user in users]


def _codes(answers: list[ClaimAnswer]) -> list[str]:
    return [answer.code for answer in answers if isinstance(answer, ClaimOut)]


async def _a_call_out(user: str) -> tuple[_Script, ClaimBatcher, asyncio.Task[list[ClaimAnswer]]]:
    """A batcher whose script holds its first call, for room "r" and ``user``, once it is out."""
    script = _Script()
    batcher = _batcher(script)
    script.hold.clear()
    first = asyncio.create_task(batcher.claim("r", _frame(user)))
    await asyncio.sleep(0.01)
    assert script.calls == [[user]]
    return script, batcher, first


async def test_a_lone_claim_goes_out_at_once() -> None:
    script = _Script()
    answers = await asyncio.wait_for(_batcher(script).claim("r", _frame("u1")), 1)
    assert _codes(answers) == ["code-u1"]
    assert script.calls == [["u1"]]


async def test_claims_arriving_during_a_call_share_the_next_one() -> None:
    script, batcher, first = await _a_call_out("u1")
    later = [asyncio.create_task(batcher.claim("r", _frame(f"u{i}"))) for i in range(2, 6)]
    frame = asyncio.create_task(batcher.claim("r", _frame("u6", "u7")))
    await asyncio.sleep(0.01)
    assert script.calls == [["u1"]]  # nothing more goes out while the call is out
    script.hold.set()
    assert _codes(await first) == ["code-u1"]
    assert [_codes(await task) for task in later] == [[f"code-u{i}"] for i in range(2, 6)]
    assert _codes(await frame) == ["code-u6", "code-u7"]
    assert script.calls == [["u1"], ["u2", "u3", "u4", "u5", "u6", "u7"]]


async def test_rooms_do_not_wait_for_each_other() -> None:
    script, batcher, held = await _a_call_out("u1")
    other = asyncio.create_task(batcher.claim("s", _frame("u2")))
    await asyncio.sleep(0.01)
    assert script.calls == [["u1"], ["u2"]]
    script.hold.set()
    assert _codes(await held) + _codes(await other) == ["code-u1", "code-u2"]


async def test_a_big_backlog_is_cut_between_frames_never_inside_one() -> None:
    script, batcher, first = await _a_call_out("u0")
    frames = [[f"f{f}-{i}" for i in range(900)] for f in range(3)]
    waiting = [asyncio.create_task(batcher.claim("r", _frame(*users))) for users in frames]
    await asyncio.sleep(0.01)
    script.hold.set()
    await first
    assert [_codes(await task) for task in waiting] == [
        [f"code-{user}" for user in users] for users in frames
    ]
    # 2,700 waiting: two calls of whole frames, at most 2,000 claims each.
    assert script.calls[1:] == [frames[0] + frames[1], frames[2]]


async def test_a_failed_call_answers_each_of_its_callers_and_the_next_claim_goes_out() -> None:
    script = _Script()
    batcher = _batcher(script)
    script.fail = True
    failed = await asyncio.gather(
        batcher.claim("r", _frame("u1")), batcher.claim("r", _frame("u2"))
    )
    assert all(isinstance(answer, ServiceUnavailable) for answers in failed for answer in answers)
    script.fail = False
    assert _codes(await batcher.claim("r", _frame("u3"))) == ["code-u3"]
    await batcher.close()
