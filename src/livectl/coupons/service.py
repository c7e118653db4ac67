"""Coupon drops: decided in Redis (claims, redemptions, ends), recorded in PostgreSQL.

A drop is written to PostgreSQL first and to Redis after the commit; claims are decided by
the claim script alone and reach the ledger through the outbox (see ``worker``), and
``reconcile`` rebuilds Redis from the ledger whenever Redis may have lost something.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from livectl.auth.tokens import Principal, Role, role_allows
from livectl.bus.keys import Channel, RoomKeys
from livectl.bus.publish import Message
from livectl.coupons import repository
from livectl.coupons.claims import CouponScripts, LedgerState
from livectl.coupons.models import CouponClaim, CouponDrop, CouponTemplate
from livectl.coupons.rules import ClaimRecord, drop_view, end_reason, tick_action
from livectl.coupons.schemas import DropFigures, DropFromTemplate, DropOut, DropTerms, TemplateOut
from livectl.errors import Forbidden, NotFound, ProductNotFound, TemplateNotFound
from livectl.kit import codec
from livectl.kit.clock import now_ms
from livectl.resources import Resources
from livectl.rooms.rules import RoomNotLive
from livectl.rooms.service import RoomCache
from livectl.store.engine import Transaction, transaction

# What viewers and consoles are told about a drop (its money figures stay on GET).
_PUBLIC = set(DropOut.model_fields)


def row_fields(drop: CouponDrop) -> dict[str, str | int]:
    """A drop's terms as the claim script reads them; figures start at zero, kept apart."""
    return {
        "state": "ended" if drop.end_reason else "live",
        "reason": drop.end_reason or "",
        "title": drop.title,
        "kind": drop.kind,
        "value": drop.value,
        "min_spend": drop.min_spend,
        "quantity": drop.quantity,
        "per_user": drop.per_user,
        "audience": drop.audience,
        "products": ",".join(drop.product_ids or ()),
        "ends_at": drop.ends_at,
        "valid_ms": drop.valid_ms,
    }


def _template_out(template: CouponTemplate) -> TemplateOut:
    return TemplateOut(
        id=template.id,
        terms=DropTerms.model_validate(template.terms),
        created_at=template.created_at,
    )


