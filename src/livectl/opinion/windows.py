"""The opinion tallies in Redis: what ``bursts.judge`` and the hot questions read.

Every write is a set or HyperLogLog insert keyed by the event's stable key, so a redelivered
stream entry changes no figure (samples are a capped list, deduplicated when read).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from livectl.bus.keys import RoomKeys
from livectl.kit import codec
from livectl.opinion import bursts
from livectl.opinion.bursts import Figures
from livectl.opinion.lexicon import QUESTION_INTENTS

_KEEP_MS = (bursts.WINDOW_BUCKETS + bursts.BASELINE_BUCKETS + 2) * bursts.BUCKET_MS
_SAMPLES_PER_BUCKET = 5
QUESTION_MINUTES = 5
_SAMPLES_PER_QUESTION = 3
_QUESTION_KEEP_MS = (QUESTION_MINUTES + 1) * 60_000


def text_hash(words: str) -> str:
    return hashlib.blake2b(words.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class Observed:
    """One analysed chat message, as the tallies need it."""

    at_ms: int
    key: str
    user: str
    text: str
    words: str
    signals: tuple[str, ...]
    intents: tuple[str, ...]


class Windows:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def record(self, room: str, observed: Sequence[Observed]) -> None:
        if not observed:
            return
        keys = RoomKeys(room)
        sets: dict[str, set[str]] = defaultdict(set)
        logs: dict[str, set[str]] = defaultdict(set)
        samples: dict[str, list[bytes]] = defaultdict(list)
        live_samples: dict[str, list[bytes]] = defaultdict(list)
        lifetimes: dict[str, int] = {}
        for item in observed:
            bucket = bursts.bucket_of(item.at_ms)
            logs[keys.opinion_chat(bucket)].add(item.key)
            lifetimes[keys.opinion_chat(bucket)] = _KEEP_MS
            sample = codec.dumps({"user": item.user, "text": item.text})
            for signal in item.signals:
                texts, users = (
                    keys.opinion_texts(bucket, signal),
                    keys.opinion_users(bucket, signal),
                )
                sets[texts].add(text_hash(item.words))
                sets[users].add(item.user)
                samples[keys.opinion_samples(bucket, signal)].append(sample)
                lifetimes.update(dict.fromkeys((texts, users), _KEEP_MS))
            minute = item.at_ms // 60_000
            for intent in item.intents:
                logs[keys.questions(minute, intent)].add(item.key)
                logs[keys.questions_live(intent)].add(item.key)
                samples[keys.question_samples(minute, intent)].append(codec.dumps(item.text))
                live_samples[keys.question_samples_live(intent)].append(codec.dumps(item.text))
                lifetimes[keys.questions(minute, intent)] = _QUESTION_KEEP_MS
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, members in sets.items():
                pipe.sadd(key, *members)
            for key, members in logs.items():
                pipe.pfadd(key, *members)
            for key, items in samples.items():
                pipe.lpush(key, *items[-_SAMPLES_PER_BUCKET:])
                pipe.ltrim(key, 0, _SAMPLES_PER_BUCKET - 1)
                pipe.pexpire(key, _KEEP_MS)
            for key, items in live_samples.items():
                pipe.lpush(key, *items[-_SAMPLES_PER_QUESTION:])
                pipe.ltrim(key, 0, _SAMPLES_PER_QUESTION - 1)
            for key, lifetime in lifetimes.items():
                pipe.pexpire(key, lifetime)
            await pipe.execute()

    async def figures(
        self, room: str, now_ms: int, signals: Iterable[str]
    ) -> dict[str, tuple[Figures, list[dict[str, str]]]]:
        """Each signal that passes the window's own floors, with its figures and samples.

        The baseline (60 buckets per signal) is read only for those: most ticks of most
        rooms stop after one round trip."""
        keys = RoomKeys(room)
        window = bursts.window_buckets(now_ms)
        signals = list(signals)
        async with self._redis.pipeline(transaction=False) as pipe:
            # Multi-key commands through execute_command: redis-py's cluster pipeline refuses
            # them by name, though one room's keys share a slot and Redis takes them.
            pipe.execute_command("PFCOUNT", *(keys.opinion_chat(b) for b in window))
            for signal in signals:
                pipe.execute_command("SUNION", *(keys.opinion_texts(b, signal) for b in window))
                pipe.execute_command("SUNION", *(keys.opinion_users(b, signal) for b in window))
            total, *unions = await pipe.execute()
        candidates = []
        for signal, texts, users in zip(signals, unions[::2], unions[1::2], strict=True):
            limits = bursts.thresholds_for(signal)
            if len(texts) >= limits.min_texts and len(users) >= limits.min_users:
                candidates.append((signal, len(texts), len(users)))
        if not candidates:
            return {}
        baseline = bursts.baseline_buckets(now_ms)
        async with self._redis.pipeline(transaction=False) as pipe:
            for signal, _, _ in candidates:
                for bucket in baseline:
                    pipe.scard(keys.opinion_texts(bucket, signal))
                for bucket in window:
                    pipe.lrange(keys.opinion_samples(bucket, signal), 0, -1)
            replies = await pipe.execute()
        found = {}
        per_signal = len(baseline) + len(window)
        for n, (signal, texts, users) in enumerate(candidates):
            reply = replies[n * per_signal : (n + 1) * per_signal]
            figures = Figures(
                total=int(total),
                texts=texts,
                users=users,
                baseline_texts=sum(int(count) for count in reply[: len(baseline)]),
            )
            found[signal] = (figures, distinct_samples(reply[len(baseline) :]))
        return found

    async def hot_questions(self, room: str, now_ms: int) -> list[tuple[str, int, list[str]]]:
        """(intent, times asked, samples) over the last minutes, most asked first."""
        keys = RoomKeys(room)
        minute = now_ms // 60_000
        minutes = range(minute - QUESTION_MINUTES + 1, minute + 1)
        return await self._questions(
            lambda intent: [keys.questions(m, intent) for m in minutes],
            lambda intent: keys.question_samples(minute, intent),
        )

    async def questions_message(self, room: str, now_ms: int) -> dict[str, Any]:
        """The `questions` message's data: the hot questions now, for the host."""
        items = question_items(await self.hot_questions(room, now_ms))
        return {"items": items, "window_s": QUESTION_MINUTES * 60}

    async def live_questions(self, room: str) -> list[tuple[str, int, list[str]]]:
        """(intent, times asked, samples) over the whole live, most asked first."""
        keys = RoomKeys(room)
        return await self._questions(
            lambda intent: [keys.questions_live(intent)], keys.question_samples_live
        )

    async def _questions(
        self,
        tallies_of: Callable[[str], list[str]],
        samples_of: Callable[[str], str],
    ) -> list[tuple[str, int, list[str]]]:
        intents = list(QUESTION_INTENTS)
        async with self._redis.pipeline(transaction=False) as pipe:
            for intent in intents:
                pipe.execute_command("PFCOUNT", *tallies_of(intent))
                pipe.lrange(samples_of(intent), 0, _SAMPLES_PER_QUESTION - 1)
            replies = await pipe.execute()
        asked = [
            (intent, int(count), list(dict.fromkeys(codec.loads(s) for s in samples)))
            for intent, count, samples in zip(intents, replies[::2], replies[1::2], strict=True)
            if int(count) > 0
        ]
        return sorted(asked, key=lambda item: (-item[1], item[0]))


def question_items(asked: Iterable[tuple[str, int, list[str]]]) -> list[dict[str, Any]]:
    """The `questions` message's items: what the host reads."""
    return [
        {"intent": intent, "label": QUESTION_INTENTS[intent][0], "count": n, "samples": s}
        for intent, n, s in asked
    ]


def distinct_samples(lists: Sequence[Sequence[bytes]], limit: int = 5) -> list[dict[str, str]]:
    seen: dict[str, dict[str, str]] = {}
    for raw_samples in reversed(lists):  # the newest bucket first
        for raw in raw_samples:
            sample: dict[str, str] = codec.loads(raw)
            seen.setdefault(sample["text"], sample)
    return list(seen.values())[:limit]
