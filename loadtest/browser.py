"""Headless chromium for the browser tests and the console smoothness bench.

Playwright drives Debian's own chromium (``apt-get install chromium``): its bundled browsers
are never downloaded. The flags keep a headless run quiet and off the network.
"""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, Playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # A page in a background tab must still render at full rate while it is measured.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
]


async def launch_chromium(playwright: Playwright) -> Browser:
    return await playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )
