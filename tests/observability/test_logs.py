"""Logs: one JSON object a line with the bound context ids, ids that follow their context and
nothing else, secrets masked, uvicorn's loggers sent through the same formatter."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
from pydantic import ValidationError

from industrydata.config import Settings
from industrydata.observability import (
    JsonFormatter,
    TextFormatter,
    bind_log_ids,
    configure_logging,
    current_log_ids,
    in_log_context,
    log_context,
    redact,
)
from industrydata.observability.logs import UVICORN_LOGGERS

JWT = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImRldiJ9.eyJ0aWQiOiJ0ZW5hbnQiLCJvaWQiOiJ1c2VyIn0."
    "c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
)
ACCOUNT_KEY = "c2VjcmV0LWFjY291bnQta2V5LW9mLXRoZS10ZXN0LXN0b3JhZ2UtYWNjb3VudA=="


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of its own whose records go, as JSON, to the returned buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"tests.observability.{threading.get_ident()}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, buffer
    finally:
        logger.removeHandler(handler)


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_a_json_line_has_time_level_logger_message_and_the_bound_ids(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = captured

    with log_context(run_id="run-1", tenant_id="tenant-1"):
        logger.warning("run %s failed", "run-1")
    logger.info("outside")

    inside, outside = lines(buffer)
    assert inside["level"] == "WARNING"
    assert inside["logger"] == logger.name
    assert inside["message"] == "run run-1 failed"
    assert (inside["run_id"], inside["tenant_id"]) == ("run-1", "tenant-1")
    assert "request_id" not in inside and "job_id" not in inside
    assert isinstance(inside["time"], str) and inside["time"].endswith("Z")
    parsed = datetime.fromisoformat(inside["time"].replace("Z", "+00:00"))
    assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0
    assert not set(outside) & {"request_id", "run_id", "job_id", "tenant_id"}


def test_an_exception_is_in_the_line_and_every_record_is_one_line(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = captured

    try:
        raise ValueError("broken\nvalue ünïcode \u2028 separator")
    except ValueError:
        logger.exception("first line\nsecond line")

    text = buffer.getvalue()
    assert text.count("\n") == 1 and "\u2028" not in text
    (entry,) = lines(buffer)
    assert entry["message"] == "first line\nsecond line"
    assert "Traceback" in entry["exception"] and "ValueError: broken" in entry["exception"]


def test_log_context_restores_the_previous_ids_after_nesting_and_errors() -> None:
    with log_context(request_id="outer", job_id="job-1"):
        with pytest.raises(RuntimeError), log_context(request_id="inner", job_id=None):
            assert current_log_ids() == {"request_id": "inner"}
            raise RuntimeError
        assert current_log_ids() == {"request_id": "outer", "job_id": "job-1"}
    assert current_log_ids() == {}


def test_log_context_refuses_an_unknown_id() -> None:
    with pytest.raises(TypeError, match="flow_id"), log_context(flow_id="f"):
        pass


def test_a_function_in_log_context_binds_its_arguments_and_undoes_what_it_binds() -> None:
    seen: list[dict[str, str]] = []

    @in_log_context
    def execute(run_id: str, *, tenant: str) -> None:
        bind_log_ids(tenant_id=tenant)
        seen.append(current_log_ids())

    with log_context(job_id="job-7"):
        execute("run-3", tenant="tenant-9")
        assert current_log_ids() == {"job_id": "job-7"}

    assert seen == [{"run_id": "run-3", "job_id": "job-7", "tenant_id": "tenant-9"}]
    assert current_log_ids() == {}


def test_ids_bound_by_one_task_of_a_thread_pool_do_not_reach_the_next() -> None:
    @in_log_context
    def first(run_id: str) -> dict[str, str]:
        bind_log_ids(tenant_id="tenant-1")
        return current_log_ids()

    with ThreadPoolExecutor(max_workers=1) as pool:
        during = pool.submit(first, "run-1").result()
        after = pool.submit(current_log_ids).result()

    assert during == {"run_id": "run-1", "tenant_id": "tenant-1"}
    assert after == {}


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"Authorization: Bearer {JWT}", JWT),
        ("authorization: bearer opaque-token_value.123", "opaque-token_value.123"),
        (f"token {JWT} refused", JWT),
        (f"DefaultEndpointsProtocol=https;AccountName=a;AccountKey={ACCOUNT_KEY};", ACCOUNT_KEY),
        ("SharedAccessSignature=sv=2024&sig=abcDEF%2B123;", "abcDEF%2B123"),
        ("https://a.blob.core.windows.net/c?sv=2024&sig=abc%2Fdef&se=2030", "abc%2Fdef"),
        ("postgresql+psycopg://app:s3cret-pw@db.internal:5432/industrydata", "s3cret-pw"),
        ("password=hunter2 host=db", "hunter2"),
        ("DB_PASSWORD=hunter3", "hunter3"),
    ],
)
def test_redact_masks_tokens_keys_signatures_and_passwords(text: str, secret: str) -> None:
    masked = redact(text)

    assert secret not in masked
    assert "***" in masked


def test_redact_leaves_ordinary_text_alone() -> None:
    text = 'GET /beta/industryData/dataShareOutgoingFlows?$top=5 HTTP/1.1" 200 run abc-def'
    assert redact(text) == text


def test_a_secret_in_a_message_or_an_exception_is_masked_in_both_formats(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = captured
    text_buffer = io.StringIO()
    text_handler = logging.StreamHandler(text_buffer)
    text_handler.setFormatter(TextFormatter())
    logger.addHandler(text_handler)
    try:
        try:
            raise ConnectionError(f"AccountKey={ACCOUNT_KEY}")
        except ConnectionError:
            logger.exception("request with Bearer %s", JWT)
    finally:
        logger.removeHandler(text_handler)

    for output in (buffer.getvalue(), text_buffer.getvalue()):
        assert JWT not in output and ACCOUNT_KEY not in output
        assert "Bearer ***" in output and "AccountKey=***" in output


def test_a_text_line_keeps_the_message_on_one_line_with_its_ids() -> None:
    message = "a\nb\x1b[2J"
    record = logging.LogRecord("industrydata.runs", logging.INFO, __file__, 1, message, (), None)

    with log_context(run_id="run-5"):
        line = TextFormatter().format(record)

    assert "\n" not in line and "\x1b" not in line
    assert line.endswith("INFO industrydata.runs: a\\nb\\x1b[2J [run_id=run-5]")


def test_settings_read_the_log_format(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().log_format == "text"
    monkeypatch.setenv("INDUSTRYDATA_LOG_FORMAT", "json")
    assert Settings().log_format == "json"
    monkeypatch.setenv("INDUSTRYDATA_LOG_FORMAT", "yaml")
    with pytest.raises(ValidationError, match="log_format"):
        Settings()


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """The logging configuration of the test process, put back after the test."""
    names = ["", *UVICORN_LOGGERS, "azure"]
    saved = {
        name: (logger.handlers[:], logger.level, logger.propagate, logger.disabled)
        for name in names
        for logger in [logging.getLogger(name)]
    }
    try:
        yield
    finally:
        for name, (handlers, level, propagate, disabled) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate, logger.disabled = propagate, disabled


def test_configured_json_logging_sends_uvicorns_lines_through_the_formatter(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json")

    with log_context(request_id="req-1"):
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/healthz", "1.1", 200
        )
    logging.getLogger("uvicorn.error").info("Uvicorn running on %s", "http://127.0.0.1:8000")
    logging.getLogger("industrydata.service").warning("marked %d run(s) as failed", 2)
    logging.getLogger("azure.core.pipeline").info("Request URL: 'https://a.blob/...'")

    entries = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(entry["logger"], entry["message"]) for entry in entries] == [
        ("uvicorn.access", '127.0.0.1:5000 - "GET /healthz HTTP/1.1" 200'),
        ("uvicorn.error", "Uvicorn running on http://127.0.0.1:8000"),
        ("industrydata.service", "marked 2 run(s) as failed"),
    ]
    assert entries[0]["request_id"] == "req-1"


def test_an_unknown_log_format_is_refused(restored_logging: None) -> None:
    with pytest.raises(ValueError, match="text, json"):
        configure_logging("xml")  # type: ignore[arg-type]
