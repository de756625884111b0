"""Errors raised by the scheduler; every one carries a user-facing `message`."""
from __future__ import annotations


class SchedulerError(Exception):
    """Base class: a scheduling problem the manager reports to the user as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ExprError(SchedulerError):
    """A constraint or affinity expression that cannot be parsed; the message names it."""


class SpecError(SchedulerError):
    """A create body the scheduler cannot accept (e.g. a bad reschedule policy)."""


class NoFit(SchedulerError):
    """No node can take the container; the message explains why, node by node.

    `rule` names what emptied the list (a filter's name, `resources`, or `nodes` when the
    cluster has none); `reasons` maps each node shown in the message to why it was rejected.
    """

    def __init__(self, message: str, rule: str = "nodes", reasons: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.rule = rule
        self.reasons = reasons or {}
