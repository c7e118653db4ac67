"""The web consoles in a real browser (Debian's headless chromium, driven by Playwright) against
a real gateway and worker: sign-in, live chat, pin, coupons, alerts, controller settings and a
cut connection. Each view's screenshot is written to $LIVECTL_SCREENSHOTS_DIR (the README's
are refreshed with LIVECTL_SCREENSHOTS_DIR=docs/screenshots, on a machine with CJK fonts), else
to a scratch directory: a test run leaves the tracked files alone."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    ViewportSize,
    async_playwright,
    expect,
)

from livectl.auth.tokens import Role
from loadtest.browser import CHROMIUM, launch_chromium
from tests.conftest import Stack, chat, open_console, wait_for
from tests.flaky_proxy import FlakyProxy
from tests.test_bursts import COMPLAINTS
from tests.test_console import seq_at_least
from tests.test_opinion import send

SCREENSHOTS = Path(
    os.environ.get("LIVECTL_SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "livectl-screenshots"
)
LAPTOP = ViewportSize(width=1280, height=800)
TABLET = ViewportSize(width=1024, height=768)
TEMPLATE = {
    "title": "直播间专享",
    "kind": "amount_off",
    "value": 1000,
    "min_spend": 0,
    "quantity": 5,
    "duration_s": 120,
}


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs it (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium to run the browser tests")
    async with async_playwright() as playwright:
        launched = await launch_chromium(playwright)
        yield launched
        await launched.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    opened = await browser.new_context(viewport=LAPTOP, locale="zh-CN")
    yield opened
    await opened.close()


async def signed_in(
    context: BrowserContext, base_url: str, token: str, view: str | None = None
) -> Page:
    """A tab signed in by a link carrying the token, then on `view` (e.g. "console/room")."""
    page = await context.new_page()
    await page.goto(f"{base_url}/#token={token}")
    await expect(page.locator("#permissions")).to_be_visible()
    if view:
        await page.goto(f"{base_url}/#/{view}")
    return page


async def live_console(context: BrowserContext, stack: Stack, room: str, role: Role) -> Page:
    page = await signed_in(context, stack.base_url, stack.token(role, [room]), f"console/{room}")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    await expect(page.locator("#products li")).to_have_count(3)
    return page


async def chat_texts(page: Page) -> list[str]:
    texts: list[str] = await page.locator(".chat-text").all_text_contents()
    return texts


def screenshot(name: str) -> str:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return str(SCREENSHOTS / f"{name}.png")


async def test_the_shell_is_served_with_a_strict_policy(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url) as client:
        shell = await client.get("/")
        assert shell.status_code == 200
        assert "text/html" in shell.headers["content-type"]
        assert "script-src 'self'" in shell.headers["content-security-policy"]
        assert shell.headers["referrer-policy"] == "no-referrer"
        for asset in ("/ui/js/app.js", "/ui/vendor/uPlot.esm.js", "/ui/vendor/uPlot.LICENSE"):
            assert (await client.get(asset)).status_code == 200, asset
        missing = await client.get("/ui/js/nothing.js")
        assert missing.status_code == 404
        assert missing.json()["error"] == "not_found"


async def test_sign_in_by_link_or_paste_shows_what_the_role_may_do(
    context: BrowserContext, stack: Stack
) -> None:
    token = stack.token(Role.ASSISTANT, ["room-a"])
    page = await signed_in(context, stack.base_url, token)
    # The link's token is kept for the tab only and gone from the address bar (and history).
    assert token not in page.url
    assert await page.evaluate("sessionStorage.getItem('livectl.token')") == token
    assert await page.evaluate("localStorage.getItem('livectl.token')") is None
    await expect(page.locator("#role")).to_have_text("助播")
    permissions = await page.locator("#permissions li").all_text_contents()
    assert "隐藏弹幕、禁言" in permissions
    assert "确认、解决预警" in permissions
    assert "为团队签发令牌" not in permissions
    await page.screenshot(path=screenshot("signin"))

    await page.click("#signout")
    await expect(page.locator("#token-input")).to_be_visible()
    await page.fill("#token-input", "not-a-token")
    await page.click("#signin-submit")
    await expect(page.locator(".form-error")).to_have_text("这不是一个有效的令牌")
    await page.fill("#token-input", stack.token(Role.HOST, ["room-a"], ttl_s=-60))
    await page.click("#signin-submit")
    await expect(page.locator(".form-error")).to_have_text("令牌已过期")
    await page.fill("#token-input", stack.token(Role.CONTROLLER))
    await page.click("#signin-submit")
    await expect(page.locator("#role")).to_have_text("场控")

    await page.click("#lang")
    await expect(page.locator("#role")).to_have_text("controller")
    await expect(page.locator("#signout")).to_have_text("Sign out")
    await page.click("#lang")
    await expect(page.locator("#role")).to_have_text("场控")


async def test_both_languages_have_every_word(context: BrowserContext, stack: Stack) -> None:
    page = await context.new_page()
    await page.goto(stack.base_url)
    keys = await page.evaluate(
        """async () => {
            const { dictionaries } = await import('/ui/js/i18n.js');
            return Object.fromEntries(
                Object.entries(dictionaries).map(([lang, words]) => [lang, Object.keys(words)]));
        }"""
    )
    assert set(keys) == {"zh-CN", "en"}
    assert set(keys["zh-CN"]) == set(keys["en"])


async def test_the_page_logic_folds_messages_in(context: BrowserContext, stack: Stack) -> None:
    """The pure parts of the page (room state, seq tracking, reasons), run in the browser."""
    page = await context.new_page()
    await page.goto(stack.base_url)
    folded = await page.evaluate(
        """async () => {
            const { RoomState } = await import('/ui/js/state.js');
            const { ConsoleSocket } = await import('/ui/js/socket.js');
            const { reason } = await import('/ui/js/i18n.js');
            const state = new RoomState();
            const product = (id, rank) => ({ id, name: `n-${id}`, rank, reasons: [] });
            state.apply({ type: 'snapshot', data: {
                room: { id: 'r' }, products: [product('a', 1), product('b', 2)],
                recommended: 'b', pinned: null, stats: {}, coupons: [],
                alerts: [{ id: 'x', status: 'open' }] } });
            state.apply({ type: 'ranking', data: { recommended: 'a', items: [
                { product_id: 'b', rank: 1, score: 9, reasons: ['cart rate 12%'] },
                { product_id: 'a', rank: 2, score: 1, reasons: [] }] } });
            state.apply({ type: 'products', data: { items: [
                { id: 'a', name: 'n-a', sold_out: true }, { id: 'b', name: 'n-b' }] } });
            state.apply({ type: 'alert', data: { id: 'x', status: 'resolved' } });
            for (const id of ['c1', 'c2', 'c3', 'c4', 'c5']) {
                state.apply({ type: 'coupon', data: { id, state: 'ended' } });
            }
            state.apply({ type: 'coupon', data: { id: 'c6', state: 'live' } });
            const delivered = [];
            const socket = new ConsoleSocket({ onMessage: (e) => delivered.push(e.seq) });
            for (const [seq, type] of [[5, 'snapshot'], [6, 'chat'], [6, 'chat'], [7, 'chat'],
                                       [5, 'chat'], [3, 'snapshot'], [4, 'chat']]) {
                socket.deliver({ seq, type });
            }
            return {
                order: state.products.map((p) => [p.id, p.sold_out ?? false, p.reasons.length]),
                recommended: state.recommended,
                alerts: state.alerts.size,
                coupons: [...state.coupons.keys()],
                live: state.liveCoupon().id,
                delivered,
                lastSeq: socket.lastSeq,
                reasons: ['12 asking for the link, price or stock', 'explained 3 min ago',
                          'something new'].map(reason),
            };
        }"""
    )
    assert folded == {
        "order": [["b", False, 1], ["a", True, 0]],
        "recommended": "a",
        "alerts": 0,
        "coupons": ["c3", "c4", "c5", "c6"],
        "live": "c6",
        # A repeat or an older seq is dropped; a snapshot (after a reset) restarts the count.
        "delivered": [5, 6, 7, 3, 4],
        "lastSeq": 4,
        "reasons": ["12 人在问链接、价格或库存", "3 分钟前讲解过", "something new"],
    }


async def test_a_token_for_another_room_is_refused_visibly(
    context: BrowserContext, stack: Stack, room: str
) -> None:
    page = await signed_in(
        context, stack.base_url, stack.token(Role.ASSISTANT, ["elsewhere"]), f"console/{room}"
    )
    await expect(page.locator("#conn")).to_have_attribute("data-state", "refused")
    await expect(page.locator("#toast")).to_contain_text("forbidden")


async def test_chat_arrives_live_and_pauses_under_the_pointer(
    context: BrowserContext, stack: Stack, room: str
) -> None:
    page = await live_console(context, stack, room, Role.ASSISTANT)
    await send(
        stack,
        room,
        [
            chat("主播好美", user="fan1", event_id="m-praise"),
            chat("假货吧这是", user="troll", event_id="m-complaint"),
            chat("3号链接多少钱", user="buyer", event_id="m-ask"),
        ],
    )
    await expect(page.locator(".chat-row")).to_have_count(3)
    assert await chat_texts(page) == ["主播好美", "假货吧这是", "3号链接多少钱"]
    await expect(page.locator('[data-event-id="m-complaint"]')).to_have_class(
        re.compile(r"\bneg\b")
    )
    await expect(page.locator('[data-event-id="m-complaint"] .tag')).to_have_text("counterfeit")

    # Under the pointer the list holds still; what arrives waits and shows when it leaves.
    await page.hover('[data-event-id="m-praise"]')
    await send(stack, room, [chat("停一下再出现", user="late", event_id="m-late")])
    await expect(page.locator(".chat-paused")).to_be_visible()
    assert "停一下再出现" not in await chat_texts(page)
    await page.hover('[data-event-id="m-complaint"]')
    await page.click('[data-event-id="m-complaint"] .chat-actions button:first-child')
    await expect(page.locator('[data-event-id="m-complaint"]')).to_have_count(0)
    await page.mouse.move(1270, 790)
    await expect(page.locator('[data-event-id="m-late"]')).to_be_visible()
    await expect(page.locator(".chat-paused")).to_be_hidden()


async def test_pin_in_the_console_and_the_host_view_follows(
    browser: Browser, context: BrowserContext, stack: Stack, room: str
) -> None:
    console = await live_console(context, stack, room, Role.ASSISTANT)
    tablet = await browser.new_context(viewport=TABLET, locale="zh-CN")
    try:
        host = await signed_in(
            tablet, stack.base_url, stack.token(Role.HOST, [room]), f"host/{room}"
        )
        await expect(host.locator("#conn")).to_have_attribute("data-state", "live")
        await expect(host.locator("#host-now")).to_have_text("—")
        await console.click('[data-product="sku-2"] button.pin')
        await expect(console.locator('[data-product="sku-2"]')).to_have_class("product pinned")
        await expect(host.locator("#host-now .host-name")).to_have_text("小黑瓶精华")
        # A host may pin too, but sold-out is for assistants and up.
        await expect(host.locator("button.soldout")).to_have_count(0)
        await send(stack, room, [chat("什么时候发货", user=f"q{n}") for n in range(3)])
        await host.screenshot(path=screenshot("host"))
        await console.click('[data-product="sku-2"] button.unpin')
        await expect(host.locator("#host-now")).to_have_text("—")
    finally:
        await tablet.close()


async def test_drop_a_coupon_from_a_template_and_watch_it_drain(
    context: BrowserContext, stack: Stack, room: str, admin: httpx.AsyncClient
) -> None:
    made = await admin.post(f"/v1/rooms/{room}/coupon-templates", json=TEMPLATE)
    assert made.status_code == 201
    page = await live_console(context, stack, room, Role.ASSISTANT)
    await page.click(f'[data-template="{made.json()["id"]}"]')
    coupon = page.locator(".coupon")
    await expect(coupon.locator(".coupon-left")).to_have_text("剩余 5/5")
    await expect(coupon.locator(".coupon-time")).to_contain_text("秒后结束")
    drop = coupon.first
    coupon_id = await drop.get_attribute("data-coupon")
    async with httpx.AsyncClient(
        base_url=stack.base_url, headers=stack.headers(Role.PLAYER, [room])
    ) as player:

        async def claim(user: str) -> None:
            answer = await player.post(
                f"/v1/rooms/{room}/coupons/{coupon_id}/claims", json={"user_id": user}
            )
            assert answer.status_code == 201, answer.text

        for user in ("v1", "v2", "v3"):
            await claim(user)
        await expect(coupon.locator(".coupon-left")).to_have_text("剩余 2/5")
        await send(stack, room, [chat("抢到了", user="v1"), chat("手慢了", user="v9")])
        await expect(page.locator(".chat-row")).to_have_count(2)
        await page.screenshot(path=screenshot("console"))
        for user in ("v4", "v5"):
            await claim(user)
    await expect(coupon.locator(".coupon-time")).to_have_text("已结束 · 已抢光")
    await expect(coupon.locator("button.stop")).to_have_count(0)
    # The API's refusals are shown as they come: dropping again once the room has ended.
    await admin.post(f"/v1/rooms/{room}/end")
    await page.click(f'[data-template="{made.json()["id"]}"]')
    await expect(page.locator("#toast")).to_contain_text("room_not_live")


async def test_a_critical_alert_reaches_both_views_and_is_acknowledged(
    browser: Browser, context: BrowserContext, stack: Stack, room: str, admin: httpx.AsyncClient
) -> None:
    console = await live_console(context, stack, room, Role.ASSISTANT)
    host = await signed_in(context, stack.base_url, stack.token(Role.HOST, [room]), f"host/{room}")
    await expect(host.locator("#conn")).to_have_attribute("data-state", "live")
    # All at once, so the tick that judges it sees a critical burst (15 texts, 8 users).
    await send(
        stack, room, [chat(text, user=f"angry-{n % 8}") for n, text in enumerate(COMPLAINTS[:20])]
    )
    alert = console.locator(".alert.critical")
    await expect(alert).to_have_count(1, timeout=15_000)
    await expect(alert.locator(".samples li")).to_have_count(3)
    await expect(host.locator(".host-alert")).to_have_count(1)
    await alert.locator("button.ack").click()
    await expect(alert.locator(".alert-status")).to_have_text("已确认")
    await expect(alert.locator("button.ack")).to_have_count(0)
    (acked,) = (await admin.get(f"/v1/rooms/{room}/alerts")).json()
    assert acked["status"] == "acked"
    assert acked["acked_by"] == "test-assistant"


async def test_a_cut_connection_resumes_without_losing_or_repeating_a_message(
    context: BrowserContext, stack: Stack, room: str
) -> None:
    port = int(stack.base_url.rsplit(":", 1)[1])
    with FlakyProxy(port) as proxy:
        base = f"http://127.0.0.1:{proxy.port}"
        page = await signed_in(
            context, base, stack.token(Role.ASSISTANT, [room]), f"console/{room}"
        )
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live")

        def batch(label: str) -> list[dict[str, Any]]:
            return [chat(f"{label}-{n}", user=f"{label}{n}") for n in range(20)]

        await send(stack, room, batch("before"))
        await expect(page.locator(".chat-row")).to_have_count(20)
        proxy.refusing = True
        proxy.cut()
        await expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
        await send(stack, room, batch("during"))
        proxy.refusing = False
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=20_000)
        await send(stack, room, batch("after"))
        await expect(page.locator(".chat-row")).to_have_count(60)
        expected = [f"{label}-{n}" for label in ("before", "during", "after") for n in range(20)]
        assert await chat_texts(page) == expected


async def test_a_gap_past_the_history_redraws_from_a_fresh_snapshot(
    context: BrowserContext, stack: Stack, room: str, admin: httpx.AsyncClient
) -> None:
    port = int(stack.base_url.rsplit(":", 1)[1])
    with FlakyProxy(port) as proxy:
        base = f"http://127.0.0.1:{proxy.port}"
        page = await signed_in(
            context, base, stack.token(Role.ASSISTANT, [room]), f"console/{room}"
        )
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        await send(stack, room, [chat("before the gap", user="early")])
        await expect(page.locator(".chat-row")).to_have_count(1)
        proxy.refusing = True
        proxy.cut()
        await expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
        # Far more than the tests' history keeps (LIVECTL_HISTORY_MIN=100, and the current
        # second's), and a pin.
        start = await open_console(stack, room)
        first_seq = (await start.next_of("snapshot"))["seq"]
        await start.socket.close()
        await send(stack, room, [chat(f"missed-{n}", user=f"m{n}") for n in range(300)])
        await asyncio.sleep(1.1)
        await send(stack, room, [chat(f"missed-{n}", user=f"m{n}") for n in range(300, 600)])
        assert (await admin.post(f"/v1/rooms/{room}/products/sku-3/pin")).status_code == 200
        await wait_for(lambda: seq_at_least(stack, room, first_seq + 601))
        proxy.refusing = False
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=20_000)
        # The server answered `reset`, then a snapshot: the state is the room's now, and the
        # chat starts again rather than pretending to be whole.
        await expect(page.locator('[data-product="sku-3"]')).to_have_class("product pinned")
        await expect(page.locator(".chat-row")).to_have_count(0)
        await send(stack, room, [chat("after the gap", user="late")])
        await expect(page.locator(".chat-text")).to_have_text(["after the gap"])


async def test_controller_edits_settings_and_issues_tokens(
    context: BrowserContext, stack: Stack, room: str, admin: httpx.AsyncClient
) -> None:
    page = await signed_in(context, stack.base_url, stack.token(Role.ADMIN), f"controller/{room}")
    editor = page.locator("#products-json")
    await expect(editor).to_have_value(re.compile("豆沙色口红"))
    products = page.locator(".json-editor").filter(has=editor)

    await editor.fill("[{")
    await products.locator("button").click()
    await expect(products.locator(".form-result")).to_contain_text("JSON 格式错误")
    await editor.fill('[{"id": "sku-9", "name": "新品", "price": 9.9}]')
    await products.locator("button").click()
    await expect(products.locator(".form-result")).to_contain_text("validation_error")
    assert len((await admin.get(f"/v1/rooms/{room}/products")).json()) == 3

    await page.fill("#blocked-words", "加微信\n私聊")
    await page.fill("#slow-mode", "5")
    await page.click("#save-moderation")

    async def saved() -> bool:
        settings = (await admin.get(f"/v1/rooms/{room}/moderation")).json()
        return bool(settings == settings | {"blocked_words": ["加微信", "私聊"], "slow_mode_s": 5})

    await wait_for(saved)

    rules_exist = (await admin.get(f"/v1/rooms/{room}/rules")).status_code != 404
    await expect(page.locator("#rules-json")).to_have_count(1 if rules_exist else 0)

    await page.fill("#token-sub", "小王")
    await page.select_option("#token-role", "host")
    await page.click("#token-issue")
    link = await page.locator(".token-link").input_value()
    assert link.startswith(f"{stack.base_url}/#token=")
    await page.screenshot(path=screenshot("controller"), full_page=True)
    issued = link.split("#token=", 1)[1]
    answer = await admin.get(
        f"/v1/rooms/{room}/stats", headers={"Authorization": f"Bearer {issued}"}
    )
    assert answer.status_code == 200


async def test_the_report_of_an_ended_live(
    context: BrowserContext, stack: Stack, room: str, admin: httpx.AsyncClient
) -> None:
    drop = await admin.post(f"/v1/rooms/{room}/coupons", json=TEMPLATE)
    assert drop.status_code == 201
    claimed = await admin.post(
        f"/v1/rooms/{room}/coupons/{drop.json()['id']}/claims", json={"user_id": "buyer"}
    )
    order = {"id": "o1", "quantity": 1, "amount": 9900, "coupon_code": claimed.json()["code"]}
    await send(
        stack,
        room,
        [
            *(chat("口红多少钱", user=f"q{n}") for n in range(6)),
            *(chat(text, user=f"angry-{n % 8}") for n, text in enumerate(COMPLAINTS[:20])),
            chat("广告刷屏", user="spam", event_id="spam-1"),
            {"type": "click", "product_id": "sku-1", "user": {"id": "buyer"}},
            {"type": "cart", "product_id": "sku-1", "user": {"id": "buyer"}},
            {"type": "order", "product_id": "sku-1", "user": {"id": "buyer"}, "order": order},
        ],
    )
    assert (await admin.post(f"/v1/rooms/{room}/messages/spam-1/hide")).status_code == 204

    async def settled() -> bool:
        stats = (await admin.get(f"/v1/rooms/{room}/stats")).json()
        alerts = (await admin.get(f"/v1/rooms/{room}/alerts")).json()
        return bool(stats["orders"] == 1 and alerts)

    await wait_for(settled, timeout=15)
    assert (await admin.post(f"/v1/rooms/{room}/end")).status_code == 200

    page = await signed_in(context, stack.base_url, stack.token(Role.HOST, [room]))
    await expect(page.locator(f'[data-room="{room}"] .status')).to_have_text("已结束")
    await page.click(f'[data-room="{room}"] a[href^="#/report/"]')
    await expect(page.locator(".report h1")).to_contain_text("直播复盘")
    await expect(page.locator(".report-chart canvas")).to_have_count(4)
    lipstick = page.locator("#funnel tbody tr").filter(has_text="豆沙色口红")
    await expect(lipstick.locator("td")).to_have_text(
        [
            "豆沙色口红",
            "0",  # seconds pinned
            re.compile(r"^([6-9]|\d\d)$"),  # the six asking, and any complaint naming it
            *("1", "1", "1", "1", "¥99.00"),
            *("100.0%", "100.0%", "100.0%"),
        ]
    )
    await expect(page.locator("#coupon-roi tbody tr td").nth(2)).to_have_text("1/5")
    await expect(page.locator("#alert-timeline tbody tr")).to_have_count(1)
    await expect(page.locator("#top-questions tbody tr").first).to_contain_text("6")
    await expect(page.locator("#moderation-summary")).to_contain_text("隐藏弹幕 1")
    await page.screenshot(path=screenshot("report"), full_page=True)
