"""Logging set-up: JSON lines (or text) carrying the message guid, partner, stage and claim."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

CONTEXT_FIELDS = ("guid", "partner", "stage", "claim")
# What the pipeline is working on now; read by the formatter on every line it writes.
_context: ContextVar[dict[str, str] | None] = ContextVar("cebhub_log_context", default=None)


def set_context(**fields: str | None) -> None:
    """Start a new context (one inbound item): these fields, nothing else."""
    _context.set({k: str(v) for k, v in fields.items() if v})


def update_context(**fields: str | None) -> None:
    """Add to the current context (the guid once it is known, the stage as it changes)."""
    current = dict(_context.get() or {})
    current.update({k: str(v) for k, v in fields.items() if v})
    _context.set(current)


def clear_context() -> None:
    _context.set(None)


def current_context() -> dict[str, str]:
    return dict(_context.get() or {})


@contextmanager
def context(**fields: str | None) -> Iterator[None]:
    """These fields for the lines logged inside the block; the outer context comes back after."""
    token = _context.set({**(_context.get() or {}), **{k: str(v) for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(current_context())
        for name in CONTEXT_FIELDS:  # extra={"guid": …} on the call wins over the context
            value = getattr(record, name, None)
            if value:
                out[name] = str(value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The classic line, with the context fields that are set appended as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = current_context()
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value:
                fields[name] = str(value)
        if fields:
            line += " " + " ".join(f"{k}={fields[k]}" for k in CONTEXT_FIELDS if k in fields)
        return line


def default_format(stream=None) -> str:
    """json when the output is not a terminal (a service, a pipe), text when someone watches."""
    stream = stream or sys.stderr
    return "text" if getattr(stream, "isatty", lambda: False)() else "json"


def handler_for(fmt: str, stream=None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler._cebhub = True  # type: ignore[attr-defined]  # ours: a later setup replaces it
    return handler


def setup(verbose: bool = False, fmt: str | None = None, stream=None) -> logging.Handler | None:
    """The root logger writes `fmt` (json | text) to `stream`.

    Like logging.basicConfig, it leaves a root logger that someone else configured alone (an
    embedding application, pytest's log capture); None then. A handler of an earlier call is
    replaced.
    """
    for chatty in ("alembic", "apscheduler", "paramiko.transport", "pika"):
        logging.getLogger(chatty).setLevel(logging.WARNING)  # their INFO lines are noise here
    root = logging.getLogger()
    if any(not getattr(h, "_cebhub", False) for h in root.handlers):
        return None
    for old in list(root.handlers):
        root.removeHandler(old)
    stream = stream or sys.stderr
    handler = handler_for(fmt or default_format(stream), stream)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    return handler
