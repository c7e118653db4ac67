"""Serve the console pages: one HTML shell at ``/`` and its ES modules under ``/ui/``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"

# The pages hold a bearer token in sessionStorage: only our own scripts may run, nothing may be
# framed, and no address leaks to another origin in a Referer.
SHELL_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def mount_pages(app: FastAPI) -> None:
    async def shell() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=SHELL_HEADERS)

    app.add_api_route("/", shell, methods=["GET"], include_in_schema=False)
    app.mount("/ui", StaticFiles(directory=STATIC_DIR), name="ui")
