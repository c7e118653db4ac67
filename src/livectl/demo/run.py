"""The demo room for ``livectl up --demo``: set it up over the public API, then simulate it."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx

from livectl.auth.tokens import Role, issue_token
from livectl.demo.catalog import DEMO_COUPON_TEMPLATES, DEMO_ROOM
from livectl.demo.grabber import grab_coupons
from livectl.demo.simulator import run_simulator

log = logging.getLogger("livectl.demo")

_TOKEN_TTL_S = 7 * 86400


async def prepare_room(client: httpx.AsyncClient) -> None:
    """Create, stock and start the demo room; every step tolerates a room left by a
    previous run (the data directory outlives restarts)."""
    room = DEMO_ROOM.id
    created = await client.post("/v1/rooms", json=DEMO_ROOM.to_api())
    if created.status_code not in (201, 409):
        created.raise_for_status()
    if created.status_code == 201:
        (
            await client.put(f"/v1/rooms/{room}/products", json=DEMO_ROOM.products_to_api())
        ).raise_for_status()
        for terms in DEMO_COUPON_TEMPLATES:
            (await client.post(f"/v1/rooms/{room}/coupon-templates", json=terms)).raise_for_status()
    started = await client.post(f"/v1/rooms/{room}/start")
    if started.status_code == 409:
        log.warning(
            "the demo room has ended: its traffic is still stored but it is no longer live; "
            "remove the data directory to start a fresh demo"
        )
    else:
        started.raise_for_status()
    first = DEMO_ROOM.products[0].id
    (await client.post(f"/v1/rooms/{room}/products/{first}/pin")).raise_for_status()


async def wait_ready(client: httpx.AsyncClient, stop: asyncio.Event) -> None:
    """The demo may start before the gateway listens (``livectl up`` starts both)."""
    while not stop.is_set():
        try:
            if (await client.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def run_demo(base_url: str, secret: str, *, rate: float, stop: asyncio.Event) -> None:
    admin = issue_token(
        secret, sub="livectl-demo", role=Role.CONTROLLER, rooms=[DEMO_ROOM.id], ttl_s=_TOKEN_TTL_S
    )
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {admin}"}, timeout=10
    ) as client:
        await wait_ready(client, stop)
        if stop.is_set():
            return
        await prepare_room(client)
    ingest = issue_token(
        secret, sub="livectl-demo", role=Role.INGEST, rooms=[DEMO_ROOM.id], ttl_s=_TOKEN_TTL_S
    )
    player = issue_token(
        secret, sub="livectl-demo", role=Role.PLAYER, rooms=[DEMO_ROOM.id], ttl_s=_TOKEN_TTL_S
    )
    log.info("simulating the demo room at %.0f events/s", rate)
    await asyncio.gather(
        run_simulator(base_url, DEMO_ROOM.id, ingest, rate=rate, stop=stop),
        grab_coupons(base_url, DEMO_ROOM.id, player, stop=stop),
    )
