"""Logging for every command: one line per event on stderr, at the level the global `-l/--log-level`
and `--debug` flags chose, in the format `--log-format` chose:

- text: `time=2026-12-01T10:57:40.361Z level=info logger=shoal.cluster container created container=… node=node1`
- json: `{"time": "...", "level": "info", "logger": "shoal.cluster", "event": "container created",
  "container": "…", "node": "node1"}`

Log calls write `event words key=value ...`; the JSON format splits that into the event and its
keys (numbers become numbers). A traceback stays on its line (`trace=`), and values of keys that
name secrets are masked in both formats.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time

from shoal.flags import UsageError

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "warning": logging.WARNING,
          "error": logging.ERROR, "fatal": logging.CRITICAL, "panic": logging.CRITICAL}
FORMATS = ("text", "json")
FIELD = re.compile(r"(?:^|(?<=\s))([A-Za-z_][\w.]*)=")
PREFIX = re.compile(r"^\w+: ")  # `agent: joining ...`: the logger already says who
SECRET = re.compile(r"password|passwd|secret|token|auth|credential|private", re.IGNORECASE)
SECRET_FIELD = re.compile(r"(?:^|(?<=\s))([A-Za-z_][\w.]*)=(\S+)")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
MASK = "***"


def level_of(args: argparse.Namespace, default: int) -> int:
    """The level the global flags ask for (`--debug` wins), else `default`; UsageError when unknown."""
    if getattr(args, "debug", False):
        return logging.DEBUG
    text = getattr(args, "log_level", None)
    if text is None:
        return default
    try:
        return LEVELS[text.lower()]
    except KeyError:
        raise UsageError(f'not a valid log level: "{text}" (debug, info, warn, error, fatal or panic)') from None


def format_of(args: argparse.Namespace) -> str:
    """`--log-format` (text by default); UsageError when unknown."""
    text = (getattr(args, "log_format", None) or "text").lower()
    if text not in FORMATS:
        raise UsageError(f'not a valid log format: "{text}" (text or json)')
    return text


def split_message(message: str) -> tuple[str, dict[str, object]]:
    """`container created container=abc node=node1 took_ms=12.5` -> ("container created",
    {"container": "abc", "node": "node1", "took_ms": 12.5}); a value runs to the next ` key=`."""
    matches = list(FIELD.finditer(message))
    event = PREFIX.sub("", message[:matches[0].start()] if matches else message).strip()
    fields: dict[str, object] = {}
    for match, following in zip(matches, [*matches[1:], None]):
        raw = message[match.end():following.start() if following else len(message)].strip()
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
            raw = raw[1:-1]
        key = match[1]
        fields[key] = MASK if SECRET.search(key) else _number(raw)
    return event, fields


def _number(raw: str) -> object:
    if NUMBER.fullmatch(raw):
        return float(raw) if "." in raw else int(raw)
    return raw


def _mask(text: str) -> str:
    """`token=abc` -> `token=***` for every key that names a secret."""
    return SECRET_FIELD.sub(lambda m: f"{m[1]}={MASK}" if SECRET.search(m[1]) else m[0], text)


def _utc(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


class TextFormatter(logging.Formatter):
    """`time=... level=... logger=... <message>`, a traceback as `trace="..."` on the same line."""

    def format(self, record: logging.LogRecord) -> str:
        message = _mask(record.getMessage()).replace("\n", "\\n")
        line = f"time={_utc(record.created)} level={record.levelname.lower()} logger={record.name} {message}"
        if record.exc_info:
            line += " trace=" + json.dumps(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event, then the message's own keys."""

    def format(self, record: logging.LogRecord) -> str:
        event, fields = split_message(record.getMessage())
        line: dict[str, object] = {"time": _utc(record.created), "level": record.levelname.lower(),
                                   "logger": record.name, "event": event}
        line.update((k if k not in line else f"field.{k}", v) for k, v in fields.items())
        if record.exc_info:
            line["trace"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def setup(args: argparse.Namespace, default: int = logging.INFO) -> None:
    """Log to stderr at the level and in the format the flags chose (replacing any earlier set-up)."""
    level, fmt = level_of(args, default), format_of(args)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
