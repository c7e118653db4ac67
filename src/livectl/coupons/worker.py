"""The coupon workers: viewer flags and redemptions from the room's events, the ledger writer
over the coupon outbox, and the per-room tick (ends, drain pushes, reconciliation)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from livectl.bus.consumer import Entry
from livectl.bus.keys import RoomKeys
from livectl.coupons import repository
from livectl.coupons.claims import CouponScripts
from livectl.coupons.rules import (
    ClaimRecord,
    Redemption,
    parse_claims,
    parse_redemption,
    redemption_discount,
)
from livectl.coupons.service import CouponService
from livectl.ingest.entries import entry_ms, unpack_entry
from livectl.kit.clock import now_ms
from livectl.kit.outages import log_failure
from livectl.resources import Resources
from livectl.store.engine import transaction

log = logging.getLogger("livectl.coupons")

EVENTS_GROUP = "coupons"
LEDGER_GROUP = "coupon-ledger"

# Redis appends to its AOF and fsyncs it once a second: an outbox entry is written to the
# ledger only once it is older than that, so a Redis crash cannot lose a claim the ledger
# already holds (and the ordinal it took can never be handed out again after a restart).
LEDGER_DELAY_MS = 2500
# How often a worker asks Redis whether it is still the instance it last reconciled.
RECONCILE_CHECK_S = 0.5
# The periodic pass compares counts and reads a drop's claims back only if Redis lags.
RECONCILE_EVERY_S = 30.0


class CouponEvents:
    """Flags viewers as new or fans (for audiences) and redeems codes carried by orders."""

    def __init__(self, resources: Resources) -> None:
        self._scripts = CouponScripts(resources.redis)

    async def handle(self, room: str, entries: Sequence[Entry]) -> None:
        flags: dict[str, set[str]] = {"new": set(), "fans": set()}
        orders = []
        for entry in entries:
            for item in unpack_entry(entry.id, entry.fields):
                event = item.event
                user = event["user"]
                if user.get("new"):
                    flags["new"].add(user["id"])
                if user.get("fan") or event["type"] == "follow":
                    flags["fans"].add(user["id"])
                if event["type"] == "order" and event["order"].get("coupon_code"):
                    orders.append(event)
        await self._scripts.flag_viewers(room, flags)
        for order in orders:
            await self._redeem(room, order)

    async def _redeem(self, room: str, event: dict[str, Any]) -> None:
        order = event["order"]
        code = order["coupon_code"]
        holder = await self._scripts.holder(room, code)
        if holder is None or holder.user_id != event["user"]["id"]:
            return  # not a code of this room, or someone else's
        if event["ts"] > holder.expires_at:
            return
        fields = (await self._scripts.fields(room, [holder.drop_id]))[0]
        discount = redemption_discount(
            fields, amount=order["amount"], product_id=event.get("product_id")
        )
        if discount is not None:
            redemption = Redemption(code, order["id"], order["amount"], discount, event["ts"])
            await self._scripts.redeem(room, holder.drop_id, redemption)


class LedgerWriter:
    """Carries the coupon outbox into PostgreSQL, batched and idempotent, then drops the
    entries it wrote: what the outbox holds is exactly what the ledger does not yet."""

    def __init__(self, resources: Resources) -> None:
        self._resources = resources

    async def handle(self, room: str, entries: Sequence[Entry]) -> None:
        wait_ms = entry_ms(entries[-1].id) + LEDGER_DELAY_MS - now_ms()
        if wait_ms > 0:
            await asyncio.sleep(wait_ms / 1000)
        claims: list[ClaimRecord] = []
        redemptions: list[Redemption] = []
        for entry in entries:
            if b"c" in entry.fields:
                claims += parse_claims(entry.fields[b"c"])
            if b"r" in entry.fields:
                redemptions.append(parse_redemption(entry.fields[b"r"]))
        async with transaction(self._resources.sessionmaker) as tx:
            # Claims first: a redemption in the same batch needs its claim's row.
            await repository.insert_claims(tx.session, room, claims)
            await repository.record_redemptions(tx.session, redemptions)
        await self._resources.redis.xdel(RoomKeys(room).coupon_outbox, *(e.id for e in entries))


class CouponReconciler:
    """Makes Redis agree with the ledger when this worker starts, whenever Redis is a new
    instance (its run id changes: a restart, from its append-only file or empty), and checks
    every ``RECONCILE_EVERY_S`` besides."""

    def __init__(self, resources: Resources) -> None:
        self._redis = resources.redis
        self._service = CouponService(resources)

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        reconciled_run: str | None = None
        next_sweep = 0.0
        while not stop.is_set():
            try:
                run_id = str((await self._redis.info("server"))["run_id"])
                if run_id != reconciled_run or loop.time() >= next_sweep:
                    # A new Redis gets everything back; the periodic pass repairs what lags.
                    await self._service.reconcile_all(full=run_id != reconciled_run)
                    if run_id != reconciled_run:
                        log.info("coupons reconciled with the ledger (redis run %s)", run_id)
                    reconciled_run = run_id
                    next_sweep = loop.time() + RECONCILE_EVERY_S
            except Exception as exc:
                log_failure(log, exc, "coupon reconciliation failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RECONCILE_CHECK_S)


class CouponTicker:
    """Once a second per live room: end drops that are over, push counts while draining."""

    def __init__(self, resources: Resources) -> None:
        self._service = CouponService(resources)

    async def tick(self, room: str, now: int) -> None:
        await self._service.tick(room, now)
