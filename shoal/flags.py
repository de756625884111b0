"""What every command's flag checks share: the usage error, `key=value` options, durations."""
from __future__ import annotations

from shoal.durations import parse_duration


class UsageError(Exception):
    """A bad flag or argument; the message is what the user sees (exit code 1)."""


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
