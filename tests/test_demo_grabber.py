"""The demo's viewers claim the coupons an assistant drops, so a drop drains in the consoles."""

from __future__ import annotations

import asyncio

import httpx

from livectl.auth.tokens import Role
from livectl.demo.grabber import CLAIMS_PER_S, grab_coupons
from tests.conftest import Stack, wait_for

DROP = {
    "title": "满99减10",
    "kind": "amount_off",
    "value": 1000,
    "min_spend": 9900,
    "quantity": 3,
    "duration_s": 60,
}


async def test_live_drops_are_claimed_until_sold_out(
    stack: Stack, room: str, admin: httpx.AsyncClient
) -> None:
    stop = asyncio.Event()
    grabbing = asyncio.create_task(
        grab_coupons(stack.base_url, room, stack.token(Role.PLAYER, [room]), stop=stop)
    )
    try:
        drop = (await admin.post(f"/v1/rooms/{room}/coupons", json=DROP)).json()

        async def sold_out() -> bool:
            state = (await admin.get(f"/v1/rooms/{room}/coupons/{drop['id']}")).json()
            return bool(state["end_reason"] == "sold_out")

        await wait_for(sold_out, timeout=3 / CLAIMS_PER_S + 5)
        claimed = (await admin.get(f"/v1/rooms/{room}/coupons/{drop['id']}")).json()
        assert (claimed["claimed"], claimed["remaining"]) == (3, 0)
    finally:
        stop.set()
        await asyncio.wait_for(grabbing, 5)
