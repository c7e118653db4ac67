"""``livectl tail ROOM``: a room's console stream, readable in a terminal."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from urllib.parse import quote

import typer
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from livectl.kit import codec


def _clock(ts: Any) -> str:
    if not isinstance(ts, int):
        return "--:--:--"
    return dt.datetime.fromtimestamp(ts / 1000).strftime("%H:%M:%S")


def _viewer(user: dict[str, Any]) -> str:
    marks = ("新" if user.get("new") else "") + ("粉" if user.get("fan") else "")
    name = user.get("name") or user.get("id", "?")
    return f"{name}[{marks}]" if marks else str(name)


def format_envelope(envelope: dict[str, Any]) -> str:
    """One envelope as one terminal line: time, seq, type and what matters in it."""
    kind = envelope.get("type", "?")
    data = envelope.get("data") or {}
    head = f"{_clock(envelope.get('ts'))} #{envelope.get('seq', '-'):>6} {kind:<9}"
    if kind == "chat":
        hidden = " (hidden)" if data.get("hidden") else ""
        return f"{head} {_viewer(data.get('user', {}))}: {data.get('text', '')}{hidden}"
    if kind == "pin":
        pinned = data.get("product_id")
        return f"{head} {'pinned ' + pinned if pinned else 'unpinned'}"
    if kind == "room":
        return f"{head} {data.get('id')} is {data.get('status')}"
    if kind == "snapshot":
        room = data.get("room", {})
        products = ", ".join(p["id"] for p in data.get("products", []))
        return (
            f"{head} {room.get('title')} ({room.get('status')}); "
            f"pinned {data.get('pinned') or '-'}; products: {products or '-'}"
        )
    if kind == "reset":
        return f"{head} history gap ({data.get('reason')}); a fresh snapshot follows"
    body = codec.dumps_str(data)
    return f"{head} {body[:160]}{'…' if len(body) > 160 else ''}"


async def follow(base_url: str, room: str, token: str, *, raw: bool) -> None:
    socket_url = (
        base_url.replace("http", "ws", 1).rstrip("/")
        + f"/v1/rooms/{quote(room)}/console?batch=1&token={quote(token)}"
    )
    since: int | None = None
    delay = 0.5
    while True:
        url = socket_url if since is None else f"{socket_url}&since={since}"
        try:
            async with connect(url, max_size=None) as socket:
                delay = 0.5
                async for frame in socket:
                    for line in str(frame).splitlines():
                        envelope = codec.loads(line)
                        if envelope.get("type") != "pong" and "seq" in envelope:
                            since = envelope["seq"]
                        typer.echo(line if raw else format_envelope(envelope))
        except InvalidStatus as exc:
            body = exc.response.body.decode(errors="replace") if exc.response.body else ""
            typer.echo(f"refused ({exc.response.status_code}): {body}", err=True)
            if exc.response.status_code in (401, 403, 404, 422):
                raise typer.Exit(1) from None
        except BrokenPipeError:
            raise  # the reader of our output is gone (`| head`): stop, do not reconnect
        except (OSError, ConnectionClosed) as exc:
            typer.echo(f"connection lost ({exc}); reconnecting…", err=True)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10.0)
