"""Drives the traffic model in real time over the WebSocket ingest (API.md, "Events in")."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import uuid
from collections.abc import Sequence
from typing import NoReturn
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from livectl.demo.catalog import DEMO_ROOM
from livectl.demo.traffic import Event, TrafficModel
from livectl.kit.clock import now_ms

logger = logging.getLogger("livectl.demo")

TICK_S = 0.1
ACK_TIMEOUT_S = 10.0
OPEN_TIMEOUT_S = 5.0
# Short, so that setting `stop` is not held up by a server that no longer answers.
CLOSE_TIMEOUT_S = 1.0
MAX_EVENTS_PER_FRAME = 1000
RECONNECT_DELAY_S = (0.5, 10.0)
REJECTIONS_LOGGED_PER_FRAME = 5

_WS_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


def room_socket_url(base_url: str, room: str, channel: str, token: str) -> str:
    """`WS {base_url with ws scheme}/v1/rooms/{room}/{channel}?token=...`."""
    parts = urlsplit(base_url)
    scheme = _WS_SCHEMES.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError(f"not an http(s) or ws(s) base URL: {base_url!r}")
    path = f"{parts.path.rstrip('/')}/v1/rooms/{quote(room, safe='')}/{channel}"
    return urlunsplit((scheme, parts.netloc, path, urlencode({"token": token}), ""))


async def run_simulator(
    base_url: str,
    room: str,
    token: str,
    *,
    rate: float = 30.0,
    seed: int | None = None,
    stop: asyncio.Event,
) -> None:
    """Send demo traffic (`rate` events/s) to `room` until `stop` is set.

    The room should carry the demo catalog (`DEMO_ROOM.products_to_api()`), since orders and
    clicks name its products. A fresh run id per call keeps the event ids of a seeded run from
    being taken for duplicates of an earlier run.
    """
    if stop.is_set():
        return
    model = TrafficModel(DEMO_ROOM.products, rate=rate, seed=seed, run_id=uuid.uuid4().hex[:12])
    sender = _Sender(room_socket_url(base_url, room, "ingest", token), room, model)
    sending = asyncio.create_task(sender.run(), name="livectl-demo-traffic")
    stopping = asyncio.create_task(stop.wait(), name="livectl-demo-stop")
    try:
        done, _ = await asyncio.wait({sending, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sending.cancel()
        stopping.cancel()
        await asyncio.gather(sending, stopping, return_exceptions=True)
    if sending in done:
        sending.result()  # `run` only ends by raising: let the caller see why


class _Sender:
    def __init__(self, url: str, room: str, model: TrafficModel) -> None:
        self._url = url
        self._room = room
        self._model = model
        # Frames produced but not yet acknowledged; resent after a reconnect, and the event
        # ids make the server count any it already had as duplicates.
        self._unacked: list[list[Event]] = []
        self._acked_on_this_connection = False

    async def run(self) -> NoReturn:
        delay = RECONNECT_DELAY_S[0]
        while True:
            self._acked_on_this_connection = False
            try:
                async with connect(
                    self._url,
                    open_timeout=OPEN_TIMEOUT_S,
                    close_timeout=CLOSE_TIMEOUT_S,
                    proxy=None if _is_loopback(self._url) else True,
                ) as websocket:
                    logger.info("demo traffic connected to room %r", self._room)
                    try:
                        await self._pump(websocket)
                    except asyncio.CancelledError:
                        # Stopping is a normal close (1000), not the 1011 an exception sends.
                        await websocket.close()
                        raise
            except InvalidStatus as exc:
                failure = f"demo ingest refused with HTTP {exc.response.status_code}"
            except (OSError, TimeoutError, WebSocketException, orjson.JSONDecodeError) as exc:
                failure = f"demo ingest unavailable ({exc!r})"
            if self._acked_on_this_connection:
                delay = RECONNECT_DELAY_S[0]
            logger.warning("%s; retrying in %.1f s", failure, delay)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter only
            delay = min(RECONNECT_DELAY_S[1], delay * 2)

    async def _pump(self, websocket: ClientConnection) -> NoReturn:
        loop = asyncio.get_running_loop()
        # Time spent disconnected is skipped, not replayed as one burst.
        window_start = now_ms()
        next_tick = loop.time()
        while True:
            if not self._unacked:
                now = now_ms()
                if now > window_start:
                    batch = self._model.next_batch(window_start, now - window_start)
                    window_start = now
                    self._unacked = _frames(batch)
            while self._unacked:
                await self._send(websocket, self._unacked[0])
                self._unacked.pop(0)
            next_tick += TICK_S
            delay = next_tick - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                next_tick = loop.time()  # behind schedule: the next window is just longer

    async def _send(self, websocket: ClientConnection, frame: list[Event]) -> None:
        await websocket.send(orjson.dumps(frame), text=True)
        async with asyncio.timeout(ACK_TIMEOUT_S):
            while True:
                reply = orjson.loads(await websocket.recv())
                if isinstance(reply, dict) and reply.get("type") == "ack":
                    break
                logger.warning("demo ingest sent something other than an ack: %.200r", reply)
        self._acked_on_this_connection = True
        rejected = reply.get("rejected") or []
        if rejected:
            logger.warning(
                "server rejected %d of %d demo events: %s",
                len(rejected),
                len(frame),
                "; ".join(
                    _describe_rejection(item, frame)
                    for item in rejected[:REJECTIONS_LOGGED_PER_FRAME]
                ),
            )


def _frames(batch: list[Event]) -> list[list[Event]]:
    return [
        batch[start : start + MAX_EVENTS_PER_FRAME]
        for start in range(0, len(batch), MAX_EVENTS_PER_FRAME)
    ]


def _describe_rejection(item: object, frame: Sequence[Event]) -> str:
    if not isinstance(item, dict):
        return repr(item)
    index = item.get("index")
    error = item.get("error")
    if isinstance(index, int) and 0 <= index < len(frame):
        event = frame[index]
        return f"{error} ({event.get('type')} {event.get('id')})"
    return f"{error} (index {index!r})"


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