class CouponService:
    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        self.scripts = CouponScripts(resources.redis)
        self._rooms = RoomCache(resources)

    async def save_template(
        self, tx: Transaction, room: str, terms: DropTerms, principal: Principal
    ) -> TemplateOut:
        await self._check_products(room, terms)
        template = CouponTemplate(
            id=f"tpl-{secrets.token_hex(6)}",
            room_id=room,
            terms=terms.model_dump(),
            created_by=principal.sub,
            created_at=now_ms(),
        )
        await repository.add(tx.session, template)
        return _template_out(template)

    async def templates(self, room: str) -> list[TemplateOut]:
        await self._rooms.state(room)  # 404 for an unknown room
        async with self._resources.sessionmaker() as session:
            return [_template_out(t) for t in await repository.list_templates(session, room)]

    async def drop(
        self,
        tx: Transaction,
        room: str,
        body: DropTerms | DropFromTemplate,
        principal: Principal,
    ) -> DropOut:
        state = await self._rooms.state(room)
        if isinstance(body, DropFromTemplate):
            template = await repository.get_template(tx.session, room, body.template_id)
            if template is None:
                raise TemplateNotFound(f"no coupon template {body.template_id!r} in this room")
            terms = DropTerms.model_validate(template.terms)
        elif role_allows(principal.role, Role.CONTROLLER):
            terms = body
        else:
            raise Forbidden("assistants drop coupons from a saved template (template_id)")
        if state.room.status != "live":
            raise RoomNotLive("coupons drop only while the room is live")
        await self._check_products(room, terms)
        now = now_ms()
        drop = CouponDrop(
            id=f"cp-{secrets.token_hex(6)}",
            room_id=room,
            template_id=body.template_id if isinstance(body, DropFromTemplate) else None,
            title=terms.title,
            kind=terms.kind,
            value=terms.value,
            min_spend=terms.min_spend,
            quantity=terms.quantity,
            per_user=terms.per_user,
            audience=terms.audience,
            product_ids=terms.product_ids,
            valid_ms=terms.valid_s * 1000,
            created_by=principal.sub,
            created_at=now,
            ends_at=now + terms.duration_s * 1000,
        )
        await repository.add(tx.session, drop)
        fields = row_fields(drop)
        tx.after_commit(lambda: self._open(room, drop.id, fields))
        return DropOut.model_validate(_public(drop_view(drop.id, _texts(fields), now)))

    async def _open(self, room: str, drop_id: str, fields: dict[str, str | int]) -> None:
        await self.scripts.create(room, drop_id, fields)
        await self._announce(room, drop_id)

    async def _check_products(self, room: str, terms: DropTerms) -> None:
        known = {p.id for p in (await self._rooms.state(room)).products}
        for product_id in terms.product_ids or ():
            if product_id not in known:
                raise ProductNotFound(f"no product {product_id!r} in room {room!r}")

    async def drops(self, room: str) -> list[DropFigures]:
        return [view for _, view in await self.history(room)]

    async def history(self, room: str) -> list[tuple[CouponDrop, DropFigures]]:
        """Every drop of the room: its record and its figures now."""
        await self._rooms.state(room)
        async with self._resources.sessionmaker() as session:
            drops = await repository.list_drops(session, room)
        return list(zip(drops, await self._views(room, drops), strict=True))

    async def get(self, room: str, drop_id: str) -> DropFigures:
        async with self._resources.sessionmaker() as session:
            drop = await repository.get_drop(session, room, drop_id)
        if drop is None:
            raise NotFound(f"no coupon drop {drop_id!r} in room {room!r}")
        return (await self._views(room, [drop]))[0]

    async def _views(self, room: str, drops: Sequence[CouponDrop]) -> list[DropFigures]:
        hot = await self.scripts.fields(room, [d.id for d in drops])
        now = now_ms()
        views = []
        for drop, fields in zip(drops, hot, strict=True):
            # Redis holds the live figures; the record's terms stand in until reconciliation
            # has put a drop Redis lost back.
            merged = _texts(row_fields(drop)) | fields
            views.append(drop_view(drop.id, merged, now))
        return views

    async def live_coupons(self, room: str) -> list[dict[str, Any]]:
        """The open drops, for a console or live snapshot."""
        open_ids = await self.scripts.open_drops(room)
        now = now_ms()
        return [
            _public(view)
            for view in (
                drop_view(drop_id, fields, now)
                for drop_id, fields in zip(
                    open_ids, await self.scripts.fields(room, open_ids), strict=True
                )
                if fields
            )
            if view.state == "live"
        ]

    async def stop(self, room: str, drop_id: str) -> DropFigures:
        await self.get(room, drop_id)  # 404 for a drop of another room
        await self.close(room, drop_id, "stopped")
        return await self.get(room, drop_id)

    async def close(self, room: str, drop_id: str, reason: str) -> None:
        """End a drop: whoever takes it off the open set records and announces the end."""
        if not await self.scripts.close(room, drop_id, reason):
            return
        fields = (await self.scripts.fields(room, [drop_id]))[0]
        async with transaction(self._resources.sessionmaker) as tx:
            await repository.record_end(
                tx.session, drop_id, fields.get("reason") or reason, now_ms()
            )
        await self._announce(room, drop_id)

    async def close_room(self, room: str) -> None:
        """A room that ends takes its drops with it (its tick stops with the live)."""
        for drop_id in await self.scripts.open_drops(room):
            await self.close(room, drop_id, "room_ended")

    async def tick(self, room: str, now: int) -> None:
        open_ids = await self.scripts.open_drops(room)
        for drop_id, fields in zip(
            open_ids, await self.scripts.fields(room, open_ids), strict=True
        ):
            if not fields:
                continue
            action = tick_action(fields, now)
            if action == "close":
                await self.close(room, drop_id, end_reason(fields, now) or "time_up")
            elif action == "push":
                await self.scripts.mark_pushed(room, drop_id, fields.get("claimed", "0"))
                await self._publish(room, drop_view(drop_id, fields, now))

    async def _announce(self, room: str, drop_id: str) -> None:
        fields = (await self.scripts.fields(room, [drop_id]))[0]
        if fields:
            await self._publish(room, drop_view(drop_id, fields, now_ms()))

    async def _publish(self, room: str, view: DropFigures) -> None:
        await self._resources.publisher.publish(
            room, [Message("coupon", _public(view))], (Channel.CONSOLE, Channel.LIVE)
        )

    async def reconcile_all(self, *, full: bool) -> None:
        """Reconcile every room with a drop not yet settled, and put the room itself back in
        Redis first (a Redis that came back empty knows no rooms: nothing would tick them).
        Drops of a room that has ended are closed here too, should the end's own closing
        have been cut short (the tick only runs for live rooms)."""
        async with self._resources.sessionmaker() as session:
            rooms = await repository.rooms_with_unsettled_drops(session)
        for room in rooms:
            pinned = await self._resources.redis.get(RoomKeys(room).pin)
            state = await self._rooms.reload(room, codec.text_or_none(pinned))
            await self.reconcile(room, full=full)
            if state.room.status == "ended":
                await self.close_room(room)

    async def reconcile(self, room: str, *, full: bool = True) -> None:
        """Make Redis agree with the ledger for every drop of the room not yet settled.

        ``full=False`` is the cheap periodic check: a drop's claims are read back only when
        Redis is visibly behind the ledger (terms missing, a lower count, an end it lacks)."""
        async with self._resources.sessionmaker() as session:
            drops = await repository.list_drops(session, room, unsettled_only=True)
            hot = await self.scripts.fields(room, [drop.id for drop in drops])
            ledgers = []
            for drop, fields in zip(drops, hot, strict=True):
                if not full and not _behind(
                    fields, drop, await repository.highest_ordinal(session, drop.id)
                ):
                    continue
                ledgers.append((drop, await repository.drop_claims(session, drop.id)))
        if not ledgers:
            return
        async with self._resources.redis.pipeline(transaction=False) as pipe:
            for drop, claims in ledgers:
                redeemed = [c for c in claims if c.redeemed_at is not None]
                await self.scripts.reconcile(
                    room,
                    drop.id,
                    LedgerState(
                        end_reason=drop.end_reason,
                        terms=row_fields(drop),
                        claims=[(_record(c), c.order_id) for c in claims],
                        redeemed=len(redeemed),
                        gmv=sum(c.order_amount or 0 for c in redeemed),
                        cost=sum(c.discount or 0 for c in redeemed),
                    ),
                    pipe,
                )
            await pipe.execute()


def _behind(fields: dict[str, str], drop: CouponDrop, highest_ordinal: int) -> bool:
    return (
        not fields
        or int(fields.get("claimed") or 0) < highest_ordinal
        or (drop.end_reason is not None and fields.get("state") != "ended")
    )


def _public(view: DropFigures) -> dict[str, Any]:
    return view.model_dump(include=_PUBLIC)


def _texts(fields: dict[str, str | int]) -> dict[str, str]:
    return {name: str(value) for name, value in fields.items()}


def _record(claim: CouponClaim) -> ClaimRecord:
    return ClaimRecord(
        drop_id=claim.drop_id,
        ordinal=claim.ordinal,
        quantity=claim.quantity,
        user_id=claim.user_id,
        user_ordinal=claim.user_ordinal,
        per_user=claim.per_user,
        claim_id=claim.claim_id,
        code=claim.code,
        claimed_at=claim.claimed_at,
        expires_at=claim.expires_at,
        idempotency_key=claim.idempotency_key,
    )
