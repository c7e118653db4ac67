"""Pure decisions about coupons: no I/O, tested with plain values.

A drop lives in Redis as a hash of strings (``drop_fields``); these functions read it, decide
what a claim reply means, what a redemption is worth, and what the room tick does next.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from livectl.coupons.schemas import ClaimOut, DropFigures, EndReason
from livectl.errors import (
    CouponEnded,
    IdempotencyKeyReused,
    LimitReached,
    LivectlError,
    NotEligible,
    NotFound,
    RateLimited,
    SoldOut,
)

_REFUSALS: dict[str, tuple[type[LivectlError], str]] = {
    "not_found": (NotFound, "no such coupon drop in this room"),
    "sold_out": (SoldOut, "every coupon of this drop has been claimed"),
    "limit_reached": (LimitReached, "this user holds as many coupons of this drop as allowed"),
    "ended": (CouponEnded, "this drop has ended"),
    "not_eligible": (NotEligible, "this drop is for another audience"),
    "key_reused": (IdempotencyKeyReused, "this idempotency_key was used by another user"),
    "rate_limited": (RateLimited, "this viewer made too many claim attempts this second"),
}


def viewer_flags(event: Mapping[str, Any]) -> set[str]:
    """The audiences (``new``, ``fans``) one event puts its user in: a follow makes a fan."""
    user = event["user"]
    flags = set()
    if user.get("new"):
        flags.add("new")
    if user.get("fan") or event["type"] == "follow":
        flags.add("fans")
    return flags


def drop_view(drop_id: str, fields: Mapping[str, str], now: int) -> DropFigures:
    quantity = int(fields["quantity"])
    claimed = int(fields.get("claimed") or 0)
    gmv, cost = int(fields.get("gmv") or 0), int(fields.get("cost") or 0)
    reason = end_reason(fields, now)
    return DropFigures(
        id=drop_id,
        state="ended" if reason else "live",
        title=fields["title"],
        kind=fields["kind"],
        value=int(fields["value"]),
        min_spend=int(fields["min_spend"]),
        quantity=quantity,
        per_user=int(fields["per_user"]),
        audience=fields["audience"],
        product_ids=fields["products"].split(",") if fields["products"] else None,
        remaining=max(quantity - claimed, 0),
        claimed=claimed,
        ends_at=int(fields["ends_at"]),
        end_reason=reason,
        redeemed=int(fields.get("redeemed") or 0),
        gmv=gmv,
        cost=cost,
        roi=round(gmv / cost, 4) if cost else None,
    )


def end_reason(fields: Mapping[str, str], now: int) -> EndReason | None:
    """Why the drop is over, or None while it is live: ended explicitly, sold out, time up."""
    if fields.get("state") == "ended":
        return fields.get("reason") or "stopped"  # type: ignore[return-value]
    if int(fields.get("claimed") or 0) >= int(fields["quantity"]):
        return "sold_out"
    if now >= int(fields["ends_at"]):
        return "time_up"
    return None


TickAction = Literal["close", "push"] | None


def tick_action(fields: Mapping[str, str], now: int) -> TickAction:
    """Once a second per open drop: close it when over, else push if its count moved (a
    throttle of one push per second per drop while it drains)."""
    if end_reason(fields, now):
        return "close"
    if fields.get("claimed", "0") != fields.get("pushed", "0"):
        return "push"
    return None


def claim_outcome(reply: bytes | str) -> ClaimOut | LivectlError:
    """What the claim script answered for one claim: ``ok\\tclaim\\tcode\\texpires`` or why not."""
    text = reply.decode() if isinstance(reply, bytes) else reply
    if text.startswith("ok\t"):
        _, claim_id, code, expires_at = text.split("\t")
        return ClaimOut(claim_id=claim_id, code=code, expires_at=int(expires_at))
    refusal, detail = _REFUSALS[text]
    return refusal(detail)


@dataclass(frozen=True, slots=True)
class ClaimRecord:
    """One granted claim, as the claim script appends it to the outbox."""

    drop_id: str
    ordinal: int
    quantity: int
    user_id: str
    user_ordinal: int
    per_user: int
    claim_id: str
    code: str
    claimed_at: int
    expires_at: int
    idempotency_key: str | None


def parse_claims(packed: bytes | str) -> list[ClaimRecord]:
    text = packed.decode() if isinstance(packed, bytes) else packed
    records = []
    for line in text.split("\n"):
        drop, ordinal, quantity, user, user_ordinal, per_user, claim, code, at, expires, key = (
            line.split("\t")
        )
        records.append(
            ClaimRecord(
                drop,
                int(ordinal),
                int(quantity),
                user,
                int(user_ordinal),
                int(per_user),
                claim,
                code,
                int(at),
                int(expires),
                key or None,
            )
        )
    return records


@dataclass(frozen=True, slots=True)
class Redemption:
    code: str
    order_id: str
    amount: int
    discount: int
    redeemed_at: int


def parse_redemption(packed: bytes | str) -> Redemption:
    text = packed.decode() if isinstance(packed, bytes) else packed
    code, order_id, amount, discount, at = text.split("\t")
    return Redemption(code, order_id, int(amount), int(discount), int(at))


def redemption_discount(
    fields: Mapping[str, str], *, amount: int, product_id: str | None
) -> int | None:
    """The discount an order earns with this drop's code, or None if it does not qualify:
    below the threshold (满减), or a product outside the drop's scope."""
    products = fields["products"]
    if products and (product_id is None or product_id not in products.split(",")):
        return None
    if amount < int(fields["min_spend"]) or amount == 0:
        return None
    value = int(fields["value"])
    if fields["kind"] == "percent_off":
        return amount * value // 100
    return min(value, amount)
