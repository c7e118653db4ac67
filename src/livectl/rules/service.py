"""Rule sets (validated, versioned in PostgreSQL, copied to Redis for the workers) and
firings (claimed once, recorded, their actions run once, pushed to the consoles)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter, ValidationError
from redis.asyncio import Redis

from livectl.auth.tokens import Principal, Role
from livectl.bus.keys import Channel, RoomKeys
from livectl.bus.publish import Message
from livectl.bus.scripts import ScriptCall, run_many
from livectl.coupons import repository as coupon_repository
from livectl.coupons.schemas import DropFromTemplate
from livectl.coupons.service import CouponService
from livectl.errors import InvalidJson, InvalidRules, LivectlError, RoomNotFound
from livectl.giveaways.service import GiveawayService
from livectl.kit import codec
from livectl.kit.cache import Copy, read_through
from livectl.kit.clock import now_ms
from livectl.opinion.service import AlertService
from livectl.resources import Resources
from livectl.rooms import repository as room_repository
from livectl.rooms.service import RoomCache, RoomService
from livectl.rules import repository
from livectl.rules.models import RuleFiring, RuleSetVersion
from livectl.rules.rules import Firing, by_event_type
from livectl.rules.schemas import (
    Action,
    Announce,
    DropCoupon,
    DropState,
    FiringOut,
    OrderPlaced,
    PinProduct,
    ProductSoldOut,
    RaiseAlert,
    Rule,
    RuleSetIn,
    RuleSetOut,
    StartGiveaway,
)
from livectl.store.engine import Transaction, transaction

# The actor a rule acts as (coupon drops and pins it makes are recorded as by this).
RULES_ACTOR = Principal(sub="rules", role=Role.CONTROLLER, rooms=frozenset())
# A claimed firing whose worker has not finished it this long after is finished by the tick.
STALE_PENDING_MS = 5_000

_SPENT = -1  # what the claim answers for a rule that reached its maximum
# KEYS: claimed ids, counts, pending. ARGV: firing id, rule key, at ms, cool-down ms,
# max firings (0: none), the firing as JSON. The cool-down and the maximum are checked and
# the firing taken in one step, so two workers never both fire one rule past its limits.
_CLAIM = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 0 end
local count, last = 0, nil
local state = redis.call('HGET', KEYS[2], ARGV[2])
if state then
  local c, l = string.match(state, '^(%d+):(-?%d+)$')
  count, last = tonumber(c), tonumber(l)
end
local at, cool_down, most = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if most > 0 and count >= most then return -1 end
if last and cool_down > 0 and at - last < cool_down then return -2 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], (count + 1) .. ':' .. ARGV[3])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[6])
return 1
"""


ACTION: TypeAdapter[Action] = TypeAdapter(Action)


@dataclass(frozen=True, slots=True)
class RuleSetInForce:
    version: int
    rules: RuleSetIn
    by_event_type: Mapping[str, RuleSetIn] = field(default_factory=dict)


def firing_id(room: str, rule_id: str, version: int, instant: str) -> str:
    digest = hashlib.sha256(f"{room}\0{rule_id}\0{version}\0{instant}".encode()).hexdigest()
    return f"rf-{digest[:32]}"


def describe_rule_errors(raw: Any, exc: ValidationError) -> str:
    """Each error named by the rule (its id when it has one) and the field."""
    parts = []
    for error in exc.errors():
        loc = list(error["loc"])
        where = ".".join(str(part) for part in loc) or "body"
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            rule = _rule_at(raw, loc[1])
            path = ".".join(str(part) for part in loc[2:]) or "rule"
            where = f"rule {rule!r} (rules[{loc[1]}]) {path}"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)[:2000]


