"""The OpenAPI schema tells every error answer the way the handlers give it.

FastAPI documents only the success and its own 422 shape (``{"detail": [...]}``), which
livectl never sends: every error is ``{"error", "detail"}`` (errors.py). So each operation
gets the error statuses it can answer, with that body, and 429 with its ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_ERROR_SCHEMA = {
    "type": "object",
    "title": "Error",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "snake_case code, e.g. room_not_found"},
        "detail": {"type": "string", "description": "what went wrong, for people"},
    },
}
# Any call may meet these (a store down, a limit passed).
_ALWAYS = {503: "unavailable: Redis or PostgreSQL is not answering; retry shortly"}
# Calls under /v1 carry a token and room ids, and most take a body.
_V1 = {
    400: "bad_request, invalid_json, invalid_body",
    401: "unauthorized: no token, or a malformed, forged or expired one",
    403: "forbidden: another room's token or a role without the right",
    404: "not_found and its kinds (room_not_found, product_not_found, ...)",
    409: "conflict and its kinds (room_exists, sold_out, room_ended, ...)",
    410: "ended",
    413: "body_too_large, too_many_events",
    422: "validation_error",
    429: "rate_limited: past a limit (docs/api.md, Limits); see Retry-After",
}
_RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}},
}


def document_errors(app: FastAPI) -> None:
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def with_errors(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = _ERROR_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path, operations in schema.get("paths", {}).items():
        answers = _ALWAYS | _V1 if path.startswith("/v1/") else _ALWAYS
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in answers.items():
                response = responses.setdefault(str(status), {"description": description})
                response["content"] = {"application/json": {"schema": _ERROR_REF}}
                if status == 429:
                    response["headers"] = _RETRY_AFTER
    return schema
