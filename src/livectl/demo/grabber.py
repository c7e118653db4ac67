"""Demo viewers grab the coupons an assistant drops, so the consoles can watch a drop drain.

It follows the room's live channel (what a viewer app sees) for coupon drops and, while one is
live, claims it for a few viewers a second through the public claim API.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from livectl.demo.simulator import RECONNECT_DELAY_S, room_socket_url
from livectl.kit import codec

log = logging.getLogger("livectl.demo")

CLAIMS_PER_S = 4.0


async def grab_coupons(base_url: str, room: str, token: str, *, stop: asyncio.Event) -> None:
    """Claim the room's live drops for made-up viewers until `stop` is set."""
    live: set[str] = set()
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as client:
        tasks = [
            asyncio.create_task(_follow(room_socket_url(base_url, room, "live", token), live)),
            asyncio.create_task(_claim(client, room, live)),
        ]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _follow(url: str, live: set[str]) -> None:
    delay = RECONNECT_DELAY_S[0]
    while True:
        try:
            async with connect(url) as socket:
                delay = RECONNECT_DELAY_S[0]
                await _track(socket, live)
        except (OSError, WebSocketException) as exc:
            log.warning("demo coupon grabber disconnected (%s); retrying in %.1f s", exc, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, RECONNECT_DELAY_S[1])


async def _track(socket: ClientConnection, live: set[str]) -> None:
    async for frame in socket:
        for line in str(frame).splitlines():
            envelope: dict[str, Any] = codec.loads(line)
            drops = []
            if envelope["type"] == "snapshot":
                live.clear()
                drops = envelope["data"]["coupons"]
            elif envelope["type"] == "coupon":
                drops = [envelope["data"]]
            for drop in drops:
                if drop["state"] == "live":
                    live.add(drop["id"])
                else:
                    live.discard(drop["id"])


async def _claim(client: httpx.AsyncClient, room: str, live: set[str]) -> None:
    for n in itertools.count():
        await asyncio.sleep(1 / CLAIMS_PER_S)
        for drop in list(live):
            # Refusals (sold out, not eligible, ended) are what a real audience meets too.
            with contextlib.suppress(httpx.HTTPError):
                await client.post(
                    f"/v1/rooms/{room}/coupons/{drop}/claims", json={"user_id": f"grabber{n}"}
                )
