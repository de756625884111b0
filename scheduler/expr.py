"""Placement expressions: `key==value` / `key!=value`, soft with `~` (`key==~value`).

Parsing and matching follow classic Swarm (`scheduler/filter/expr.go`):

* the text is split at the first `==`, else at the first `!=`;
* the key matches `[a-z_][a-z0-9-_.]+` (case-insensitive) and is lower-cased;
* the value is `/regex/` (unanchored search), or a glob where `*` is any text and the whole
  value must match (other regex metacharacters stay live, as in classic Swarm);
* `==` holds when at least one candidate matches, `!=` when none does.

Plain values (no metacharacter) are compared with `in`, so a set of candidates costs O(1);
pattern results are memoized per candidate. `parse_expr` caches parsed expressions, so a rule
repeated across placements keeps its memo.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable

from scheduler.errors import ExprError

OPERATORS = ("==", "!=")
_KEY = re.compile(r"[a-z_][a-z0-9\-_.]+", re.IGNORECASE | re.ASCII)
_VALUE = re.compile(r"[=!/]?~?[a-z0-9:\-_\t\n\f\r .*/()?+\[\]\\^$|]+", re.IGNORECASE | re.ASCII)
_METACHARS = frozenset(".*()?+[]\\^$|")
_MEMO_LIMIT = 4096


@dataclass(frozen=True, eq=False)
class Expr:
    """One parsed rule. `pattern` is None for a plain value (exact comparison)."""

    key: str
    operator: str  # "==" or "!="
    value: str  # without the soft marker
    soft: bool
    pattern: re.Pattern[str] | None = None
    negated: bool = field(init=False)  # operator is "!="
    _memo: dict[str, bool] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "negated", self.operator == "!=")

    def __str__(self) -> str:
        return f"{self.key}{self.operator}{'~' if self.soft else ''}{self.value}"

    def matches(self, candidates: Iterable[str]) -> bool:
        """True when the rule holds for these candidate strings."""
        if self.pattern is None:  # the common case, kept fast
            return (self.value in candidates) != self.negated
        return (self.first_match(candidates) is None) == self.negated

    def matches_each(self, candidate_sets: Iterable[Iterable[str]]) -> list[bool]:
        """`matches` for many candidate collections at once (one per node)."""
        if self.pattern is None:
            value, negated = self.value, self.negated
            return [(value in candidates) != negated for candidates in candidate_sets]
        return [self.matches(candidates) for candidates in candidate_sets]

    def first_match(self, candidates: Iterable[str]) -> str | None:
        """The first candidate the value matches (the operator aside), or None."""
        if self.pattern is None:
            return self.value if self.value in candidates else None
        memo, search = self._memo, self.pattern.search
        for candidate in candidates:
            hit = memo.get(candidate)
            if hit is None:
                hit = search(candidate) is not None
                if len(memo) < _MEMO_LIMIT:
                    memo[candidate] = hit
            if hit:
                return candidate
        return None


@lru_cache(maxsize=1024)
def parse_expr(text: str, kind: str = "expression") -> Expr:
    """Parse `key==value`, `key!=value`, `key==~value`...; `kind` names it in errors."""
    operator = next((op for op in OPERATORS if op in text), None)
    if operator is None:
        raise ExprError(f"invalid {kind} '{text}': one of operator ==, != is expected")
    key, raw = text.split(operator, 1)
    if not _KEY.fullmatch(key):
        raise ExprError(f"invalid {kind} '{text}': key '{key}' is invalid")
    if not _VALUE.fullmatch(raw):
        raise ExprError(f"invalid {kind} '{text}': value '{raw}' is invalid")
    value = raw.lstrip("~")
    pattern = None
    if len(value) > 1 and value[0] == value[-1] == "/":
        pattern = _compile(value[1:-1], text, kind)
    elif not _METACHARS.isdisjoint(value):
        pattern = _compile("^" + value.replace("*", ".*") + r"\Z", text, kind)
    return Expr(key.lower(), operator, value, raw.startswith("~"), pattern)


def _compile(source: str, text: str, kind: str) -> re.Pattern[str]:
    try:
        return re.compile(source)
    except (re.error, RecursionError, OverflowError) as err:
        raise ExprError(f"invalid {kind} '{text}': bad regular expression ({err})") from None
