"""schemathesis against the gateway's OpenAPI schema: generated calls, valid and not, to every
operation, as an admin of every room; no answer may be a 5xx or differ from the schema.

Bounded for the suite: a few examples per operation, derandomized (the same calls each run).
Each operation runs on its own and the failures are reported together (schemathesis's pytest
plugin does not run under this pytest)."""

from __future__ import annotations

from typing import Any

import httpx
import hypothesis
import schemathesis
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Err

from livectl.auth.tokens import Role
from tests.conftest import Stack, chat

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
SETTINGS = hypothesis.settings(
    max_examples=30,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)


def test_every_answer_is_documented_and_never_a_5xx(stack: Stack) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.base_url}/openapi.json")
    headers = stack.headers(Role.ADMIN)
    failures: dict[str, str] = {}
    operations = 0
    for found in schema.get_all_operations():
        if isinstance(found, Err):
            failures[f"schema {found.err()}"] = "the schema has an operation it cannot read"
            continue
        operation = found.ok()
        operations += 1

        @SETTINGS
        @hypothesis.given(case=operation.as_strategy())
        def call(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            call()
        except Exception as exc:  # every operation's failure, not only the first
            failures[operation.label] = str(exc)[:1500]
    assert operations >= 30
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


async def test_text_postgresql_cannot_hold_is_a_422_and_stores_nothing(
    admin: httpx.AsyncClient, room: str
) -> None:
    # Found by the test above: a NUL character in a room's title was a 500.
    created = await admin.post("/v1/rooms", json={"id": "nul-room", "title": "直播\u0000间"})
    assert (created.status_code, created.json()["error"]) == (422, "validation_error")
    assert (await admin.get("/v1/rooms/nul-room")).status_code == 404
    # An event holding one is rejected as it arrives (it could never be archived).
    answer = await admin.post(
        f"/v1/rooms/{room}/events",
        json=[
            chat("正常"),
            chat("坏\u0000字"),
            chat("x") | {"user": {"id": "u2", "name": "\u0000"}},
        ],
    )
    assert answer.status_code == 202
    assert answer.json()["accepted"] == 1
    assert [r["index"] for r in answer.json()["rejected"]] == [1, 2]
