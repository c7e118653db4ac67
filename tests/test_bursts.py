"""The burst detector on simulated time: an ordinary busy room stays quiet, a burst alerts."""

from __future__ import annotations

import random
from collections import defaultdict

from livectl.demo.catalog import DEMO_ROOM
from livectl.demo.traffic import TrafficModel
from livectl.opinion import bursts
from livectl.opinion.analysis import analyse
from livectl.opinion.bursts import ANY_CATEGORY, NEGATIVE, Figures, choose, judge
from livectl.opinion.keywords import default_watchlist
from livectl.opinion.lexicon import WATCH_CATEGORIES

ORDINARY = [
    *("这个多少钱", "上车", "好看", "主播好美", "几号链接", "160斤穿什么码", "已拍", "来了"),
    *("什么时候发货", "有优惠券吗", "打卡", "还有货吗", "颜色好看", "质量怎么样", "666"),
]
ORDINARY_NEGATIVE = ["太贵了", "颜色不喜欢", "有点贵", "一般般", "不好看", "显黑", "太甜了"]
NEGATED_KEYWORDS = ["不是假货吧?", "没有退款的必要", "不是骗人的吧", "会起球吗", "可以退货吗"]
COMPLAINTS = [
    *("我要投诉", "投诉你们", "已经打了12315", "举报了", "黑店", "我去维权", "曝光你们"),
    *("给差评了", "大家去投诉吧", "投 诉", "投訴", "举 报 主 播", "这种店就该举报"),
    *("打12315", "投诉到底", "必须投诉", "投诉投诉", "我也举报了", "一起举报", "差评差评"),
]


class Tally:
    """What windows.py keeps in Redis, kept in dicts for simulated time."""

    def __init__(self) -> None:
        self.messages: dict[int, int] = defaultdict(int)
        self.texts: dict[tuple[int, str], set[str]] = defaultdict(set)
        self.users: dict[tuple[int, str], set[str]] = defaultdict(set)

    def add(self, ms: int, user: str, text: str) -> None:
        analysis = analyse(text, default_watchlist())
        bucket = bursts.bucket_of(ms)
        self.messages[bucket] += 1
        for signal in bursts.signals_of(analysis.tags, analysis.negative):
            self.texts[bucket, signal].add(analysis.words)
            self.users[bucket, signal].add(user)

    def figures(self, signal: str, now_ms: int) -> Figures:
        window = bursts.window_buckets(now_ms)
        return Figures(
            total=sum(self.messages[b] for b in window),
            texts=len(set().union(*(self.texts[b, signal] for b in window))),
            users=len(set().union(*(self.users[b, signal] for b in window))),
            baseline_texts=sum(len(self.texts[b, signal]) for b in bursts.baseline_buckets(now_ms)),
        )

    def alerts(self, now_ms: int) -> list[tuple[str, str]]:
        """What the tick would raise now, cool-downs aside."""
        passed = {}
        for signal in (NEGATIVE, ANY_CATEGORY, *WATCH_CATEGORIES):
            figures = self.figures(signal, now_ms)
            level = judge(signal, figures)
            if level is not None:
                passed[signal] = (figures, level)
        return [(signal, passed[signal][1]) for signal in choose(passed)]


def ordinary_room(tally: Tally, seconds: int, rng: random.Random, start_ms: int = 0) -> None:
    for second in range(seconds):
        for k in range(20):
            roll = rng.random()
            pool = ORDINARY_NEGATIVE if roll < 0.3 else NEGATED_KEYWORDS if roll < 0.4 else ORDINARY
            tally.add(
                start_ms + second * 1000 + k * 50, f"v{rng.randrange(3000)}", rng.choice(pool)
            )


def test_ten_minutes_of_ordinary_negatives_and_negated_keywords_raise_nothing() -> None:
    rng = random.Random(5)
    tally = Tally()
    for second in range(600):
        ordinary_room(tally, 1, rng, start_ms=second * 1000)
        assert tally.alerts(second * 1000 + 999) == [], f"alert at second {second}"


