from __future__ import annotations

from fastapi import Request

from livectl.errors import BodyTooLarge, InvalidBody


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes: a declared
    Content-Length is checked first, and a chunked body is counted as it streams in."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidBody("Content-Length is not a number")
        if int(declared) > limit:
            raise BodyTooLarge(f"the body has {declared} bytes; at most {limit} are accepted")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body passed {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
