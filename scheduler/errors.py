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
    """No node can take the container; the message explains why, node by node."""
