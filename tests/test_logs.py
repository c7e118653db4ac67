"""Tokens never reach the gateway's logs."""

from __future__ import annotations

import io
import logging
import logging.config

from livectl.kit.logs import RedactTokens, gateway_log_config


def test_a_socket_url_is_logged_without_its_token() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", "/v1/rooms/r/console?batch=1&token=eyJ.secret.sig&since=4"),
        None,
    )
    assert RedactTokens().filter(record)
    assert record.getMessage() == (
        '127.0.0.1:5000 - "WebSocket /v1/rooms/r/console?batch=1&token=***&since=4" [accepted]'
    )


def test_every_gateway_log_handler_redacts() -> None:
    config = gateway_log_config()
    stream = io.StringIO()
    for handler in config["handlers"].values():
        handler.update({"class": "logging.StreamHandler", "stream": stream})
    logging.config.dictConfig(config)
    try:
        logging.getLogger("uvicorn.error").info(
            '%s - "WebSocket %s" [accepted]', "127.0.0.1:1", "/x?token=abc.def"
        )
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", "/x?token=abc.def", "1.1", 200
        )
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    assert "abc.def" not in stream.getvalue()
    assert stream.getvalue().count("token=***") == 2
