"""What the room wants right now, as pure functions over counted signals.

Signals are counted per product in 5 s buckets over the last two minutes (by the ranking
worker, in Redis); here they are decayed, weighed, adjusted for stock, fatigue and pins, and
explained in plain words.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial

import ahocorasick

from livectl.kit.text import fold, screen
from livectl.ranking.schemas import RankingItem, RankingOut, Weights

SIGNALS = ("mention", "intent", "click", "cart", "order")
BUCKET_S = 5
HORIZON_S = 120
MINUTE_S = 60
# A signal counts half as much after this long.
HALF_LIFE_S = 30.0
# Having just been explained weighs half as much after this long.
FATIGUE_HALF_LIFE_S = 300.0
# Stock at or below this share of the starting stock counts as running low.
LOW_STOCK_SHARE = 0.2
INTENT_PHRASES = tuple(
    fold(phrase)
    for phrase in (
        "链接",
        "多少钱",
        "几块钱",
        "价格",
        "上车",
        "想要",
        "要了",
        "还有吗",
        "有货吗",
        "怎么买",
    )
)


@dataclass(frozen=True, slots=True)
class ProductSpec:
    """What ranking needs to know of a product from the room's record."""

    id: str
    names: tuple[str, ...]  # name and aliases
    stock: int | None = None
    sold_out: bool = False


# Identity is equality: a product list's names are built once (cached below), and every
# chat read against them is cached by them too, which hashing the automaton would slow.
@dataclass(frozen=True, slots=True, eq=False)
class _Names:
    # folded name -> (its length, the products it names, whether it can be glued to its
    # neighbours: only a name that begins or ends in a Latin letter or a digit can)
    automaton: ahocorasick.Automaton
    screen: re.Pattern[str]  # finds nothing in a raw text that cannot name any product


@lru_cache(maxsize=1024)
def _names(specs: tuple[tuple[str, tuple[str, ...]], ...]) -> _Names | None:
    # A word may name several products (two lipsticks both called 口红): it names them all.
    named: dict[str, list[str]] = {}
    for product_id, names in specs:
        for name in names:
            folded = fold(name)
            if folded and product_id not in named.setdefault(folded, []):
                named[folded].append(product_id)
    if not named:
        return None
    automaton = ahocorasick.Automaton()
    for word, product_ids in named.items():
        glueable = word[0].isascii() or word[-1].isascii()
        automaton.add_word(word, (len(word), tuple(product_ids), glueable))
    automaton.make_automaton()
    return _Names(automaton, screen(named))


@dataclass(frozen=True, slots=True)
class Mention:
    product_ids: frozenset[str]
    intent: bool


_NO_MENTION = Mention(frozenset(), intent=False)


class MentionMatcher:
    """Finds products named in chat: names and aliases matched in folded text, so 口 红,
    口紅 and 口口红 all name 口红. Built once per product list (cached)."""

    def __init__(self, products: Iterable[ProductSpec]) -> None:
        # What the matcher was built from: two matchers with equal keys find the same things.
        self.key = tuple((p.id, p.names) for p in products)
        self.product_ids = frozenset(product_id for product_id, _ in self.key)
        self._names = _names(self.key)

    def tally(self, texts: Iterable[str]) -> tuple[Counter[str], Counter[str]]:
        """Per product, how many of ``texts`` name it, and how many of those with purchase
        intent. The screen runs over every text without a Python call: most name nothing."""
        mentions: Counter[str] = Counter()
        intents: Counter[str] = Counter()
        if self._names is not None:
            screened = filter(self._names.screen.search, texts)
            for mention in map(partial(_read, self._names), screened):
                for product_id in mention.product_ids:
                    mentions[product_id] += 1
                    if mention.intent:
                        intents[product_id] += 1
        return mentions, intents


# A live repeats itself (the same question, 想要的扣1): what a text names is kept for the
# most recent texts, of every product list.
@lru_cache(maxsize=8192)
def _read(names: _Names, text: str) -> Mention:
    folded = fold(text)
    found = [
        product_id
        for end, (length, product_ids, glueable) in names.automaton.iter(folded)
        if not glueable or _stands_alone(folded, end - length + 1, end)
        for product_id in product_ids
    ]
    if not found:
        return _NO_MENTION
    return Mention(frozenset(found), intent=has_intent(folded))


def _glued(a: str, b: str) -> bool:
    """Two neighbouring characters of one number or one Latin word (Chinese has no such
    bounds, and folding drops spaces, so "link 2号链接" has its 2 right after a letter)."""
    if not (a.isascii() and b.isascii()):
        return False
    return (a.isdigit() and b.isdigit()) or (a.isalpha() and b.isalpha())


def _stands_alone(text: str, start: int, end: int) -> bool:
    """The match text[start..end] is not part of a longer number or word: 1号链接 is not named
    by 11号链接, nor sku1 by sku12."""
    return not (
        (start > 0 and _glued(text[start - 1], text[start]))
        or (end + 1 < len(text) and _glued(text[end], text[end + 1]))
    )


# One search for any of the phrases: a third of the time of testing each in turn.
_INTENT = re.compile("|".join(re.escape(phrase) for phrase in INTENT_PHRASES))


def has_intent(folded: str) -> bool:
    return _INTENT.search(folded) is not None


# A room's counted figures per product, as stats counts them ("<stage>:<product id>"), and
# the ranking signal each one is.
_SIGNAL_OF_STAGE = {"mentions": "mention", "clicks": "click", "carts": "cart", "orders": "order"}


