"""Logging for every command: one line per event on stderr (`time=... level=... logger=... event
key=value ...`), at the level the global `-l/--log-level` and `--debug` flags chose."""
from __future__ import annotations

import argparse
import logging
import sys

from shoal.flags import UsageError

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "warning": logging.WARNING,
          "error": logging.ERROR, "fatal": logging.CRITICAL, "panic": logging.CRITICAL}
FORMAT = "time=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


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


def setup(args: argparse.Namespace, default: int = logging.INFO) -> None:
    """Log to stderr at the level the global flags chose."""
    level = level_of(args, default)
    logging.basicConfig(level=level, stream=sys.stderr, format=FORMAT)
    logging.getLogger().setLevel(level)
