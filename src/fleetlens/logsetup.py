"""Structured logging for every role: key=value lines on a terminal, JSON lines for machines."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

# Secrets never reach a log line: API tokens, passwords in URLs, and values of secret-looking keys.
_TOKEN = re.compile(r"\b(flt_[0-9a-f]{16}_)[A-Za-z0-9_\-]+")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
_SECRET_KEYS = ("token", "password", "passwd", "secret", "authorization", "cookie", "sasl")


def redact(text: str) -> str:
    """``text`` with API tokens' secrets and URL passwords replaced by ``***``."""
    return _URL_PASSWORD.sub(r"\1***@", _TOKEN.sub(r"\1***", text))


def _redact_event(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if any(word in key.lower() for word in _SECRET_KEYS) and key != "event":
            event[key] = "***"
        elif isinstance(value, str):
            event[key] = redact(value)
    return event


class _RedactingFormatter(logging.Formatter):
    """Stdlib log lines (uvicorn, httpx, librdkafka wrappers) with secrets redacted too."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(level: str = "info", fmt: str = "console") -> None:
    """Route structlog and stdlib logging to stderr, as readable lines or JSON."""
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        # exceptions become text before redaction (and never carry local variables)
        processors=[*shared, structlog.processors.format_exc_info, _redact_event, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler])


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structured logger named after its module."""
    return structlog.get_logger(name)