def references(rules: RuleSetIn) -> Iterator[tuple[str, str, str]]:
    """(where, "product" or "coupon template", id) for each thing the rules name."""
    for index, rule in enumerate(rules.rules):
        where = f"rule {rule.id!r} (rules[{index}])"
        trigger = rule.trigger
        if isinstance(trigger, OrderPlaced | ProductSoldOut) and trigger.product_id:
            yield f"{where} trigger.product_id", "product", trigger.product_id
        if isinstance(trigger, DropState) and trigger.template_id:
            yield f"{where} trigger.template_id", "coupon template", trigger.template_id
        for number, action in enumerate(rule.actions):
            if isinstance(action, DropCoupon):
                yield (
                    f"{where} actions[{number}].template_id",
                    "coupon template",
                    action.template_id,
                )
            if isinstance(action, PinProduct):
                yield f"{where} actions[{number}].product_id", "product", action.product_id


def _rule_at(raw: Any, index: int) -> str:
    try:
        return str(raw["rules"][index]["id"])
    except (KeyError, IndexError, TypeError):
        return f"#{index}"


@lru_cache(maxsize=1024)
def _parsed(cached: bytes) -> RuleSetInForce:
    # Keyed by the cached JSON itself: a new version is a new key, so no process evaluates a
    # stale copy, and each version is parsed once per process.
    data = codec.loads(cached)
    rules = RuleSetIn.model_validate(data["rules"])
    return RuleSetInForce(data["version"], rules, by_event_type(rules))


def _row_out(row: RuleSetVersion | None) -> RuleSetOut:
    if row is None:
        return RuleSetOut(rules=[], version=0, set_by=None, set_at=None)
    return RuleSetOut.model_validate(
        row.rules | {"version": row.version, "set_by": row.set_by, "set_at": row.set_at}
    )


class RuleService:
    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        self._rooms = RoomCache(resources)

    async def get(self, room: str) -> RuleSetOut:
        await self._rooms.state(room)  # 404 for an unknown room
        async with self._resources.sessionmaker() as session:
            return _row_out(await repository.latest_rule_set(session, room))

    def parse(self, body: bytes) -> RuleSetIn:
        try:
            raw = codec.loads(body)
        except ValueError as exc:
            raise InvalidJson(f"the body is not JSON: {exc}") from exc
        try:
            return RuleSetIn.model_validate(raw)
        except ValidationError as exc:
            raise InvalidRules(describe_rule_errors(raw, exc)) from exc

    async def check_references(self, room: str, rules: RuleSetIn) -> None:
        """Every product and coupon template a rule names must exist in the room."""
        known = {"product": {p.id for p in (await self._rooms.state(room)).products}}
        async with self._resources.sessionmaker() as session:
            templates = await coupon_repository.list_templates(session, room)
        known["coupon template"] = {template.id for template in templates}
        for where, kind, name in references(rules):
            if name not in known[kind]:
                raise InvalidRules(f"{where}: no {kind} {name!r} in this room")

    async def put(self, room: str, rules: RuleSetIn, principal: Principal) -> RuleSetOut:
        """A new version, recorded with who set it; the Redis copy is replaced after the commit."""
        async with transaction(self._resources.sessionmaker) as tx:
            if await room_repository.get_room(tx.session, room, for_update=True) is None:
                raise RoomNotFound(f"no room {room!r}")
            row = RuleSetVersion(
                room_id=room,
                version=await repository.next_version(tx.session, room),
                rules=rules.model_dump(mode="json"),
                set_by=principal.sub,
                set_at=now_ms(),
            )
            await repository.add_rule_set(tx.session, row)
            cached = codec.dumps({"version": row.version, "rules": row.rules})

            async def refresh() -> None:
                await self._resources.redis.set(RoomKeys(room).rules, cached)

            tx.after_commit(refresh)
        return _row_out(row)

    async def in_force(self, room: str) -> RuleSetInForce:
        """For workers: the Redis copy, read back from the record after a Redis loss."""

        async def load() -> bytes:
            async with self._resources.sessionmaker() as session:
                row = await repository.latest_rule_set(session, room)
            if row is None:
                return codec.dumps({"version": 0, "rules": {"rules": []}})
            return codec.dumps({"version": row.version, "rules": row.rules})

        (rules,) = await read_through(self._resources.redis, Copy(RoomKeys(room).rules, load))
        return _parsed(rules)


