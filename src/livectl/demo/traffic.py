"""A seeded model of a live room's audience that produces API Events (API.md, "Events in").

Pure: no I/O and no clock. The caller names the time window to fill, so the same seed and the
same windows always give the same events. The room has a population of viewers who enter, stay a
while and leave (some come back); the host features one product at a time, which draws most of
the clicks and mentions; viewers walk a click -> cart -> order funnel; and, unless disabled, a
complaint burst breaks out every few minutes for the alerting to catch.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from livectl.demo.catalog import Category, DemoProduct

Event = dict[str, object]

ActionKind = Literal["chat", "like", "click", "cart", "order", "follow", "share"]
ChatKind = Literal[
    "greeting", "praise", "question", "intent", "product_question", "banter", "mild_negative"
]

# ---------------------------------------------------------------------------------------------
# Phrase data. Ordinary chat must never contain a COMPLAINT_KEYWORDS word: the complaint bursts
# are the only complaints, so alerting on them is testable.

GREETINGS: tuple[str, ...] = (
    "主播好",
    "来了来了",
    "晚上好呀",
    "第一次来",
    "又来了",
    "打卡",
    "主播晚上好",
    "从推荐刷到的",
    "宝宝们好",
    "报到",
    "刚进来，在讲什么",
)
PRAISE: tuple[str, ...] = (
    "好看",
    "绝了",
    "已拍",
    "好美",
    "爱了爱了",
    "主播好会搭",
    "颜色好显白",
    "质感不错",
    "上次买的很好用",
    "回购了",
    "性价比好高",
    "好喜欢",
    "主播皮肤好好",
)
QUESTIONS: tuple[str, ...] = (
    "多少钱",
    "什么尺码",
    "怎么买",
    "几号链接",
    "什么时候发货",
    "有优惠券吗",
    "包邮吗",
    "能便宜点吗",
    "还有库存吗",
    "主播多高多重",
    "有赠品吗",
    "今天有福利吗",
    "现在讲的是几号",
)
INTENT_TEMPLATES: tuple[str, ...] = (
    "{alias}上车",
    "想要{alias}",
    "{alias}怎么拍",
    "上链接",
    "求链接",
    "{alias}还有吗",
    "求{alias}",
    "{alias}冲冲冲",
    "等{alias}",
    "{alias}什么时候上",
    "{alias}给我留一个",
)
PRODUCT_QUESTION_TEMPLATES: Mapping[Category, tuple[str, ...]] = {
    "beauty": (
        "{alias}多少钱",
        "{alias}敏感肌能用吗",
        "{alias}有什么色号",
        "{alias}油皮能用吗",
        "{alias}黄皮显白吗",
    ),
    "food": (
        "{alias}多少钱",
        "{alias}保质期多久",
        "{alias}辣不辣",
        "{alias}一袋多少克",
        "{alias}小孩能吃吗",
    ),
    "apparel": (
        "{alias}什么尺码",
        "{alias}多少钱",
        "{alias}有黑色吗",
        "160/100斤穿{alias}什么码",
        "{alias}起球吗",
    ),
}
BANTER: tuple[str, ...] = (
    "哈哈哈哈",
    "666",
    "[比心]",
    "主播好可爱",
    "背景音乐叫什么",
    "[玫瑰][玫瑰]",
    "刚下班",
    "蹲一个福利",
    "扣1",
    "1111",
    "助播好忙哈哈",
)
MILD_NEGATIVES: tuple[str, ...] = (
    "太贵了",
    "颜色不喜欢",
    "有点贵",
    "上次买的有点小",
    "等降价再买",
    "这个不适合我",
    "款式一般",
    "感觉一般般",
    "去年买的更便宜",
)
ORDERED_TEMPLATES: tuple[str, ...] = (
    "已拍",
    "已拍{alias}",
    "拍了拍了",
    "{alias}下单了",
    "付款了",
)
COMPLAINT_KEYWORDS: tuple[str, ...] = ("假货", "退款", "投诉", "质量差")
COMPLAINT_TEMPLATES: tuple[str, ...] = (
    "假货吧这是",
    "上次买的{alias}是假货",
    "质量差，要求退款",
    "投诉！客服一直不回",
    "{alias}收到就坏了，退款",
    "退款退款",
    "{alias}质量差到离谱",
    "已经投诉了",
    "假货别买",
    "申请退款三天没人处理",
)

NAME_ADJECTIVES: tuple[str, ...] = (
    "爱吃草莓的",
    "不加糖的",
    "快乐的",
    "会发光的",
    "熬夜的",
    "想暴富的",
    "温柔的",
    "碎碎念的",
)
NAME_NOUNS: tuple[str, ...] = (
    "小熊",
    "橘子",
    "柠檬",
    "兔兔",
    "鱼丸",
    "奶茶",
    "星星",
    "云朵",
    "小猫",
    "豆包",
    "芒果",
    "团子",
)
NAME_PREFIXES: tuple[str, ...] = ("小", "阿", "大", "老")
NAME_SUFFIXES: tuple[str, ...] = ("酱", "呀", "同学", "本人", "不吃香菜", "要早睡")
FAMILY_NAMES: tuple[str, ...] = ("王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴")

# ---------------------------------------------------------------------------------------------
# Model parameters. At the default rate they give roughly: 40% chat, 30% like batches, 10%
# clicks, 3-4% carts, ~1.7% orders, 3-4% enters and as many leaves, the rest follows/shares.

DEFAULT_RATE = 30.0
DEFAULT_COMPLAINT_BURST_INTERVAL_S = 240.0

ACTION_WEIGHTS: tuple[tuple[ActionKind, float], ...] = (
    ("chat", 0.40),
    ("like", 0.30),
    ("click", 0.10),
    ("cart", 0.035),
    ("order", 0.017),
    ("follow", 0.015),
    ("share", 0.013),
)
CHAT_WEIGHTS: tuple[tuple[ChatKind, float], ...] = (
    ("greeting", 0.08),
    ("praise", 0.20),
    ("question", 0.18),
    ("intent", 0.20),
    ("product_question", 0.10),
    ("banter", 0.16),
    ("mild_negative", 0.08),
)

# Online viewers the room settles around, per event/s of traffic.
ONLINE_PER_RATE = 8.0
MIN_TARGET_ONLINE = 20
# Enter share of events when the room is full; an emptier room draws more (the opening rush).
BASE_ENTER_SHARE = 0.04
RUSH_ENTER_SHARE = 0.6
RETURNING_SHARE = 0.2
FAN_SHARE = 0.22
NEW_SHARE_OF_NON_FANS = 0.4
# Most viewers stay a minute or two; a few watch the whole show.
STAYER_SHARE = 0.08
STAYER_DWELL_MS = (10 * 60_000, 40 * 60_000)
DWELL_MEDIAN_MS = 75_000
DWELL_SIGMA = 0.9
DWELL_BOUNDS_MS = (8_000, 20 * 60_000)
JUST_ENTERED_MS = 15_000
JUST_ENTERED_GREETING_SHARE = 0.35

FEATURED_PRODUCT_WEIGHT = 6.0
FEATURE_SPELL_MS = (3 * 60_000, 6 * 60_000)
FUNNEL_STEP_DELAY_MS = (2_000, 3 * 60_000)  # a step follows the previous one within this span
FUNNEL_PICK_ATTEMPTS = 6
ORDER_QUANTITY_WEIGHTS: tuple[tuple[int, float], ...] = ((1, 0.8), (2, 0.15), (3, 0.05))
ORDERED_CHAT_SHARE = 0.25
ORDERED_CHAT_DELAY_MS = (1_000, 5_000)
LIKE_MEAN_BATCH = 6.0
LIKE_MAX_BATCH = 99

COMPLAINT_BURST_USERS = (8, 12)
COMPLAINT_BURST_SPAN_MS = (5_000, 9_000)  # under the 10 s an alert looks at
COMPLAINT_BURST_MAX_NEWCOMERS = 3
COMPLAINT_REPEAT_SHARE = 0.25

_RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,40}")

_T = TypeVar("_T")


@dataclass(slots=True, eq=False)
class _Viewer:
    id: str
    name: str
    new: bool
    fan: bool
    level: int
    activity: float  # 0..1, how likely this viewer is the one who acts
    present: bool = False
    entered_at: int = 0
    leave_at: int = 0
    slot: int = -1  # index in TrafficModel._present while present

    def as_user(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "new": self.new,
            "fan": self.fan,
            "level": self.level,
        }


@dataclass(slots=True, eq=False)
class _FunnelStep:
    viewer: _Viewer
    product_index: int
    at: int
    taken: bool = False


class _FunnelStage:
    """Funnel steps (clicks, or carts) in time order, for a later step to follow up on.

    Steps older than the funnel's span drop off the front, so the stage stays small and the
    chance to find a live step does not decay over a long show or at a high rate.
    """

    def __init__(self) -> None:
        self._steps: list[_FunnelStep] = []
        self._head = 0

    def add(self, step: _FunnelStep) -> None:
        self._steps.append(step)

    def candidates(self, ts: int) -> tuple[int, int]:
        """The index range of steps a follow-up at `ts` may pick from."""
        min_delay, max_delay = FUNNEL_STEP_DELAY_MS
        steps = self._steps
        while self._head < len(steps) and steps[self._head].at < ts - max_delay:
            self._head += 1
        if self._head > 1024 and self._head * 2 > len(steps):
            del steps[: self._head]
            self._head = 0
        end = bisect.bisect_right(steps, ts - min_delay, lo=self._head, key=lambda step: step.at)
        return self._head, end

    def __getitem__(self, index: int) -> _FunnelStep:
        return self._steps[index]


@dataclass(slots=True, eq=False)
class _ScheduledLeave:
    viewer: _Viewer


@dataclass(slots=True, eq=False)
class _ScheduledChat:
    viewer: _Viewer
    text: str


@dataclass(slots=True, eq=False)
class _ComplaintBurst:
    pass


_Scheduled = _ScheduledLeave | _ScheduledChat | _ComplaintBurst


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit = math.exp(-mean)
    count = 0
    product = rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _chinese_name(rng: random.Random) -> str:
    pattern = rng.randrange(5)
    if pattern == 0:
        return rng.choice(NAME_ADJECTIVES) + rng.choice(NAME_NOUNS)
    if pattern == 1:
        return rng.choice(NAME_PREFIXES) + rng.choice(NAME_NOUNS)
    if pattern == 2:
        return rng.choice(NAME_NOUNS) + rng.choice(NAME_SUFFIXES)
    if pattern == 3:
        return rng.choice(FAMILY_NAMES) + rng.choice(NAME_NOUNS)
    # The platform's default name for viewers who never set one.
    return f"用户{rng.randrange(10**6, 10**7)}"


def _swap_pop(items: list[_T], index: int) -> _T:
    last = items.pop()
    if index == len(items):
        return last
    taken = items[index]
    items[index] = last
    return taken


class TrafficModel:
    """Events of a live room, window by window.

    Call `next_batch` with consecutive windows (`now_ms` of one call = `now_ms + dt_ms` of the
    previous). Every event gets a unique `id` built from `run_id` (drawn from the seed unless
    given), so a replayed batch deduplicates on the server; give a fresh `run_id` to send the same
    seeded traffic to a room again within the server's 24 h dedup window.
    """

    def __init__(
        self,
        products: Sequence[DemoProduct],
        *,
        rate: float = DEFAULT_RATE,
        seed: int | None = None,
        complaint_burst_interval_s: float | None = DEFAULT_COMPLAINT_BURST_INTERVAL_S,
        run_id: str | None = None,
    ) -> None:
        if not products:
            raise ValueError("the traffic model needs at least one product")
        if complaint_burst_interval_s is not None and complaint_burst_interval_s <= 0:
            raise ValueError("complaint_burst_interval_s must be positive, or None to disable")
        self._rng = random.Random(seed)  # noqa: S311 - simulated traffic, not secrets
        self._products = tuple(products)
        self.rate = rate
        self._complaint_interval_ms = (
            None if complaint_burst_interval_s is None else round(complaint_burst_interval_s * 1000)
        )
        # Drawn even when given, so that a run_id never changes the traffic that follows.
        drawn_run_id = f"{self._rng.getrandbits(40):010x}"
        self._run_id = drawn_run_id if run_id is None else run_id
        if not _RUN_ID_PATTERN.fullmatch(self._run_id):
            raise ValueError("run_id must be 1..40 characters of [A-Za-z0-9_.:-]")

        self._stock = [product.stock for product in self._products]
        self._featured = 0
        self._next_feature_change_at = 0
        self._started = False

        self._present: list[_Viewer] = []
        self._departed: list[_Viewer] = []
        self._user_ids: set[str] = set()
        self._clicked = _FunnelStage()
        self._carted = _FunnelStage()

        self._scheduled: list[tuple[int, int, _Scheduled]] = []
        self._scheduled_count = 0
        # Scheduled events (leaves, bursts, follow-up chats) take the place of sampled ones, so
        # the total stays at the configured rate.
        self._slot_debt = 0
        self._event_count = 0
        self._order_count = 0
        self._out: list[Event] = []

        self._action_kinds = [kind for kind, _ in ACTION_WEIGHTS]
        self._action_cum_weights = self._cumulative([weight for _, weight in ACTION_WEIGHTS])
        self._chat_kinds = [kind for kind, _ in CHAT_WEIGHTS]
        self._chat_cum_weights = self._cumulative([weight for _, weight in CHAT_WEIGHTS])

    @property
    def rate(self) -> float:
        """Target events per second."""
        return self._rate

    @rate.setter
    def rate(self, rate: float) -> None:
        if not math.isfinite(rate) or rate < 0:
            raise ValueError("rate must be a finite number of events per second, >= 0")
        self._rate = rate
        self._target_online = max(MIN_TARGET_ONLINE, round(rate * ONLINE_PER_RATE))

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def online(self) -> int:
        return len(self._present)

    @property
    def featured_product_id(self) -> str:
        return self._products[self._featured].id

    def next_batch(self, now_ms: int, dt_ms: int) -> list[Event]:
        """The events that happen in [now_ms, now_ms + dt_ms), in time order."""
        if dt_ms <= 0:
            return []
        if not self._started:
            self._start(now_ms)
        self._out = []
        slots = sorted(
            now_ms + int(self._rng.random() * dt_ms)
            for _ in range(_poisson(self._rng, self._rate * dt_ms / 1000))
        )
        for ts in slots:
            self._run_scheduled(until=ts, floor=now_ms)
            if self._slot_debt > 0:
                self._slot_debt -= 1
                continue
            self._act(ts)
        self._run_scheduled(until=now_ms + dt_ms - 1, floor=now_ms)
        batch, self._out = self._out, []
        return batch

    # -- time line -----------------------------------------------------------------------------

    def _start(self, now_ms: int) -> None:
        self._started = True
        self._next_feature_change_at = now_ms + self._rng.randint(*FEATURE_SPELL_MS)
        if self._complaint_interval_ms is not None:
            # The first burst comes early so a newcomer sees an alert within a couple of minutes.
            first = round(self._complaint_interval_ms * self._rng.uniform(0.3, 0.6))
            self._schedule(now_ms + first, _ComplaintBurst())

    def _schedule(self, ts: int, item: _Scheduled) -> None:
        self._scheduled_count += 1
        heapq.heappush(self._scheduled, (ts, self._scheduled_count, item))

    def _run_scheduled(self, *, until: int, floor: int) -> None:
        while self._scheduled and self._scheduled[0][0] <= until:
            planned_at, _, item = heapq.heappop(self._scheduled)
            ts = max(planned_at, floor)
            emitted_before = len(self._out)
            match item:
                case _ScheduledLeave(viewer):
                    if viewer.present and viewer.leave_at == planned_at:
                        self._leave(ts, viewer)
                case _ScheduledChat(viewer, text):
                    if viewer.present:
                        self._emit("chat", ts, viewer, text=text)
                case _ComplaintBurst():
                    self._complaint_burst(ts)
            self._slot_debt += len(self._out) - emitted_before

    def _act(self, ts: int) -> None:
        self._rotate_featured(ts)
        if not self._present or self._rng.random() < self._enter_share():
            self._enter(ts, self._arriving_viewer())
            return
        kind = self._rng.choices(self._action_kinds, cum_weights=self._action_cum_weights)[0]
        match kind:
            case "chat":
                self._chat(ts)
            case "like":
                self._like(ts)
            case "click":
                self._click(ts)
            case "cart":
                self._cart(ts)
            case "order":
                self._order(ts)
            case "follow":
                self._follow(ts)
            case "share":
                self._emit("share", ts, self._pick_present())

    def _enter_share(self) -> float:
        fill = len(self._present) / self._target_online
        if fill < 1:
            return BASE_ENTER_SHARE + RUSH_ENTER_SHARE * (1 - fill)
        return BASE_ENTER_SHARE * max(0.25, 2 - fill)

    def _rotate_featured(self, ts: int) -> None:
        while ts >= self._next_feature_change_at:
            self._featured = (self._featured + 1) % len(self._products)
            self._next_feature_change_at += self._rng.randint(*FEATURE_SPELL_MS)
        if self._stock[self._featured] == 0 and any(self._stock):
            # Hosts move on from a product the moment it sells out.
            while self._stock[self._featured] == 0:
                self._featured = (self._featured + 1) % len(self._products)

    # -- audience ------------------------------------------------------------------------------

    def _arriving_viewer(self) -> _Viewer:
        if self._departed and self._rng.random() < RETURNING_SHARE:
            return _swap_pop(self._departed, self._rng.randrange(len(self._departed)))
        return self._new_viewer()

    def _new_viewer(self) -> _Viewer:
        rng = self._rng
        user_id = f"u{rng.randrange(10**8, 10**9)}"
        while user_id in self._user_ids:
            user_id = f"u{rng.randrange(10**8, 10**9)}"
        self._user_ids.add(user_id)
        fan = rng.random() < FAN_SHARE
        activity = min(1.0, rng.lognormvariate(-1.2, 0.8) * (1.5 if fan else 1.0))
        level = rng.randint(8, 40) if fan else min(60, 1 + int(rng.expovariate(1 / 5)))
        return _Viewer(
            id=user_id,
            name=_chinese_name(rng),
            new=not fan and rng.random() < NEW_SHARE_OF_NON_FANS,
            fan=fan,
            level=level,
            activity=activity,
        )

    def _dwell_ms(self) -> int:
        if self._rng.random() < STAYER_SHARE:
            return self._rng.randint(*STAYER_DWELL_MS)
        dwell = self._rng.lognormvariate(math.log(DWELL_MEDIAN_MS), DWELL_SIGMA)
        low, high = DWELL_BOUNDS_MS
        return round(min(high, max(low, dwell)))

    def _enter(self, ts: int, viewer: _Viewer) -> None:
        viewer.present = True
        viewer.entered_at = ts
        viewer.leave_at = ts + self._dwell_ms()
        viewer.slot = len(self._present)
        self._present.append(viewer)
        self._schedule(viewer.leave_at, _ScheduledLeave(viewer))
        self._emit("enter", ts, viewer)

    def _leave(self, ts: int, viewer: _Viewer) -> None:
        moved = self._present.pop()
        if moved is not viewer:
            self._present[viewer.slot] = moved
            moved.slot = viewer.slot
        viewer.present = False
        viewer.slot = -1
        # Remember only so many departed viewers; the rest just never come back.
        if len(self._departed) < self._target_online * 5:
            self._departed.append(viewer)
        else:
            self._departed[self._rng.randrange(len(self._departed))] = viewer
        self._emit("leave", ts, viewer)

    def _keep_until(self, viewer: _Viewer, ts: int) -> None:
        if viewer.leave_at <= ts:
            viewer.leave_at = ts + self._rng.randint(2_000, 30_000)
            self._schedule(viewer.leave_at, _ScheduledLeave(viewer))

    def _pick_present(self) -> _Viewer:
        # A few viewers do most of the talking: accept a random viewer by their activity.
        viewer = self._rng.choice(self._present)
        for _ in range(8):
            if self._rng.random() < viewer.activity:
                break
            viewer = self._rng.choice(self._present)
        return viewer

    # -- actions -------------------------------------------------------------------------------

    def _pick_product_index(self) -> int:
        weights = [
            FEATURED_PRODUCT_WEIGHT if index == self._featured else 1.0
            for index in range(len(self._products))
        ]
        return self._rng.choices(range(len(self._products)), weights=weights)[0]

    def _alias(self, product_index: int) -> str:
        return self._rng.choice(self._products[product_index].aliases)

    def _chat(self, ts: int) -> None:
        viewer = self._pick_present()
        rng = self._rng
        if ts - viewer.entered_at < JUST_ENTERED_MS and rng.random() < JUST_ENTERED_GREETING_SHARE:
            kind: ChatKind = "greeting"
        else:
            kind = rng.choices(self._chat_kinds, cum_weights=self._chat_cum_weights)[0]
        match kind:
            case "greeting":
                text = rng.choice(GREETINGS)
            case "praise":
                text = rng.choice(PRAISE)
            case "question":
                text = rng.choice(QUESTIONS)
            case "intent":
                text = rng.choice(INTENT_TEMPLATES).format(
                    alias=self._alias(self._pick_product_index())
                )
            case "product_question":
                index = self._pick_product_index()
                templates = PRODUCT_QUESTION_TEMPLATES[self._products[index].category]
                text = rng.choice(templates).format(alias=self._alias(index))
            case "banter":
                text = rng.choice(BANTER)
            case "mild_negative":
                text = rng.choice(MILD_NEGATIVES)
        self._emit("chat", ts, viewer, text=text)

    def _like(self, ts: int) -> None:
        count = min(LIKE_MAX_BATCH, 1 + int(self._rng.expovariate(1 / (LIKE_MEAN_BATCH - 1))))
        self._emit("like", ts, self._pick_present(), count=count)

    def _click(self, ts: int) -> None:
        viewer = self._pick_present()
        index = self._pick_product_index()
        self._clicked.add(_FunnelStep(viewer, index, ts))
        self._emit("click", ts, viewer, product_id=self._products[index].id)

    def _cart(self, ts: int) -> None:
        step = self._take_funnel_step(self._clicked, ts)
        if step is None:
            self._click(ts)
            return
        self._carted.add(_FunnelStep(step.viewer, step.product_index, ts))
        self._emit("cart", ts, step.viewer, product_id=self._products[step.product_index].id)

    def _order(self, ts: int) -> None:
        step = self._take_funnel_step(self._carted, ts)
        if step is None:
            self._cart(ts)
            return
        index = step.product_index
        product = self._products[index]
        quantities = [quantity for quantity, _ in ORDER_QUANTITY_WEIGHTS]
        weights = [weight for _, weight in ORDER_QUANTITY_WEIGHTS]
        quantity = min(self._stock[index], self._rng.choices(quantities, weights=weights)[0])
        self._stock[index] -= quantity
        self._order_count += 1
        order = {
            "id": f"o:{self._run_id}:{self._order_count}",
            "quantity": quantity,
            "amount": product.price * quantity,
        }
        self._emit("order", ts, step.viewer, product_id=product.id, order=order)
        if self._rng.random() < ORDERED_CHAT_SHARE:
            text = self._rng.choice(ORDERED_TEMPLATES).format(alias=self._alias(index))
            self._schedule(
                ts + self._rng.randint(*ORDERED_CHAT_DELAY_MS), _ScheduledChat(step.viewer, text)
            )

    def _take_funnel_step(self, stage: _FunnelStage, ts: int) -> _FunnelStep | None:
        start, end = stage.candidates(ts)
        if start >= end:
            return None
        for _ in range(FUNNEL_PICK_ATTEMPTS):
            step = stage[self._rng.randrange(start, end)]
            if step.taken:
                continue
            if step.viewer.present and self._stock[step.product_index] > 0:
                step.taken = True
                return step
        return None

    def _follow(self, ts: int) -> None:
        for _ in range(3):
            viewer = self._pick_present()
            if not viewer.fan:
                viewer.fan = True
                self._emit("follow", ts, viewer)
                return
        self._like(ts)

    def _complaint_burst(self, ts: int) -> None:
        rng = self._rng
        size = rng.randint(*COMPLAINT_BURST_USERS)
        newcomers = min(
            size, max(size - len(self._present), rng.randint(0, COMPLAINT_BURST_MAX_NEWCOMERS))
        )
        participants = rng.sample(self._present, size - newcomers)
        for _ in range(newcomers):
            viewer = self._new_viewer()
            self._enter(ts, viewer)
            participants.append(viewer)
        span = rng.randint(*COMPLAINT_BURST_SPAN_MS)
        for viewer in participants:
            self._keep_until(viewer, ts + span)
            messages = 2 if rng.random() < COMPLAINT_REPEAT_SHARE else 1
            for _ in range(messages):
                text = rng.choice(COMPLAINT_TEMPLATES).format(
                    alias=self._alias(self._pick_product_index())
                )
                self._schedule(ts + rng.randrange(span), _ScheduledChat(viewer, text))
        if self._complaint_interval_ms is not None:
            gap = round(self._complaint_interval_ms * rng.uniform(0.75, 1.25))
            self._schedule(ts + gap, _ComplaintBurst())

    # -- output --------------------------------------------------------------------------------

    def _emit(self, kind: str, ts: int, viewer: _Viewer, **fields: object) -> None:
        self._event_count += 1
        event: Event = {
            "id": f"ev:{self._run_id}:{self._event_count}",
            "type": kind,
            "ts": ts,
            "user": viewer.as_user(),
        }
        event.update(fields)
        self._out.append(event)

    @staticmethod
    def _cumulative(weights: Sequence[float]) -> list[float]:
        total = 0.0
        cumulative = []
        for weight in weights:
            total += weight
            cumulative.append(total)
        return cumulative
