"""The WebSocket server's floor: uvicorn with the gateway's WebSocket protocol, as the gateway
runs it, serving an app that takes each frame as the gateway's request-and-answer sockets do
(``kit.frames``: as the protocol reads it) and answers it with a fixed ack, doing nothing
else. Its CPU per frame, under the same load as the gateway's one-event frames, is what
uvicorn, the kernel and the load cost before livectl does any work; the gateway's CPU above it
is livectl's."""

from __future__ import annotations

import argparse

from starlette.types import Receive, Scope, Send

from livectl.kit.frames import DIRECT_FRAMES, DirectFrames
from livectl.serving import GatewayWebSocketProtocol, serve

ACK = '{"type":"ack","accepted":1,"duplicates":0,"rejected":[]}'


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":  # readiness, as the gateway's /readyz
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
    elif scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        direct: DirectFrames = scope["extensions"][DIRECT_FRAMES]["socket"]

        def answer_now(frame: bytes) -> bool:
            direct.send_text(ACK)
            return True

        direct.take_frames(answer_now)
        while await direct.receive_frame() is not None:  # frames read while not writable
            direct.send_text(ACK)


def main() -> int:
    """``python -m loadtest.floor_app --processes N --host H --port P``: served as
    ``livectl api`` serves the gateway (a socket per process, the gateway's protocol)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    options = {"app": "loadtest.floor_app:app", "host": args.host, "port": args.port}
    options |= {"ws": GatewayWebSocketProtocol, "access_log": False, "log_level": args.log_level}
    return serve(options, args.processes)


if __name__ == "__main__":
    raise SystemExit(main())
