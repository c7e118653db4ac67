"""Moderation: settings (blocked words, slow mode), mutes, hides, and the log of who did what."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from livectl.auth.tokens import SYSTEM, Principal
from livectl.bus.keys import RoomKeys
from livectl.bus.publish import Message
from livectl.kit import codec
from livectl.kit.cache import Copy, read_through
from livectl.kit.clock import now_ms
from livectl.moderation import repository
from livectl.moderation.models import ModerationAction, ModerationSettings
from livectl.moderation.rules import DEFAULT_BLOCKED_WORDS
from livectl.moderation.schemas import ActionOut, ModerationIn, ModerationOut, MuteIn, MuteOut
from livectl.opinion.keywords import Matcher
from livectl.resources import Resources
from livectl.rooms.service import RoomCache
from livectl.store.engine import Transaction, transaction


@dataclass(frozen=True, slots=True)
class Policy:
    blocked: Matcher
    slow_mode_s: int


@lru_cache(maxsize=1024)
def compile_policy(cached: bytes) -> Policy:
    # Keyed by the cached JSON itself, like the watchlists: a change is a new key.
    settings = codec.loads(cached)
    words = (*DEFAULT_BLOCKED_WORDS, *settings["blocked_words"])
    return Policy(Matcher((word, "blocked") for word in words), settings["slow_mode_s"])


def action_out(action: ModerationAction) -> ActionOut:
    return ActionOut.model_validate(action, from_attributes=True)


class ModerationService:
    def __init__(self, resources: Resources) -> None:
        self._resources = resources

    async def settings(self, room: str) -> ModerationOut:
        await RoomCache(self._resources).state(room)
        settings = codec.loads(await self._cached(room))
        return ModerationOut(default_blocked_words=list(DEFAULT_BLOCKED_WORDS), **settings)

    async def put_settings(
        self, room: str, body: ModerationIn, principal: Principal
    ) -> ModerationOut:
        await RoomCache(self._resources).state(room)
        settings = {
            "blocked_words": list(dict.fromkeys(body.blocked_words)),
            "slow_mode_s": body.slow_mode_s,
        }
        async with transaction(self._resources.sessionmaker) as tx:
            await repository.put_settings(
                tx.session,
                ModerationSettings(
                    room_id=room, updated_by=principal.sub, updated_at=now_ms(), **settings
                ),
            )
            await self._record(
                tx, room, action="settings", target=None, detail=settings, actor=principal.sub
            )

            async def refresh() -> None:
                await self._resources.redis.set(RoomKeys(room).moderation, codec.dumps(settings))

            tx.after_commit(refresh)
        return ModerationOut(default_blocked_words=list(DEFAULT_BLOCKED_WORDS), **settings)

    async def mute(self, room: str, body: MuteIn, principal: Principal) -> MuteOut:
        await RoomCache(self._resources).state(room)
        until = now_ms() + body.seconds * 1000
        async with transaction(self._resources.sessionmaker) as tx:
            await self._record(
                tx,
                room,
                action="mute",
                target=body.user_id,
                detail={"seconds": body.seconds, "until": until},
                actor=principal.sub,
            )

            async def apply() -> None:
                await self._resources.redis.hset(RoomKeys(room).mutes, body.user_id, until)

            tx.after_commit(apply)
        return MuteOut(user_id=body.user_id, until=until)

    async def unmute(self, room: str, user_id: str, principal: Principal) -> None:
        await RoomCache(self._resources).state(room)
        async with transaction(self._resources.sessionmaker) as tx:
            await self._record(
                tx, room, action="unmute", target=user_id, detail={}, actor=principal.sub
            )

            async def apply() -> None:
                await self._resources.redis.hdel(RoomKeys(room).mutes, user_id)

            tx.after_commit(apply)

    async def hide(self, room: str, event_id: str, principal: Principal) -> None:
        await RoomCache(self._resources).state(room)
        async with transaction(self._resources.sessionmaker) as tx:
            await self._record(
                tx, room, action="hide", target=event_id, detail={}, actor=principal.sub
            )

            async def remove() -> None:
                # Every console view drops the message (host views too, without who did it).
                await self._resources.publisher.publish(
                    room, [Message("moderation", {"action": "hide", "event_id": event_id})]
                )

            tx.after_commit(remove)

    async def record_auto_hide(self, room: str, reason: str, detail: dict[str, Any]) -> None:
        async with transaction(self._resources.sessionmaker) as tx:
            await self._record(
                tx, room, action="auto_hide", target=reason, detail=detail, actor=SYSTEM
            )

    async def actions(self, room: str, limit: int) -> list[ActionOut]:
        await RoomCache(self._resources).state(room)
        async with self._resources.sessionmaker() as session:
            return [action_out(a) for a in await repository.list_actions(session, room, limit)]

    async def _record(
        self,
        tx: Transaction,
        room: str,
        *,
        action: str,
        target: str | None,
        detail: dict[str, Any],
        actor: str,
    ) -> None:
        record = ModerationAction(
            room_id=room, action=action, target=target, detail=detail, actor=actor, at=now_ms()
        )
        await repository.add_action(tx.session, record)

        async def announce() -> None:
            # Who did what is for the staff: assistants and up, never a host view.
            await self._resources.publisher.publish(
                room,
                [Message("moderation", action_out(record).model_dump(), staff_only=True)],
            )

        tx.after_commit(announce)

    async def _cached(self, room: str) -> bytes:
        (settings,) = await read_through(self._resources.redis, self.copy(room))
        return settings

    def copy(self, room: str) -> Copy:
        """The room's settings: what ``compile_policy`` reads."""

        async def load() -> bytes:
            async with self._resources.sessionmaker() as session:
                row = await repository.get_settings(session, room)
            settings = (
                {"blocked_words": list(row.blocked_words), "slow_mode_s": row.slow_mode_s}
                if row
                else {"blocked_words": [], "slow_mode_s": 0}
            )
            return codec.dumps(settings)

        return Copy(RoomKeys(room).moderation, load)
