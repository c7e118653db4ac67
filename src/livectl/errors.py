"""One error base with a status; handlers turn everything into ``{"error", "detail"}``."""

from __future__ import annotations

from typing import Any, ClassVar

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from livectl.kit import codec
from livectl.kit.codec import JSONBytesResponse


class LivectlError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    # On a socket, an error with a close code ends the connection (after the answers before
    # it); without one, the socket answers the error and reads on.
    close_code: ClassVar[int | None] = None

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.code)
        self.detail = detail or self.code.replace("_", " ")

    def headers(self) -> dict[str, str] | None:
        return None


class Unauthorized(LivectlError):
    status = 401
    code = "unauthorized"


class Forbidden(LivectlError):
    status = 403
    code = "forbidden"


class NotFound(LivectlError):
    status = 404
    code = "not_found"


class RoomNotFound(NotFound):
    code = "room_not_found"


class ProductNotFound(NotFound):
    code = "product_not_found"


class AlertNotFound(NotFound):
    code = "alert_not_found"


class Conflict(LivectlError):
    status = 409
    code = "conflict"


class RoomExists(Conflict):
    code = "room_exists"


class TemplateNotFound(NotFound):
    code = "template_not_found"


class SoldOut(Conflict):
    code = "sold_out"


class LimitReached(Conflict):
    code = "limit_reached"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


class CouponEnded(LivectlError):
    status = 410
    code = "ended"


class NotEligible(LivectlError):
    status = 403
    code = "not_eligible"


class AlertResolved(Conflict):
    code = "alert_resolved"


class InvalidJson(LivectlError):
    code = "invalid_json"


class InvalidBody(LivectlError):
    code = "invalid_body"


class BodyTooLarge(LivectlError):
    status = 413
    code = "body_too_large"


class TooManyEvents(LivectlError):
    status = 413
    code = "too_many_events"


class FrameTooLarge(LivectlError):
    status = 413
    code = "frame_too_large"


class BinaryFrame(LivectlError):
    code = "binary_frame"


class ValidationFailed(LivectlError):
    status = 422
    code = "validation_error"


class InvalidRules(LivectlError):
    status = 422
    code = "invalid_rules"


class RateLimited(LivectlError):
    """Past a limit against abuse (docs/api.md, "Limits"): wait ``retry_after_s`` and retry."""

    status = 429
    code = "rate_limited"
    close_code = 4029

    def __init__(self, detail: str = "", retry_after_s: int = 1) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after_s)}


class OriginNotAllowed(LivectlError):
    status = 403
    code = "origin_not_allowed"
    close_code = 4003


class ServiceUnavailable(LivectlError):
    status = 503
    code = "unavailable"


def error_body(code: str, detail: str) -> dict[str, str]:
    return {"error": code, "detail": detail}


def socket_error(exc: LivectlError) -> str:
    """An error told over a socket that stays open: ``{"type": "error", "error", "detail"}``."""
    return codec.dumps_str({"type": "error", **error_body(exc.code, exc.detail)})


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


# PostgreSQL's "character not in repertoire" (NUL in text) and "untranslatable character"
# (\u0000 in JSONB).
_UNSTORABLE_TEXT = frozenset({"22021", "22P05"})


def describe_validation_errors(errors: Any) -> str:
    parts = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "path", "query"))
        parts.append(f"{loc}: {err.get('msg', 'invalid')}" if loc else str(err.get("msg")))
    return "; ".join(parts)[:2000]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LivectlError)
    async def _livectl_error(_: Request, exc: LivectlError) -> JSONBytesResponse:
        return JSONBytesResponse(
            error_body(exc.code, exc.detail), status_code=exc.status, headers=exc.headers()
        )

    @app.exception_handler(RedisError)
    async def _redis_error(_: Request, exc: RedisError) -> JSONBytesResponse:
        # Redis down or every connection busy past the pool timeout: the caller may retry.
        return JSONBytesResponse(
            error_body(ServiceUnavailable.code, f"the room state store is unavailable: {exc}"),
            status_code=ServiceUnavailable.status,
        )

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> JSONBytesResponse:
        # Text PostgreSQL cannot hold (a NUL character) is bad input, found only as it is
        # written; the transaction was rolled back, so nothing was stored.
        if getattr(exc.orig, "sqlstate", None) in _UNSTORABLE_TEXT:
            return JSONBytesResponse(
                error_body("validation_error", "text may not contain NUL characters"),
                status_code=422,
            )
        raise exc

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONBytesResponse:
        if any(error.get("type") == "json_invalid" for error in exc.errors()):
            return JSONBytesResponse(
                error_body("invalid_json", describe_validation_errors(exc.errors())),
                status_code=400,
            )
        return JSONBytesResponse(
            error_body("validation_error", describe_validation_errors(exc.errors())),
            status_code=422,
        )

    @app.exception_handler(WebSocketRequestValidationError)
    async def _socket_validation_error(
        websocket: WebSocket, exc: WebSocketRequestValidationError
    ) -> None:
        # Refused before the upgrade with the same status and body a REST call would get.
        await websocket.send_denial_response(
            JSONBytesResponse(
                error_body("validation_error", describe_validation_errors(exc.errors())),
                status_code=422,
            )
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONBytesResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        return JSONBytesResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )
