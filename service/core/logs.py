"""Log lines: one JSON object per line (BACKPROP_LOG_FORMAT=json, the default), or text.

A JSON line carries ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message`` and
``pid``, then every field the call passed in ``extra`` (a worker's lines about a job
carry ``job_id`` and ``attempt``: service.queue.worker.JobLog), and ``exc`` with the
traceback when there is one:

    {"time": "2026-11-28T01:35:07.123Z", "level": "info", "logger": "service.queue.worker",
     "message": "job 9ed9... attempt 1: claimed by host:4242", "pid": 4242,
     "job_id": "9ed9...", "attempt": 1}

``configure_logging`` sets up the processes the CLI starts (`backprop serve`,
`backprop worker`, `python -m service.queue.worker`); ``uvicorn_log_config`` hands uvicorn's
loggers to the same handler, so its startup, error and access lines are JSON too.
Python warnings and uncaught exceptions become log records as well: in JSON mode a
process writes nothing to stderr that is not a JSON line.
"""

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal

from service.core.settings import Settings

LogFormat = Literal["json", "text"]

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s[%(process)d]: %(message)s"

# The attributes every LogRecord has; anything else on a record came from ``extra``.
# uvicorn adds ``color_message`` (its message with ANSI colours) to its own lines.
RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "color_message",
    "taskName",  # Python 3.12+
}
UVICORN_ACCESS = "uvicorn.access"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", UVICORN_ACCESS)


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON; values JSON cannot hold are written as str()."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": utc_timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in RECORD_ATTRIBUTES and not key.startswith("_"):
                entry.setdefault(key, value)  # the fields above win over an extra's namesake
        if record.name == UVICORN_ACCESS:
            entry.update(access_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def utc_timestamp(created: float) -> str:
    """Seconds since the epoch as ISO 8601 in UTC, to the millisecond: 2026-11-28T01:35:07.123Z."""
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def access_fields(record: logging.LogRecord) -> dict[str, Any]:
    """uvicorn's access line as fields: its arguments are (client, method, path, http, status)."""
    args = record.args
    if not (isinstance(args, tuple) and len(args) == 5):
        return {}
    client, method, path, _http_version, status = args
    return {"client": client, "method": method, "path": path, "status": status}


def formatter_for(log_format: LogFormat) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(settings: Settings, *, log_format: LogFormat | None = None) -> None:
    """Send this process's log records to stderr at BACKPROP_LOG_LEVEL, formatted as
    BACKPROP_LOG_FORMAT (or ``log_format``). Replaces any handler set up before."""
    chosen = log_format or settings.log_format
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(chosen))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler], force=True)
    logging.captureWarnings(True)  # warnings.warn(...) -> logger "py.warnings"
    if chosen == "json":
        # Left alone, an uncaught exception prints a bare traceback: many lines, not JSON.
        sys.excepthook = log_uncaught
        threading.excepthook = log_uncaught_in_thread


def log_uncaught(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    logging.getLogger("backprop").critical("uncaught exception", exc_info=(kind, error, traceback))


def log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return  # as the default hook: a thread that calls sys.exit() just ends
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("backprop").critical(
        "uncaught exception in thread %s",
        name,
        exc_info=(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback),
    )


def uvicorn_log_config(settings: Settings) -> dict[str, Any]:
    """uvicorn's ``log_config``: in JSON, its loggers hand their records to the root
    handler of ``configure_logging``; in text, uvicorn's own configuration."""
    if settings.log_format == "text":
        from uvicorn.config import LOGGING_CONFIG

        return LOGGING_CONFIG
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {name: {"handlers": [], "propagate": True} for name in UVICORN_LOGGERS},
    }
