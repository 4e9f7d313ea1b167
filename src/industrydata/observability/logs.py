"""Logs of both process kinds (API and worker): one record a line, as text or as JSON, each
carrying the ids of the work it belongs to.

The ids (``request_id``, ``run_id``, ``job_id``, ``tenant_id``) live in context variables,
so they follow a request through async code and FastAPI's thread pool, and stay in the
thread or task that set them (a thread pool's next task does not inherit them).
``log_context`` binds ids for a block and restores the previous ones after it;
``in_log_context`` makes each call of a function such a block; ``bind_log_ids`` adds an id
learnt half-way through a block, undone when that block ends.

No secret may reach a log: every message and exception text passes through ``redact``, which
masks bearer tokens, JWTs, storage keys and signatures, and passwords in URLs, whatever logger
wrote them (ours, uvicorn's, a library's). The code logs no credential on purpose; ``redact``
is the second line of defence.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import logging.config
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any, Literal, ParamSpec, TypeVar

__all__ = [
    "CONTEXT_IDS",
    "JsonFormatter",
    "LogFormat",
    "TextFormatter",
    "bind_log_ids",
    "configure_logging",
    "current_log_ids",
    "error_summary",
    "in_log_context",
    "log_context",
    "logging_config",
    "redact",
]

LogFormat = Literal["text", "json"]

CONTEXT_IDS = ("request_id", "run_id", "job_id", "tenant_id")
"""The ids a log record carries when they are bound, in this order."""

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")

_IDS: dict[str, ContextVar[str | None]] = {
    name: ContextVar(f"industrydata_log_{name}", default=None) for name in CONTEXT_IDS
}

_MASK = "***"
_SECRETS = (
    # (a text the secret's context must hold, lower case: a cheap test first; pattern; mask)
    # Authorization: Bearer <token>, in any case.
    ("bearer", re.compile(r"(?i)\b(bearer)\s+[\w\-.~+/]+=*"), rf"\1 {_MASK}"),
    # A JWT anywhere (header.payload.signature, each base64url; the header starts {" → eyJ).
    ("eyj", re.compile(r"\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*"), _MASK),
    # Connection-string parts and URL parameters that are secrets (db_password= too).
    (
        "=",
        re.compile(r"(?i)(accountkey|sharedaccesssignature|sig|password|pwd)=[^;&\s'\"]+"),
        rf"\1={_MASK}",
    ),
    # The password in a URL's userinfo: scheme://user:password@host.
    ("://", re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/@\s]*):[^@/\s]+@"), rf"\1:{_MASK}@"),
)

P = ParamSpec("P")
R = TypeVar("R")


def redact(text: str) -> str:
    """``text`` with every secret it recognises replaced by ``***``."""
    lowered = text.lower()
    for needle, pattern, replacement in _SECRETS:
        if needle in lowered:
            text = pattern.sub(replacement, text)
    return text


def error_summary(error: BaseException) -> str:
    """One line for a log about ``error``: the first line of its driver's message (the rest
    repeats SQL and parameters), secrets masked."""
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    return redact(lines[0]) if lines else type(cause).__name__


def current_log_ids() -> dict[str, str]:
    """The ids bound now, in ``CONTEXT_IDS`` order (unbound ones left out)."""
    ids = {name: _IDS[name].get() for name in CONTEXT_IDS}
    return {name: value for name, value in ids.items() if value is not None}


def _variable(name: str) -> ContextVar[str | None]:
    try:
        return _IDS[name]
    except KeyError:
        raise TypeError(f"{name!r} is not a log context id ({', '.join(CONTEXT_IDS)})") from None


@contextmanager
def log_context(**ids: str | None) -> Iterator[None]:
    """Bind ``ids`` (``None`` unbinds one) for the block; the previous values afterwards.

    Ids bound inside the block with ``bind_log_ids`` are undone too when they were named here.
    """
    variables = [(_variable(name), value) for name, value in ids.items()]
    tokens = [(var, var.set(value)) for var, value in variables]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def bind_log_ids(**ids: str | None) -> None:
    """Bind ``ids`` until the enclosing ``log_context`` (or ``in_log_context`` call) that
    named them ends: for an id learnt half-way through, such as a run's tenant."""
    for name, value in ids.items():
        _variable(name).set(value)


def in_log_context(function: Callable[P, R]) -> Callable[P, R]:
    """Each call of ``function`` is a log context of its own: its arguments named after a
    context id (``run_id``, ``job_id`` ...) are bound, and every id it binds with
    ``bind_log_ids`` is undone when it returns. Ids bound by the caller stay bound."""
    signature = inspect.signature(function)

    @functools.wraps(function)
    def call_in_context(*args: P.args, **kwargs: P.kwargs) -> R:
        arguments = signature.bind_partial(*args, **kwargs).arguments
        ids = {name: arguments.get(name, _IDS[name].get()) for name in CONTEXT_IDS}
        with log_context(**{name: None if v is None else str(v) for name, v in ids.items()}):
            return function(*args, **kwargs)

    return call_in_context


def _utc_time(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    if record.exc_info:
        return formatter.formatException(record.exc_info)
    return record.exc_text or None


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
    every bound context id, ``exception`` when the record has one. Non-ASCII characters and
    line breaks are escaped, so a record is always exactly one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc_time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            **current_log_ids(),
        }
        exception = _exception_text(self, record)
        if exception:
            entry["exception"] = redact(exception)
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=True, default=str)


class TextFormatter(logging.Formatter):
    """``<UTC time> <LEVEL> <logger>: <message> [id=… …]``; the message is kept on one line
    (line breaks and other invisible characters escaped), a traceback follows on its own
    lines."""

    def format(self, record: logging.LogRecord) -> str:
        message = _one_line(redact(record.getMessage()))
        ids = current_log_ids()
        suffix = (" [" + " ".join(f"{k}={v}" for k, v in ids.items()) + "]") if ids else ""
        line = f"{_utc_time(record)} {record.levelname} {record.name}: {message}{suffix}"
        exception = _exception_text(self, record)
        if exception:
            line += "\n" + redact(exception)
        if record.stack_info:
            line += "\n" + redact(self.formatStack(record.stack_info))
        return line


def _one_line(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


_FORMATTERS: dict[str, type[logging.Formatter]] = {"text": TextFormatter, "json": JsonFormatter}


def logging_config(format: LogFormat = "text", level: int | str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` document: every record (ours, uvicorn's, libraries')
    goes to one stderr handler in ``format``. uvicorn takes it as ``log_config`` and applies
    it in each of its processes."""
    if format not in _FORMATTERS:
        raise ValueError(f"log format must be one of {', '.join(_FORMATTERS)}, not {format!r}")
    formatter = _FORMATTERS[format]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"industrydata": {"()": f"{formatter.__module__}.{formatter.__name__}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "industrydata",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # uvicorn's loggers lose the handlers of its own configuration and go to the root.
            **{name: {"handlers": [], "propagate": True} for name in UVICORN_LOGGERS},
            # The Azure SDK logs every HTTP request and response at INFO.
            "azure": {"level": "WARNING"},
        },
    }


def configure_logging(format: LogFormat = "text", level: int | str = "INFO") -> None:
    """Send every log record of this process to stderr in ``format`` (``text`` or ``json``)."""
    logging.config.dictConfig(logging_config(format, level))
