"""The layout's import rules (DESIGN.md, "Layout"), checked on the source with `ast`: no cycles among
the project's modules, and every import runs in an allowed direction."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shoal", "manager", "agent", "scheduler", "discovery", "lab", "bench", "tests")
LEAVES = ("shoal.version", "shoal.durations", "shoal.flags", "shoal.logs", "shoal.tls")  # imported by many, import only each other
HANDLERS = tuple(f"manager.api.{name}" for name in ("containers", "images", "networks", "volumes", "system",
                                                  "dashboard.handlers"))

# module prefix -> prefixes it may import (its own package is always allowed); the longest prefix rules
ALLOWED: dict[str, tuple[str, ...]] = {
    "shoal": (), "manager": (),  # the packages themselves (their __init__)
    "shoal.version": (), "shoal.durations": (), "shoal.flags": LEAVES, "shoal.logs": LEAVES, "shoal.tls": LEAVES,
    "shoal.cli": ("manager.cmd", "agent.cli", "lab.cli", *LEAVES),
    "shoal.__main__": ("shoal.cli",),
    "scheduler": (),
    "discovery": LEAVES,
    "agent": ("discovery", *LEAVES),
    "lab": LEAVES,
    "manager.errors": LEAVES,
    "manager.heap": (),
    "manager.cluster": ("manager.errors", "manager.heap", "scheduler", "discovery", *LEAVES),
    "manager.api": ("manager.cluster", "manager.errors", "scheduler", *LEAVES),
    "manager.cmd": ("manager", "discovery", "scheduler", *LEAVES),
    "manager.config": ("manager.cluster.options", "scheduler", *LEAVES),
    "manager.serve": ("manager", "discovery", *LEAVES),
    "bench": ("shoal", "manager", "agent", "scheduler", "discovery", "lab"),
    "tests": PACKAGES,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `path` imports, anywhere in the file (TYPE_CHECKING blocks included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import mod` imports the submodule `pkg.mod` when there is one
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                     for a in node.names]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


GRAPH = {name: imports_of(path, project_modules()) for name, path in project_modules().items()}


def rule_for(module: str) -> tuple[str, tuple[str, ...]]:
    prefix = max((p for p in ALLOWED if module == p or module.startswith(p + ".")), key=len)
    return prefix, ALLOWED[prefix]


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_every_project_module_has_a_rule():
    unruled = [m for m in GRAPH if not any(m == p or m.startswith(p + ".") for p in ALLOWED)]
    assert unruled == []


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Every `module -> target` that its rule does not allow."""
    wrong = []
    for module, imported in sorted(graph.items()):
        own, allowed = rule_for(module)
        wrong += [f"{module} -> {target}" for target in sorted(imported) if not within(target, (own, *allowed))]
    return wrong


def find_cycles(graph: dict[str, set[str]]) -> list[str]:
    """Each import cycle found by a depth-first walk, as `a -> b -> a`."""
    cycles: list[str] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return cycles


def test_imports_run_in_allowed_directions():
    assert violations(GRAPH) == []


def test_no_import_cycles():
    assert find_cycles(GRAPH) == []


def test_nothing_imports_the_console_script_or_the_tests():
    wrong = [f"{m} -> {t}" for m, targets in GRAPH.items() for t in targets
             if not m.startswith("tests") and (t.startswith("tests") or (t == "shoal.cli" and m != "shoal.__main__"))]
    assert wrong == []


def test_the_console_script_checks_flags_before_loading_what_serves():
    """Every command's flags parse and check without aiohttp, uvloop, pydantic or the manager's
    cluster and API loaded (they come only once a command runs), so a flag error is told at once."""
    code = ("import sys, shoal.cli; print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in "
            "('aiohttp', 'uvloop', 'pydantic')} | {m for m in sys.modules if m.startswith(('manager.api', "
            "'manager.cluster.cluster', 'manager.serve', 'agent.join'))}))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout == "[]\n"


def test_a_manager_loads_neither_the_lab_nor_an_etcd_client_it_does_not_use():
    """`shoal manage` with nodes:// or file:// discovery starts without etcd3aio and gRPC (about
    90 ms), and no command but `shoal lab` loads what builds a lab."""
    code = ("import sys, shoal.cli, manager.serve; from discovery import from_url; from_url('nodes://127.0.0.1:1'); "
            "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('etcd3aio', 'grpc')} | "
            "{m for m in sys.modules if m in ('lab.lifecycle', 'lab.image')}))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout == "[]\n"


@pytest.mark.parametrize("handler", HANDLERS)
def test_a_handler_imports_neither_the_routes_nor_another_handler(handler):
    assert handler in GRAPH
    assert GRAPH[handler] & ({"manager.api.routes", *HANDLERS} - {handler}) == set()


def test_the_guard_catches_what_it_guards():
    """The checks fail on a graph that breaks the rules, and the real graph is not empty."""
    bad = {"manager.api.routes": {"manager.api.containers"}, "manager.api.containers": {"manager.api.routes"},
           "scheduler.node": {"manager.cluster.engine"}, "manager.cluster.engine": {"manager.api.call"},
           "manager.api.call": set()}
    assert find_cycles(bad) == ["manager.api.containers -> manager.api.routes -> manager.api.containers"]
    assert violations(bad) == ["manager.cluster.engine -> manager.api.call", "scheduler.node -> manager.cluster.engine"]
    assert "manager.api.call" in GRAPH["manager.api.containers"]
    assert "manager.cluster.engine" in GRAPH["manager.cluster.cluster"]
