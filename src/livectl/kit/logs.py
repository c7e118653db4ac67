"""Logging that keeps secrets out of log files."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

import uvicorn.config

_TOKEN = re.compile(r"(token=)[^&\s\"']+")


class RedactTokens(logging.Filter):
    """Tokens ride in WebSocket URLs (``?token=``: browsers cannot set headers there), and the
    server logs every socket's URL as it connects: those lines must not carry them."""

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn puts URLs in the arguments, and its access formatter takes them apart again:
        # redact them one by one, and the message itself only when it has none.
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_redact(arg) for arg in record.args)
        elif not record.args:
            record.msg = _redact(record.msg)
        return True


def _redact(value: object) -> object:
    return _TOKEN.sub(r"\1***", value) if isinstance(value, str) and "token=" in value else value


def gateway_log_config() -> dict[str, Any]:
    """uvicorn's own logging set-up with every handler redacting tokens. Given to uvicorn as a
    config (not added to loggers here) so that every worker process it spawns applies it."""
    config: dict[str, Any] = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": f"{__name__}.RedactTokens"}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_tokens")
    return config
