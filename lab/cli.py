"""`shoal lab up | down | status | image`: the lab from the command line.

The commands import what builds the lab when they run: `shoal manage` and `shoal join` start
without loading it."""
from __future__ import annotations

import argparse
from pathlib import Path

from lab.overlay import MODES as OVERLAY_MODES
from lab.procs import LabError, progress
from lab.state import DEFAULT_ROOT, LabSpec, load


def _node_label(text: str) -> tuple[str, str, str]:
    """Parse `--label nodeK:key=value`."""
    node, sep, pair = text.partition(":")
    key, eq, value = pair.partition("=")
    if not (sep and eq and node and key):
        raise argparse.ArgumentTypeError(f"expected nodeK:key=value, got {text!r}")
    return node, key, value


def _cmd_up(args: argparse.Namespace) -> int:
    """`lab up`: build the lab and print how to reach it."""
    from lab.lifecycle import up

    labels: dict[str, dict[str, str]] = {}
    for node, key, value in args.label:
        labels.setdefault(node, {})[key] = value
    spec = LabSpec(name=args.name, nodes=args.nodes, subnet=args.subnet, labels=labels,
                   registry=args.registry, etcd=args.etcd, manager_port=args.manager, root=args.dir, tls=args.tls,
                   overlay=args.overlay)
    try:
        state = up(spec)
    except LabError as err:
        progress("failed", lab=args.name, error=err)
        if load(args.name, args.dir):
            progress("hint", cleanup=f"shoal lab down --name {args.name} --dir {args.dir}")
        return 1
    for node in state.nodes:
        print(f"{node.name}\ttcp://{node.engine}")
    for what, addr in (("registry", state.registry), ("etcd", state.etcd), ("overlay", state.overlay)):
        if addr:
            print(f"{what}\t{addr}")
    if state.manager:  # the dashboard and metrics: the API's listener, with its access rules
        base = f"{'https' if state.tls else 'http'}://{state.manager}"
        print(f"dashboard\t{base}/dashboard/\nmetrics\t{base}/metrics")
        if state.tls:
            print(f"export DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH={Path(state.tls) / 'docker'}")
        print(f"export DOCKER_HOST=tcp://{state.manager}")
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    """`lab down`: tear the lab down."""
    from lab.lifecycle import down

    down(args.name, args.dir)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    """`lab status`: one line per component; exit 1 unless all answer."""
    from lab.lifecycle import status

    rows = status(args.name, args.dir)
    if rows is None:
        print(f"lab {args.name}: not up")
        return 1
    for what, addr, ok in rows:
        print(f"{what}\t{addr}\t{'up' if ok else 'DOWN'}")
    return 0 if all(ok for _, _, ok in rows) else 1


def _cmd_image(args: argparse.Namespace) -> int:
    """`lab image`: build Shoal's image offline on node1 and push it to the lab registry."""
    from lab.image import build_and_push

    state = load(args.name, args.dir)
    if state is None or not state.registry:
        progress("failed", lab=args.name, error="needs a lab that is up with --registry")
        return 1
    try:
        print(build_and_push(state.engines[0], state.registry, Path(state.dir) / "image"))
    except LabError as err:
        progress("failed", lab=args.name, error=err)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `lab up | down | status | image` to the shoal command line."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--name", default="shoal", help="lab name (default: shoal)")
    common.add_argument("--dir", type=Path, default=DEFAULT_ROOT, help=f"state root (default: {DEFAULT_ROOT})")
    lab = sub.add_parser("lab", help="a local lab of real Docker hosts (needs root)")
    actions = lab.add_subparsers(dest="lab_command", required=True, metavar="ACTION")
    up_p = actions.add_parser("up", parents=[common], help="start N Docker hosts")
    up_p.add_argument("--nodes", type=int, default=3, help="number of Docker hosts (default: 3)")
    up_p.add_argument("--label", type=_node_label, action="append", default=[], metavar="NODE:KEY=VALUE",
                      help="an engine label, e.g. node3:size=xxl (repeatable)")
    up_p.add_argument("--subnet", default="10.213.0.0/24", help="lab subnet: bridge .1, nodes .11+")
    up_p.add_argument("--registry", action="store_true", help="a registry on <bridge>:5000")
    up_p.add_argument("--etcd", action="store_true", help="an etcd on 127.0.0.1 and the bridge")
    up_p.add_argument("--manager", type=int, metavar="PORT", help="also start a manager on this port")
    up_p.add_argument("--tls", action="store_true",
                      help="a throwaway CA; engines (port 2376), manager and etcd with --tlsverify")
    up_p.add_argument("--overlay", nargs="?", const="swarm", choices=OVERLAY_MODES, metavar="MODE",
                      help="multi-host networking: the engines as one swarm-mode cluster (swarm, the "
                           "default), or sharing the lab etcd as cluster-store (kv, dockerd <= 20.10)")
    up_p.set_defaults(func=_cmd_up)
    actions.add_parser("down", parents=[common], help="remove the lab").set_defaults(func=_cmd_down)
    actions.add_parser("status", parents=[common], help="show the lab").set_defaults(func=_cmd_status)
    actions.add_parser("image", parents=[common], help="build Shoal's image offline on node1 and push it "
                       "to the lab registry").set_defaults(func=_cmd_image)