def test_twenty_complaints_from_eight_users_in_ten_seconds_alert_within_five() -> None:
    assert all("complaint" in analyse(text, default_watchlist()).tags for text in COMPLAINTS)
    rng = random.Random(6)
    tally = Tally()
    ordinary_room(tally, 120, rng)
    start = 120_000
    for n, text in enumerate(COMPLAINTS[:20]):
        tally.add(start + n * 500, f"angry{n % 8}", text)
        for k in range(10):  # the room goes on at 20 messages/s meanwhile
            tally.add(start + n * 500 + k * 50, f"v{rng.randrange(3000)}", rng.choice(ORDINARY))
    last_complaint = start + 19 * 500
    first_alert = next(
        (ms for ms in range(start, last_complaint + 5_000, 1000) if tally.alerts(ms)), None
    )
    assert first_alert is not None
    assert first_alert <= last_complaint + 5_000
    (signal, level), *_ = tally.alerts(first_alert)
    assert signal == "complaint"
    assert level in ("warning", "critical")


def test_identical_texts_count_once() -> None:
    figures_of_copies = Tally()
    for n in range(30):
        figures_of_copies.add(n * 100, f"user{n}", "我要投诉")
    assert figures_of_copies.figures("complaint", 3000).texts == 1
    assert figures_of_copies.alerts(3000) == []


def test_a_room_that_always_complains_needs_more_to_alert() -> None:
    quiet = Figures(total=200, texts=8, users=8, baseline_texts=0)
    grumbling = Figures(total=200, texts=8, users=8, baseline_texts=200)
    assert judge("complaint", quiet) == "warning"
    assert judge("complaint", grumbling) is None


def test_too_few_users_or_too_small_a_share_do_not_alert() -> None:
    assert judge("refund", Figures(total=100, texts=10, users=3, baseline_texts=0)) is None
    assert judge("refund", Figures(total=10_000, texts=10, users=10, baseline_texts=0)) is None
    assert judge(NEGATIVE, Figures(total=200, texts=60, users=40, baseline_texts=0)) is None
    assert judge(NEGATIVE, Figures(total=100, texts=60, users=40, baseline_texts=0)) == "critical"


def test_the_demo_rooms_mixed_complaint_bursts_alert_and_nothing_else_does() -> None:
    # The demo's bursts mix 假货, 退款, 投诉 and 质量差 among 8..12 users: no one category may
    # reach its floor, the watchlist as a whole does.
    model = TrafficModel(DEMO_ROOM.products, seed=42, complaint_burst_interval_s=60)
    tally = Tally()
    start = 1_800_000_000_000
    complaints: list[int] = []
    alerts: list[int] = []
    for second in range(10 * 60):
        now = start + second * 1000
        for event in model.next_batch(now, 1000):
            if event["type"] == "chat":
                text = str(event["text"])
                tally.add(now, str(event["user"]["id"]), text)  # type: ignore[index]
                if analyse(text, default_watchlist()).tags:
                    complaints.append(now)
        if tally.alerts(now) and (not alerts or now - alerts[-1] > bursts.COOL_DOWN_MS / 4):
            alerts.append(now)
    bursts_seen = [t for n, t in enumerate(complaints) if n == 0 or t - complaints[n - 1] > 20_000]
    assert len(bursts_seen) >= 8
    # Every alert follows a burst by at most 15 s, and most bursts are caught.
    assert all(any(0 <= a - b <= 15_000 for b in bursts_seen) for a in alerts)
    caught = sum(any(0 <= a - b <= 15_000 for a in alerts) for b in bursts_seen)
    print(f"\n{caught} of {len(bursts_seen)} demo bursts caught, {len(alerts)} alerts")
    assert caught >= 0.75 * len(bursts_seen), (caught, len(bursts_seen))