def entry_signals(
    totals: Mapping[str, int], intents: Mapping[str, int]
) -> tuple[Counter[str], Counter[str]]:
    """What one stream entry adds to ranking, from what it adds to the room's figures (its
    per-product totals, already only for the room's own products) and the chats in it that
    name a product with purchase intent: ``"<product>:<signal>"`` counts, and units sold."""
    signals: Counter[str] = Counter()
    sold: Counter[str] = Counter()
    for name, n in totals.items():
        stage, _, product_id = name.partition(":")
        if stage == "quantity":
            sold[product_id] = n
        elif product_id and stage in _SIGNAL_OF_STAGE:
            signals[f"{product_id}:{_SIGNAL_OF_STAGE[stage]}"] = n
    for product_id, n in intents.items():
        signals[f"{product_id}:intent"] = n
    return signals, sold


@dataclass
class Counts:
    """A product's signals: decayed, in the last minute, and in the minute before."""

    decayed: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    last_minute: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    minute_before: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def count_buckets(buckets: Iterable[tuple[int, str, str, int]], now_s: float) -> dict[str, Counts]:
    """From (bucket, product id, signal, count) rows, each product's counts at ``now_s``.

    A bucket's age is taken from its middle, so a burst in the current bucket counts fully.
    """
    counts: dict[str, Counts] = defaultdict(Counts)
    for bucket, product_id, signal, n in buckets:
        age = max(0.0, now_s - (bucket + 0.5) * BUCKET_S)
        if age >= HORIZON_S:
            continue
        product = counts[product_id]
        product.decayed[signal] += n * 0.5 ** (age / HALF_LIFE_S)
        if age < MINUTE_S:
            product.last_minute[signal] += n
        else:
            product.minute_before[signal] += n
    return counts


@dataclass(frozen=True, slots=True)
class Scored:
    product_id: str
    available: bool
    score: float
    reasons: list[str]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{int(seconds)} s ago"
    return f"{round(seconds / 60)} min ago"


def score_product(
    product: ProductSpec,
    counts: Counts,
    weights: Weights,
    *,
    sold: int,
    since_explained_s: float | None,
    pinned: bool,
) -> Scored:
    left = None if product.stock is None else product.stock - sold
    if product.sold_out or (left is not None and left <= 0):
        return Scored(product.id, available=False, score=0.0, reasons=["sold out"])

    reasons: list[str] = []
    score = sum(getattr(weights, s) * counts.decayed.get(s, 0.0) for s in SIGNALS)
    rise = sum(
        getattr(weights, s) * (counts.last_minute.get(s, 0) - counts.minute_before.get(s, 0))
        for s in SIGNALS
    )
    score += weights.velocity * max(0.0, rise)

    mentions = counts.last_minute.get("mention", 0)
    if mentions:
        reasons.append(f"{_plural(mentions, 'mention')} in the last minute")
    intent = counts.last_minute.get("intent", 0)
    if intent:
        reasons.append(f"{intent} asking for the link, price or stock")
    orders = counts.last_minute.get("order", 0)
    if orders:
        reasons.append(f"{_plural(orders, 'order')} in the last minute")
    clicks = counts.last_minute.get("click", 0) + counts.minute_before.get("click", 0)
    carts = counts.last_minute.get("cart", 0) + counts.minute_before.get("cart", 0)
    if clicks:
        reasons.append(f"cart rate {round(100 * carts / clicks)}%")
    if mentions > counts.minute_before.get("mention", 0) > 0:
        reasons.append(f"mentions rising ({counts.minute_before['mention']} -> {mentions}/min)")

    if product.stock and left is not None and left <= product.stock * LOW_STOCK_SHARE:
        score *= 1 + weights.scarcity
        reasons.append(f"only {left} left")
    if since_explained_s is not None and not pinned:
        score *= 1 - weights.fatigue * 0.5 ** (since_explained_s / FATIGUE_HALF_LIFE_S)
        reasons.append(f"explained {_ago(since_explained_s)}")
    if pinned:
        score += weights.pin
        reasons.append("pinned now")
    return Scored(product.id, available=True, score=round(score, 3), reasons=reasons)


def rank(
    products: Sequence[ProductSpec],
    counts: Mapping[str, Counts],
    weights: Weights,
    *,
    sold: Mapping[str, int],
    explained_at_ms: Mapping[str, int],
    pinned: str | None,
    now_ms: int,
) -> RankingOut:
    """The room's products, best first; sold out last. Ties keep the room's own order."""
    scored = [
        score_product(
            product,
            counts.get(product.id) or Counts(),
            weights,
            sold=sold.get(product.id, 0),
            since_explained_s=(
                max(0.0, (now_ms - explained_at_ms[product.id]) / 1000)
                if product.id in explained_at_ms
                else None
            ),
            pinned=product.id == pinned,
        )
        for product in products
    ]
    order = sorted(range(len(scored)), key=lambda i: (not scored[i].available, -scored[i].score, i))
    items = [
        RankingItem(
            product_id=scored[i].product_id,
            rank=rank,
            score=scored[i].score,
            reasons=scored[i].reasons,
        )
        for rank, i in enumerate(order, start=1)
    ]
    recommended = next(
        (
            scored[i].product_id
            for i in order
            if scored[i].available and scored[i].product_id != pinned
        ),
        None,
    )
    return RankingOut(items=items, recommended=recommended)
