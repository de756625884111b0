"""Shoal's scheduler: a pure library that picks the node for a container, or explains why none fits."""
from scheduler.errors import ExprError, NoFit, SchedulerError, SpecError
from scheduler.expr import Expr, parse_expr
from scheduler.filters import DEFAULT_FILTERS, FILTERS, Filter, Reason
from scheduler.node import ContainerInfo, ImageInfo, Node, PortBinding
from scheduler.scheduler import Scheduler
from scheduler.spec import ContainerSpec
from scheduler.strategy import STRATEGIES, Capacity

__all__ = [
    "DEFAULT_FILTERS", "FILTERS", "STRATEGIES", "Capacity", "ContainerInfo", "ContainerSpec", "Expr",
    "ExprError", "Filter", "ImageInfo", "NoFit", "Node", "PortBinding", "Reason", "Scheduler",
    "SchedulerError", "SpecError", "parse_expr",
]
