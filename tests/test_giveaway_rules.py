"""The giveaway draw and entry decisions, as pure functions."""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError

from livectl.giveaways.rules import (
    commitment,
    draw,
    enters,
    entries_hash,
    sorted_entries,
    state_of,
    verify,
    within_entry_window,
)
from livectl.giveaways.schemas import GiveawaySpec

SEED = bytes(range(32))
ENTRIES = sorted_entries(f"u{n}" for n in range(50))


def published(winners: int = 3, entries: list[str] = ENTRIES) -> dict[str, Any]:
    return {
        "seed": SEED.hex(),
        "commitment_hex": commitment(SEED),
        "entries": entries,
        "entries_hash_hex": entries_hash(entries),
        "winners": winners,
        "winner_ids": draw(SEED, entries, winners),
    }


def test_the_draw_is_a_function_of_seed_entries_and_count() -> None:
    winners = draw(SEED, ENTRIES, 5)
    assert winners == draw(SEED, ENTRIES, 5)
    assert len(set(winners)) == 5
    assert set(winners) <= set(ENTRIES)
    assert draw(bytes(32), ENTRIES, 5) != winners
    # Drawing more is drawing the same first winners and then some (a partial shuffle).
    assert draw(SEED, ENTRIES, 8)[:5] == winners
    assert sorted(draw(SEED, ENTRIES, 500)) == ENTRIES
    assert draw(SEED, [], 3) == []


def test_every_entry_is_about_as_likely_to_win() -> None:
    entries = ["a", "b", "c", "d"]
    wins = Counter(
        draw(hashlib.sha256(str(n).encode()).digest(), entries, 1)[0] for n in range(4000)
    )
    assert set(wins) == set(entries)
    assert all(850 < count < 1150 for count in wins.values()), wins


def test_verify_accepts_the_published_draw_and_nothing_else() -> None:
    assert verify(**published())
    tampered: list[dict[str, Any]] = [
        published() | {"seed": bytes(32).hex()},
        published() | {"seed": "not hex"},
        published() | {"winner_ids": list(reversed(draw(SEED, ENTRIES, 3)))},
        published() | {"winners": 4},
        published() | {"entries": [*ENTRIES, "late"]},
        published() | {"entries_hash_hex": entries_hash(ENTRIES[1:])},
    ]
    for changed in tampered:
        assert not verify(**changed), changed
    unsorted = list(reversed(ENTRIES))
    assert not verify(**published(entries=unsorted) | {"entries": unsorted})
    with_twins = sorted([*ENTRIES, ENTRIES[0]])
    assert not verify(**published(entries=with_twins))


def test_sorted_entries_count_each_identity_once() -> None:
    assert sorted_entries(["b", "a", "b", "c", "a"]) == ["a", "b", "c"]


def test_entry_routes() -> None:
    keyword = {"entry": "keyword", "keyword": "想要福袋"}
    chat = {"type": "chat", "user": {"id": "u"}, "text": "我 想 要!!福袋"}
    assert enters(keyword, chat)
    assert enters(keyword, chat | {"text": "想要福袋"})
    assert not enters(keyword, chat | {"text": "福袋想要"})
    assert not enters(keyword, {"type": "follow", "user": {"id": "u"}})
    assert enters({"entry": "comment", "keyword": ""}, chat)
    assert not enters({"entry": "comment", "keyword": ""}, {"type": "like", "user": {"id": "u"}})
    assert enters({"entry": "follow", "keyword": ""}, {"type": "follow", "user": {"id": "u"}})
    assert not enters({"entry": "share", "keyword": ""}, {"type": "follow", "user": {"id": "u"}})
    window = {"created_at": "1000", "ends_at": "2000"}
    assert within_entry_window(window, 1000)
    assert within_entry_window(window, 1999)
    assert not within_entry_window(window, 999)
    assert not within_entry_window(window, 2000)
    assert [state_of(None, 2000, 1999), state_of(None, 2000, 2000), state_of(2500, 2000, 1)] == [
        "open",
        "drawing",
        "drawn",
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"keyword": None},
        {"keyword": "!!!"},
        {"entry": "follow"},
        {"entry": "likes"},
        {"winners": 0},
        {"winners": 2.0},
        {"duration_s": 1},
        {"title": ""},
        {"audience": "vip"},
        {"surprise": True},
    ],
)
def test_bad_specs_are_refused(change: dict[str, Any]) -> None:
    spec = {"title": "福袋", "prize": "口红", "winners": 2, "entry": "keyword"}
    spec |= {"keyword": "福袋", "duration_s": 60}
    GiveawaySpec.model_validate(spec)
    with pytest.raises(ValidationError):
        GiveawaySpec.model_validate(spec | change)
