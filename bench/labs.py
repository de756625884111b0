"""The lab a benchmark brings up for itself: `--lab` / `--subnet` flags (two runs at once need two),
and a 3-node lab with a manager that is always torn down."""
from __future__ import annotations

import argparse
import contextlib
from typing import Iterator

from lab.lifecycle import down, up
from lab.procs import free_port
from lab.state import LabSpec, LabState


def add_lab_flags(parser: argparse.ArgumentParser, lab: str, subnet: str) -> None:
    parser.add_argument("--lab", default=lab, help="lab name (two runs at once need two)")
    parser.add_argument("--subnet", default=subnet)


@contextlib.contextmanager
def lab_with_manager(args: argparse.Namespace, nodes: int = 3, **options: object) -> Iterator[tuple[LabState, str]]:
    """(the lab, its manager's URL); leftovers of an interrupted run are removed first. `options`
    are more LabSpec fields (`registry=True`...)."""
    port = free_port()
    spec = LabSpec(name=args.lab, nodes=nodes, subnet=args.subnet, manager_port=port, **options)
    down(spec.name, spec.root)
    try:
        yield up(spec), f"http://127.0.0.1:{port}"
    finally:
        down(spec.name, spec.root)
