"""One process's stats and ranking groups count each stream entry once between them."""

from __future__ import annotations

from typing import Any

import orjson

from livectl.bus.consumer import Entry
from livectl.ranking.rules import MentionMatcher, ProductSpec
from livectl.stats.counting import CountedEntry, EntryCounts

LIPSTICK = MentionMatcher([ProductSpec("sku-1", ("口红",))])
LIPSTICK_AND_NUTS = MentionMatcher(
    [ProductSpec("sku-1", ("口红",)), ProductSpec("sku-2", ("坚果",))]
)


def entry(entry_id: str, *texts: str) -> Entry:
    events = [{"type": "chat", "text": text, "user": {"id": "u"}} for text in texts]
    return Entry(entry_id, {b"e": orjson.dumps(events)})


def totals(counted: CountedEntry) -> dict[str, Any]:
    figures: dict[str, Any] = orjson.loads(counted.figures)
    return {name: int(n) for name, n in figures["t"].items()}


def test_the_second_group_takes_what_the_first_counted_and_then_it_is_forgotten() -> None:
    counts = EntryCounts(sharers=2)
    first = entry("1-0", "口红想要", "坚果")
    (counted,) = counts.of("r", [first], LIPSTICK)
    (taken,) = counts.of("r", [first], LIPSTICK)
    assert taken is counted
    assert totals(counted) == {"comments": 2, "mentions:sku-1": 1}
    assert counted.signals == {"sku-1:mention": 1, "sku-1:intent": 1}
    (redelivered,) = counts.of("r", [first], LIPSTICK)
    assert redelivered is not counted
    assert redelivered == counted


def test_a_group_alone_in_its_process_keeps_nothing() -> None:
    counts = EntryCounts(sharers=1)
    first = entry("1-0", "口红")
    (a,) = counts.of("r", [first], LIPSTICK)
    (b,) = counts.of("r", [first], LIPSTICK)
    assert a is not b
    assert a == b


def test_an_entry_counted_against_another_product_list_is_counted_again() -> None:
    counts = EntryCounts(sharers=2)
    first = entry("1-0", "坚果")
    (before,) = counts.of("r", [first], LIPSTICK)
    (after,) = counts.of("r", [first], LIPSTICK_AND_NUTS)
    assert "mentions:sku-2" not in totals(before)
    assert totals(after)["mentions:sku-2"] == 1


def test_rooms_do_not_share_entries_with_the_same_id() -> None:
    counts = EntryCounts(sharers=2)
    (one,) = counts.of("one", [entry("1-0", "口红")], LIPSTICK)
    (other,) = counts.of("other", [entry("1-0", "坚果")], LIPSTICK)
    assert (one.signals, other.signals) == ({"sku-1:mention": 1}, {})


def test_the_oldest_are_forgotten_past_the_bytes_kept() -> None:
    entries = [entry(f"{i}-0", "口红") for i in range(3)]
    size = len(EntryCounts(sharers=1).of("r", entries[:1], LIPSTICK)[0].figures)
    counts = EntryCounts(sharers=2, keep_bytes=2 * size)
    counted = counts.of("r", entries, LIPSTICK)
    # Two entries fit: the first was forgotten to keep the third.
    taken = counts.of("r", entries[1:], LIPSTICK)
    assert [t is c for t, c in zip(taken, counted[1:], strict=True)] == [True, True]
    (recounted,) = counts.of("r", entries[:1], LIPSTICK)
    assert recounted is not counted[0]
