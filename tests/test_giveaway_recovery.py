"""A giveaway whose worker is killed with kill -9 while entries pour in and that is closed
while no worker runs: the draw waits until a worker has applied every entry sent before the
close, then the winners verify and are announced once.

Its own Redis and gateway and worker (the session's worker would otherwise share the
giveaways group and carry on for the killed one); PostgreSQL is the shared test database.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from livectl.auth.tokens import Role
from tests.conftest import Stack, chat, create_room, open_console
from tests.test_giveaways import SPEC, audit, drawn, reverify

USERS = 300


async def test_kill_worker_mid_entries(own_stack: Stack) -> None:
    async with httpx.AsyncClient(
        base_url=own_stack.base_url, headers=own_stack.headers(Role.ADMIN), timeout=10
    ) as admin:
        room = await create_room(admin)
        console = await open_console(own_stack, room)
        started = (
            await admin.post(f"/v1/rooms/{room}/giveaways", json=SPEC | {"duration_s": 600})
        ).json()

        async def send_wave(wave: int) -> None:
            # New users each wave, each entering twice under new event ids: one entry each.
            events: list[dict[str, Any]] = [
                chat("想要福袋", user=f"viewer-{n}", event_id=f"w{wave}-{n}-{copy}")
                for n in range(wave * USERS, (wave + 1) * USERS)
                for copy in range(2)
            ]
            for first in range(0, len(events), 100):
                response = await admin.post(
                    f"/v1/rooms/{room}/events", json=events[first : first + 100]
                )
                assert response.status_code == 202

        await send_wave(0)
        own_stack.processes["worker"].kill()  # kill -9, whatever it holds unacknowledged
        own_stack.processes["worker"].wait()
        await send_wave(1)
        closed = (await admin.post(f"/v1/rooms/{room}/giveaways/{started['id']}/close")).json()
        # The second wave is not applied yet: the gateway must not draw without it.
        assert (closed["state"], closed["winner_ids"]) == ("drawing", None)
        await asyncio.sleep(0.5)
        own_stack.spawn("worker", "worker")

        # However slowly the new worker starts on a busy machine, within the draw's patience.
        result = await drawn(admin, room, started["id"], timeout=60)
        published = await audit(admin, room, started["id"])
        assert published["entries"] == sorted(f"viewer-{n}" for n in range(2 * USERS))
        assert result["entrants"] == 2 * USERS
        assert result["winner_ids"] == published["winner_ids"]
        assert reverify(published)
        drawn_messages = []
        while True:
            try:
                message = await console.next_of("giveaway", timeout=3)
            except TimeoutError:
                break
            if message["data"]["state"] == "drawn":
                drawn_messages.append(message["data"]["winner_ids"])
        assert drawn_messages == [published["winner_ids"]]
        await console.socket.close()
        await admin.post(f"/v1/rooms/{room}/end")