def firing_out(row: RuleFiring) -> FiringOut:
    return FiringOut.model_validate(row, from_attributes=True)


class FiringService:
    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        self._redis: Redis = resources.redis
        self._claim = self._redis.register_script(_CLAIM)
        self._rooms = RoomCache(resources)
        # What this process saw its claims answer, per room, version and rule: the instant of
        # the last firing, and the rules that reached their maximum. It only spares the claims
        # bound to be refused (a busy keyword rule in its cool-down matches chat after chat);
        # the claim script stays the judge.
        self._last_fired: dict[str, int] = {}
        self._spent: set[str] = set()

    async def claim(
        self,
        room: str,
        rules: RuleSetInForce,
        firings: list[Firing],
        started_ms: int,
    ) -> list[dict[str, Any]]:
        """Claim each firing unless it was claimed before or its rule's cool-down or maximum
        says no; the claimed ones wait in the room's pending hash until they are carried out."""
        keys = RoomKeys(room)
        pending: list[dict[str, Any]] = []
        calls: list[ScriptCall] = []
        memo_keys: list[str] = []
        for firing in sorted(firings, key=lambda f: f.at_ms):
            rule = firing.rule
            memo = f"{room}\0{rules.version}:{rule.id}"
            if memo in self._spent or _cooling(rule, self._last_fired.get(memo), firing.at_ms):
                continue
            memo_keys.append(memo)
            record: dict[str, Any] = {
                "id": firing_id(room, rule.id, rules.version, firing.instant),
                "room_id": room,
                "rule_id": rule.id,
                "version": rules.version,
                "at": firing.at_ms,
                "offset_ms": firing.at_ms - started_ms,
                "reason": firing.reason,
                "actions": [action.model_dump(mode="json") for action in rule.actions],
                "dry_run": rules.rules.dry_run or rule.dry_run,
            }
            pending.append(record)
            calls.append(
                (
                    [keys.rules_claimed, keys.rules_counts, keys.rules_pending],
                    [
                        record["id"],
                        f"{rules.version}:{rule.id}",
                        firing.at_ms,
                        rule.cooldown_s * 1000,
                        rule.max_firings or 0,
                        codec.dumps(record | {"claimed_at": now_ms()}),
                    ],
                )
            )
        # Pipelined scripts run in order, each seeing the one before: a batch holding two
        # firings of one rule keeps to the rule's cool-down.
        claimed = []
        results = await run_many(self._redis, self._claim, calls)
        for record, memo, result in zip(pending, memo_keys, results, strict=True):
            if isinstance(result, Exception):
                raise result
            if result == 1:
                claimed.append(record)
                self._last_fired[memo] = max(record["at"], self._last_fired.get(memo, 0))
            elif result == _SPENT:
                self._spent.add(memo)
        for record in claimed:
            await self.carry_out(room, record)
        return claimed

    async def carry_out(self, room: str, record: dict[str, Any]) -> None:
        """Record the firing, run its actions in order, each once, and push it to the
        consoles. Safe to run again or concurrently on the same firing (recovery)."""
        row = {key: record[key] for key in record if key != "claimed_at"}
        dry_run = bool(record["dry_run"])
        async with transaction(self._resources.sessionmaker) as tx:
            await repository.insert_firing(
                tx.session,
                row
                | {
                    "status": "dry_run" if dry_run else "pending",
                    "actions_done": 0,
                    "results": [],
                    "created_at": now_ms(),
                },
            )
        if not dry_run:
            await self._run_actions(room, record)
        await self._resources.publisher.publish_once(
            room, [(f"rule:{record['id']}", [Message("rule", await self._message(record))])]
        )
        await self._redis.hdel(RoomKeys(room).rules_pending, record["id"])

    async def recover(self, room: str) -> None:
        """Finish the firings a worker claimed and did not carry out (it died, or is slow)."""
        cutoff = now_ms() - STALE_PENDING_MS
        waiting: dict[bytes, bytes] = await self._redis.hgetall(  # type: ignore[assignment]
            RoomKeys(room).rules_pending
        )
        for raw in waiting.values():
            record: dict[str, Any] = codec.loads(raw)
            if record["claimed_at"] <= cutoff:
                await self.carry_out(room, record)

    async def firings(self, room: str, limit: int) -> list[FiringOut]:
        await self._rooms.state(room)  # 404 for an unknown room
        async with self._resources.sessionmaker() as session:
            return [firing_out(row) for row in await repository.list_firings(session, room, limit)]

    async def _message(self, record: dict[str, Any]) -> dict[str, Any]:
        async with self._resources.sessionmaker() as session:
            row = await repository.get_firing(session, record["id"])
        fields = ("id", "rule_id", "version", "at", "offset_ms", "reason", "actions", "dry_run")
        message = {key: record[key] for key in fields}
        return message | {
            "results": row.results if row else [],
            "status": row.status if row else "pending",
        }

    async def _run_actions(self, room: str, record: dict[str, Any]) -> None:
        actions = record["actions"]
        for index, raw in enumerate(actions):
            await self._run_action(room, record["id"], index, len(actions), raw)

    async def _run_action(
        self, room: str, firing: str, index: int, count: int, raw: dict[str, Any]
    ) -> None:
        """Under the firing's row lock, if it is the next one: an action that writes
        PostgreSQL does so in the transaction that marks it done, so it happens once; the
        Redis ones are idempotent (a pin, a message published once per firing and action)."""
        action: Action = ACTION.validate_python(raw)
        try:
            async with transaction(self._resources.sessionmaker) as tx:
                row = await repository.lock_firing(tx.session, firing)
                if row is None or row.actions_done != index:
                    return
                result = await self._act(tx, room, firing, index, action)
                _mark_done(row, result, last=index == count - 1)
        except LivectlError as exc:
            # The room ended, the template or product went away: recorded, never retried.
            async with transaction(self._resources.sessionmaker) as tx:
                row = await repository.lock_firing(tx.session, firing)
                if row is not None and row.actions_done == index:
                    failure = {"error": exc.code, "detail": exc.detail}
                    _mark_done(row, {"kind": action.kind} | failure, last=index == count - 1)

    async def _act(
        self, tx: Transaction, room: str, firing: str, index: int, action: Action
    ) -> dict[str, Any]:
        result: dict[str, Any] = {"kind": action.kind}
        match action:
            case DropCoupon(template_id=template):
                drop = await CouponService(self._resources).drop(
                    tx, room, DropFromTemplate(template_id=template), RULES_ACTOR
                )
                return result | {"drop_id": drop.id}
            case RaiseAlert(level=level, title=title):
                alert = await AlertService(self._resources).add_alert(
                    tx,
                    room,
                    kind="rule",
                    level=level,
                    title=title,
                    samples=[],
                    figures={"firing_id": firing},
                )
                return result | {"alert_id": alert.id}
            case PinProduct(product_id=product):
                await RoomService(self._resources).pin(room, product)
                return result | {"product_id": product}
            case StartGiveaway(giveaway=spec):
                giveaway = await GiveawayService(self._resources).start(
                    room, spec, RULES_ACTOR.sub, key=f"{firing}:{index}"
                )
                return result | {"giveaway_id": giveaway.id}
            case Announce(text=text):
                message = Message("announcement", {"text": text, "firing_id": firing})
                for channel in (Channel.CONSOLE, Channel.LIVE):
                    await self._resources.publisher.publish_once(
                        room, [(f"rule:{firing}:{index}", [message])], channel
                    )
                return result


def _cooling(rule: Rule, last_fired: int | None, at_ms: int) -> bool:
    return last_fired is not None and 0 <= at_ms - last_fired < rule.cooldown_s * 1000


def _mark_done(row: RuleFiring, result: dict[str, Any], *, last: bool) -> None:
    row.actions_done += 1
    row.results = [*row.results, result]
    if last:
        row.status = "done"
