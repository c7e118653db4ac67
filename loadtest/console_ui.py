"""``python -m loadtest console-ui``: does the assistant console stay smooth under busy chat?

Starts Redis and PostgreSQL (embedded unless given), the gateway and the workers, makes a live
room, and opens the assistant console (中控台) in headless chromium at 1280x800. Then it feeds
``--rate`` chat messages a second (a frame of them every 100 ms, as a platform bridge sends)
for ``--minutes`` and measures inside the page:

- frame timing from requestAnimationFrame deltas, per interval and overall: p50, p99, max and
  frames over 50 ms (a hitch the eye sees);
- the JS heap after a forced garbage collection, and the DOM node count, at the start and the
  end (flat means no leak), and the page's main-thread time (script, layout, style) as a
  share of the wall time, which reads apart from the shared machine's contention;
- whether the newest message is on screen once the feed stops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import CDPSession, Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

from livectl.auth.tokens import Role
from loadtest import report
from loadtest.browser import launch_chromium
from loadtest.stack import (
    Api,
    Child,
    backing_services,
    free_port,
    gateway,
    livectl_env,
    log_progress,
)

log = logging.getLogger("loadtest")

RESULTS = Path(__file__).parent / "results" / "console_ui.json"
FEED_EVERY_S = 0.1
SAMPLE_EVERY_S = 30.0
BASELINE_S = 10.0
_MAIN_THREAD = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")
HITCH_MS = 50.0
_TEXTS = ("主播好美", "1号链接多少钱", "已拍", "这个颜色显白吗", "假货吧", "还有货吗", "爱了爱了")

# Collects requestAnimationFrame deltas in the page; Python takes them out every interval so
# the sampler itself never grows.
_FRAME_SAMPLER = """() => {
    window.__frames = [];
    let last = performance.now();
    const tick = (now) => {
        window.__frames.push(now - last);
        last = now;
        requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
}"""
_TAKE_FRAMES = "() => window.__frames.splice(0)"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtest console-ui", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=200, help="chat messages per second")
    parser.add_argument("--redis-url", help="use this Redis (default: an embedded one)")
    parser.add_argument("--database-url", help="use this PostgreSQL server, in a scratch database")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def frame_figures(deltas: list[float]) -> dict[str, Any]:
    if not deltas:
        return {"frames": 0}
    ordered = sorted(deltas)
    return {
        "frames": len(ordered),
        "fps": round(len(ordered) / (sum(ordered) / 1000), 1),
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
        "max_ms": round(ordered[-1], 1),
        "over_50ms": sum(1 for d in ordered if d > HITCH_MS),
    }


async def page_metrics(cdp: CDPSession) -> dict[str, float]:
    await cdp.send("HeapProfiler.collectGarbage")
    metrics = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}
    return {
        "js_heap_used_mb": round(metrics["JSHeapUsedSize"] / 2**20, 2),
        "dom_nodes": metrics["Nodes"],
        "event_listeners": metrics["JSEventListeners"],
        # Seconds of main-thread work so far, so the page's own cost reads apart from the
        # machine's contention: the difference between start and end over the wall time.
        **{f"{name}_s": round(metrics[name], 3) for name in _MAIN_THREAD},
        "at_s": round(time.monotonic(), 3),
    }


def main_thread_shares(start: dict[str, float], end: dict[str, float]) -> dict[str, float]:
    wall = end["at_s"] - start["at_s"]
    return {
        f"{name}_share": round((end[f"{name}_s"] - start[f"{name}_s"]) / wall, 3)
        for name in _MAIN_THREAD
    }


class Feed:
    """`rate` chat messages a second in frames every 100 ms, numbered so the screen can be
    checked against the last one sent."""

    def __init__(self, client: httpx.AsyncClient, room: str, rate: int) -> None:
        self.client = client
        self.room = room
        self.per_frame = max(1, round(rate * FEED_EVERY_S))
        self.sent = 0
        self.late_frames = 0

    async def run(self, until: float) -> None:
        next_at = time.monotonic()
        while next_at < until:
            events = [
                {
                    "type": "chat",
                    "user": {"id": f"u{(self.sent + i) % 5000}", "name": f"观众{i}"},
                    "text": f"{_TEXTS[(self.sent + i) % len(_TEXTS)]} #{self.sent + i}",
                }
                for i in range(self.per_frame)
            ]
            answer = await self.client.post(f"/v1/rooms/{self.room}/events", json=events)
            answer.raise_for_status()
            self.sent += len(events)
            next_at += FEED_EVERY_S
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                self.late_frames += 1


async def measure(base_url: str, api: Api, room: str, args: argparse.Namespace) -> dict[str, Any]:
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        page: Page = await context.new_page()
        await page.goto(f"{base_url}/#token={api.token(Role.ASSISTANT, room)}&to=/console/{room}")
        await page.wait_for_selector('#conn[data-state="live"]')
        cdp = await context.new_cdp_session(page)
        await cdp.send("Performance.enable")
        await page.evaluate(_FRAME_SAMPLER)
        async with httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api.token(Role.INGEST, room)}"},
            timeout=30,
        ) as client:
            # The page idle first: what the machine alone costs in frames (it is shared).
            await asyncio.sleep(BASELINE_S)
            baseline = frame_figures(await page.evaluate(_TAKE_FRAMES))
            log.info("idle baseline: %s", baseline)
            feed = Feed(client, room, args.rate)
            # Fill the chat to its cap first, so the start figures are the steady state's.
            await feed.run(time.monotonic() + 5)
            await page.evaluate(_TAKE_FRAMES)
            start = await page_metrics(cdp)
            log.info("start: %s", start)
            intervals: list[dict[str, Any]] = []
            every: list[float] = []
            ends = time.monotonic() + args.minutes * 60
            while time.monotonic() < ends:
                await feed.run(min(ends, time.monotonic() + SAMPLE_EVERY_S))
                deltas: list[float] = await page.evaluate(_TAKE_FRAMES)
                every += deltas
                intervals.append(frame_figures(deltas))
                log.info("frames: %s", intervals[-1])
            end = await page_metrics(cdp)
            log.info("end: %s", end)
        last_text = f"#{feed.sent - 1}"
        try:
            await page.wait_for_function(
                "t => document.querySelector('.chat-list').lastElementChild"
                "?.textContent.includes(t)",
                arg=last_text,
                timeout=10_000,
            )
            caught_up = True
        except PlaywrightTimeout:
            caught_up = False
        rows = await page.locator(".chat-row").count()
        await browser.close()
    return {
        "minutes": args.minutes,
        "rate": args.rate,
        "sent": feed.sent,
        "late_feed_frames": feed.late_frames,
        "frames_idle_baseline": baseline,
        "frames": frame_figures(every),
        "intervals": intervals,
        "page_start": start,
        "page_end": end,
        "main_thread": main_thread_shares(start, end),
        "chat_rows_in_dom": rows,
        "newest_message_shown": caught_up,
    }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    log_progress()
    conditions = report.machine()
    run_id = secrets.token_hex(3)
    with (
        backing_services(
            "consoleui", redis_url=args.redis_url, database_url=args.database_url, run_id=run_id
        ) as (work_dir, urls),
    ):
        log_dir = args.output.parent / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        env = livectl_env(urls, secret, work_dir, free_port())
        with gateway(env, 1, log_dir) as running:
            worker = Child("console-ui-worker", ["worker"], env, log_dir)
            try:
                api = Api(running.base_url, secret)
                room = f"ui-{run_id}"
                api.live_room(room)
                result = asyncio.run(measure(running.base_url, api, room, args))
                api.close()
            finally:
                worker.stop()
    result["conditions"] = conditions
    result["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0
