"""The WebSocket server's floor: uvicorn as the gateway runs it, serving an app that answers
every frame with a fixed ack and does nothing else. Its CPU per frame, under the same load as
the gateway's one-event frames, is what uvicorn, the kernel and the load cost before livectl
does any work; the gateway's CPU above it is livectl's."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

ACK = '{"type":"ack","accepted":1,"duplicates":0,"rejected":[]}'


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":  # readiness, as the gateway's /readyz
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
    elif scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while (await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": ACK})
