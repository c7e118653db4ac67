"""Coupon decisions as pure functions, and the claim scripts against a model.

The state machine drives the real Lua scripts on a real Redis (claim, retry, stop, expire,
redeem, the ledger writer's flush, and a crash that loses everything Redis had not yet handed
to the ledger, followed by reconciliation) and checks after every step that nothing was
oversold, no user passed the limit, no ordinal or code was handed out twice, and the figures
agree with a simple model.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from redis.asyncio import Redis

from livectl.bus.keys import RoomKeys
from livectl.coupons.claims import ClaimRequest, CouponScripts, LedgerState
from livectl.coupons.rules import (
    ClaimRecord,
    Redemption,
    claim_outcome,
    drop_view,
    end_reason,
    parse_claims,
    parse_redemption,
    redemption_discount,
    tick_action,
)
from livectl.coupons.schemas import ClaimOut
from livectl.embedded import ServiceUrls
from livectl.errors import CouponEnded, IdempotencyKeyReused, LimitReached, NotFound, SoldOut

TERMS = {
    "state": "live",
    "reason": "",
    "title": "t",
    "kind": "amount_off",
    "value": "1000",
    "min_spend": "9900",
    "quantity": "3",
    "per_user": "1",
    "audience": "all",
    "products": "sku-1,sku-2",
    "ends_at": "10000",
    "valid_ms": "60000",
}


def test_redemption_needs_threshold_and_scope() -> None:
    assert redemption_discount(TERMS, amount=9900, product_id="sku-1") == 1000
    assert redemption_discount(TERMS, amount=9899, product_id="sku-1") is None
    assert redemption_discount(TERMS, amount=20000, product_id="sku-3") is None
    assert redemption_discount(TERMS, amount=20000, product_id=None) is None
    whole_room = TERMS | {"products": "", "min_spend": "0"}
    assert redemption_discount(whole_room, amount=500, product_id=None) == 500  # never below 0
    assert redemption_discount(whole_room, amount=0, product_id=None) is None
    percent = whole_room | {"kind": "percent_off", "value": "15"}
    assert redemption_discount(percent, amount=19999, product_id="x") == 2999


def test_end_reasons_and_tick_actions() -> None:
    assert end_reason(TERMS, now=9999) is None
    assert end_reason(TERMS, now=10000) == "time_up"
    assert end_reason(TERMS | {"claimed": "3"}, now=0) == "sold_out"
    assert end_reason(TERMS | {"state": "ended", "reason": "stopped"}, now=0) == "stopped"
    assert tick_action(TERMS, now=0) is None
    assert tick_action(TERMS | {"claimed": "1"}, now=0) == "push"
    assert tick_action(TERMS | {"claimed": "1", "pushed": "1"}, now=0) is None
    assert tick_action(TERMS, now=10000) == "close"


def test_views_and_wire_formats() -> None:
    view = drop_view("cp-1", TERMS | {"claimed": "2", "gmv": "19900", "cost": "1000"}, now=0)
    assert (view.state, view.remaining, view.claimed, view.roi) == ("live", 1, 2, 19.9)
    assert view.product_ids == ["sku-1", "sku-2"]
    assert drop_view("cp-1", TERMS, now=0).roi is None

    assert claim_outcome(b"ok\tc1\tcode\t123") == ClaimOut(
        claim_id="c1", code="code", expires_at=123
    )
    for reply, error in [
        (b"sold_out", SoldOut),
        (b"limit_reached", LimitReached),
        (b"ended", CouponEnded),
        (b"not_found", NotFound),
        (b"key_reused", IdempotencyKeyReused),
    ]:
        assert isinstance(claim_outcome(reply), error)
    claims = parse_claims("d\t1\t3\tu\t1\t1\tc\tcode\t5\t9\t\nd\t2\t3\tv\t1\t1\tc2\tcode2\t5\t9\tk")
    assert [(c.ordinal, c.idempotency_key) for c in claims] == [(1, None), (2, "k")]
    assert parse_redemption("code\to-1\t19900\t1000\t7") == Redemption(
        "code", "o-1", 19900, 1000, 7
    )


@dataclass
class Granted:
    claim: ClaimOut
    user: str
    key: str | None


@dataclass
class Ledger:
    """What the PostgreSQL ledger does with the outbox: insert once, redeem once."""

    claims: dict[str, ClaimRecord] = field(default_factory=dict)
    orders: dict[str, Redemption] = field(default_factory=dict)

    def write(self, record: ClaimRecord) -> None:
        if record.claim_id in self.claims:
            return
        # The unique constraints refuse a colliding claim: that would be an oversell.
        assert record.ordinal not in {c.ordinal for c in self.claims.values()}
        held = {(c.user_id, c.user_ordinal) for c in self.claims.values()}
        assert (record.user_id, record.user_ordinal) not in held
        assert 1 <= record.ordinal <= record.quantity
        assert 1 <= record.user_ordinal <= record.per_user
        self.claims[record.claim_id] = record

    def redeem(self, redemption: Redemption) -> None:
        claim = next((c for c in self.claims.values() if c.code == redemption.code), None)
        assert claim is not None, "a redemption reached the ledger before its claim"
        self.orders.setdefault(redemption.code, redemption)


QUANTITY, PER_USER, USERS, KEYS = 4, 2, ["u0", "u1", "u2"], ["k0", "k1", "k2", "k3"]


class ClaimMachine(RuleBasedStateMachine):
    redis_url = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.redis = Redis.from_url(self.redis_url)
        self.scripts = CouponScripts(self.redis)
        self.room = f"sm-{secrets.token_hex(4)}"
        self.drop = "cp-sm"
        self.now = 1_000
        self.terms: dict[str, str | int] = {
            "state": "live",
            "reason": "",
            "title": "t",
            "kind": "amount_off",
            "value": 1000,
            "min_spend": 0,
            "quantity": QUANTITY,
            "per_user": PER_USER,
            "audience": "all",
            "products": "",
            "ends_at": 100_000,
            "valid_ms": 1_000_000,
        }
        self.ledger = Ledger()
        self.recorded_end: str | None = None  # what PostgreSQL knows of the drop's end
        # The model: valid claims (a crash may lose unflushed ones), first answers per key.
        self.valid: dict[str, Granted] = {}
        self.first: dict[str, Granted] = {}
        self.ended = False
        self.redeemed: dict[str, int] = {}  # code -> amount

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        keys = self.run(self.redis.keys(f"lc:{{{self.room}}}:*"))
        if keys:
            self.run(self.redis.delete(*keys))
        self.run(self.redis.aclose())
        self.loop.close()

    @initialize()
    def create(self) -> None:
        self.run(self.scripts.create(self.room, self.drop, self.terms))

    def fields(self) -> dict[str, str]:
        fields: dict[str, str] = self.run(self.scripts.fields(self.room, [self.drop]))[0]
        return fields

    def user_claims(self, user: str) -> int:
        return sum(1 for g in self.valid.values() if g.user == user)

    @rule(user=st.sampled_from(USERS), key=st.none() | st.sampled_from(KEYS))
    def claim(self, user: str, key: str | None) -> None:
        (reply,) = self.run(
            self.scripts.claim(self.room, [ClaimRequest(self.drop, user, key)], self.now)
        )
        answer = claim_outcome(reply)
        first = self.first.get(key) if key else None
        if first is not None:
            if first.user == user:
                assert answer == first.claim
            else:
                assert isinstance(answer, IdempotencyKeyReused)
            return
        claimed = int(self.fields().get("claimed") or 0)
        if isinstance(answer, ClaimOut):
            assert not self.ended
            assert self.user_claims(user) < PER_USER
            assert answer.code not in {g.claim.code for g in self.valid.values()}
            granted = Granted(answer, user, key)
            self.valid[answer.claim_id] = granted
            if key:
                self.first[key] = granted
        elif isinstance(answer, SoldOut):
            assert claimed >= QUANTITY
        elif isinstance(answer, CouponEnded):
            assert self.ended
        else:
            assert isinstance(answer, LimitReached), answer
            assert self.user_claims(user) >= PER_USER

    @precondition(lambda self: bool(self.first))
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.first)))
        first = self.first[key]
        (reply,) = self.run(
            self.scripts.claim(self.room, [ClaimRequest(self.drop, first.user, key)], self.now)
        )
        assert claim_outcome(reply) == first.claim

    @rule()
    def stop(self) -> None:
        if self.run(self.scripts.close(self.room, self.drop, "stopped")):
            self.recorded_end = self.fields()["reason"]
        self.ended = True

    @rule()
    def expire(self) -> None:
        self.now = int(self.terms["ends_at"])
        self.ended = True

    @precondition(lambda self: bool(self.valid))
    @rule(data=st.data(), amount=st.integers(min_value=1, max_value=50_000))
    def redeem(self, data: st.DataObject, amount: int) -> None:
        granted = data.draw(
            st.sampled_from(sorted(self.valid.values(), key=lambda g: g.claim.code))
        )
        code = granted.claim.code
        holder = self.run(self.scripts.holder(self.room, code))
        assert holder is not None
        assert holder.user_id == granted.user
        discount = redemption_discount(self.fields(), amount=amount, product_id=None)
        assert discount is not None
        redemption = Redemption(code, f"o-{amount}", amount, discount, self.now)
        done = self.run(self.scripts.redeem(self.room, self.drop, redemption))
        assert done == (code not in self.redeemed)
        self.redeemed.setdefault(code, amount)

    @rule()
    def flush(self) -> None:
        """The ledger writer: outbox into the ledger, then the entries dropped."""
        outbox = RoomKeys(self.room).coupon_outbox
        for entry_id, entry in self.run(self.redis.xrange(outbox)):
            if b"c" in entry:
                for record in parse_claims(entry[b"c"]):
                    self.ledger.write(record)
            if b"r" in entry:
                self.ledger.redeem(parse_redemption(entry[b"r"]))
            self.run(self.redis.xdel(outbox, entry_id))

    @rule()
    def crash(self) -> None:
        """Redis loses everything the ledger does not hold, then reconciliation runs."""
        keys = self.run(self.redis.keys(f"lc:{{{self.room}}}:*"))
        if keys:
            self.run(self.redis.delete(*keys))
        ledger = LedgerState(
            end_reason=self.recorded_end,
            terms=self.terms,
            claims=[
                (c, self.ledger.orders[c.code].order_id if c.code in self.ledger.orders else None)
                for c in self.ledger.claims.values()
            ],
            redeemed=len(self.ledger.orders),
            gmv=sum(r.amount for r in self.ledger.orders.values()),
            cost=sum(r.discount for r in self.ledger.orders.values()),
        )

        async def reconcile() -> None:
            async with self.redis.pipeline(transaction=False) as pipe:
                await self.scripts.reconcile(self.room, self.drop, ledger, pipe)
                await pipe.execute()

        self.run(reconcile())
        self.valid = {k: g for k, g in self.valid.items() if k in self.ledger.claims}
        self.first = {k: g for k, g in self.first.items() if g.claim.claim_id in self.ledger.claims}
        self.redeemed = {code: r.amount for code, r in self.ledger.orders.items()}
        if self.recorded_end is None and int(self.terms["ends_at"]) > self.now:
            # A stop Redis lost before PostgreSQL recorded it is lost with it.
            self.ended = False

    @invariant()
    def never_oversold(self) -> None:
        fields = self.fields()
        claimed = int(fields.get("claimed") or 0)
        assert claimed <= QUANTITY
        assert len(self.valid) <= claimed
        users = self.run(self.redis.hgetall(f"{RoomKeys(self.room).coupon(self.drop)}:users"))
        assert all(int(n) <= PER_USER for n in users.values())
        for user in USERS:
            assert self.user_claims(user) <= PER_USER
        # Every ordinal the ledger holds is behind the counter: none can be handed out again.
        assert all(c.ordinal <= claimed for c in self.ledger.claims.values())

    @invariant()
    def figures_agree(self) -> None:
        fields = self.fields()
        assert int(fields.get("redeemed") or 0) == len(self.redeemed)
        assert int(fields.get("gmv") or 0) == sum(self.redeemed.values())


def test_claim_scripts_keep_their_invariants(servers: ServiceUrls) -> None:
    ClaimMachine.redis_url = servers.redis_url
    run_state_machine_as_test(
        ClaimMachine, settings=settings(max_examples=60, stateful_step_count=30, deadline=None)
    )
