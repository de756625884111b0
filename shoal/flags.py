"""What every command's flag checks share: the parser, the global flags, the usage error, `key=value`
options, durations."""
from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Sequence

from shoal.durations import parse_duration


class UsageError(Exception):
    """A bad flag or argument; the message is what the user sees (exit code 1)."""


class Parser(argparse.ArgumentParser):
    """argparse reading a command line the way classic Swarm's (Go's flag package) did: `-flag` is
    `--flag`, and a value may begin with `-` (`--timeout -1s` reaches the check that explains it,
    instead of argparse's "expected one argument")."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-\.?\d")  # what argparse treats as a value

    def parse_known_args(self, args: Sequence[str] | None = None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(self._double_dashed(args), namespace)

    def _double_dashed(self, args: list[str]) -> list[str]:
        """`-heartbeat=1s` -> `--heartbeat=1s` for this parser's own long options."""
        out = []
        for index, arg in enumerate(args):
            if arg == "--":
                return out + args[index:]
            name = arg.split("=", 1)[0]
            if len(name) > 2 and name[0] == "-" and name[1] != "-" and "-" + name in self._option_string_actions:
                arg = "-" + arg
            out.append(arg)
        return out


def add_global_flags(parser: argparse.ArgumentParser) -> None:
    """Classic Swarm's global flags, given before the command (`shoal --debug manage ...`)."""
    parser.add_argument("-l", "--log-level", default=None, metavar="LEVEL",
                        help="debug, info, warn, error, fatal or panic (default: info)")
    parser.add_argument("--debug", action="store_true", default=os.environ.get("DEBUG", "").lower()
                        in ("1", "t", "true"), help="log at debug level (env DEBUG)")
    parser.add_argument("--experimental", action="store_true",
                        help="report experimental features on in `docker info` and `docker version`")
    add_log_format(parser, None)


def add_log_format(parser: argparse.ArgumentParser, default: str | None = argparse.SUPPRESS) -> None:
    """`--log-format text|json`: global, and again on `manage` and `join` (where it keeps a global
    choice unless given there too)."""
    parser.add_argument("--log-format", default=default, metavar="FORMAT",
                        help="text (key=value) or json, one line per event (default: text)")


def key_values(items: list[str], flag: str) -> dict[str, str]:
    """`["a=1", "b=2"]` given as repeated `flag` -> `{"a": "1", "b": "2"}`."""
    result: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"invalid {flag} {item!r}: expected key=value")
        result[key] = value
    return result


def duration(text: str, flag: str) -> float:
    """Seconds in a Go duration given to `flag`."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"invalid value {text!r} for {flag}: {exc}") from None


def integer(text: str, flag: str) -> int:
    """A whole number given to `flag`."""
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"invalid value {text!r} for {flag}: not a whole number") from None
