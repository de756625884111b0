"""Network plumbing for the local lab: one Linux bridge per lab, one netns + veth per node.

The namespaces get no default route: only the lab subnet is reachable from a node, so nothing a
test or demo does can leave the machine, and a pull from a registry outside the lab fails at once.
"""
from __future__ import annotations

import ipaddress
import json

from lab.procs import LabError, run

NODE_OFFSET = 10  # node K gets host address .(10+K); the bridge gets .1


def addresses(subnet: str, count: int) -> tuple[str, list[str]]:
    """(bridge address, node addresses) for `count` nodes in `subnet`."""
    try:
        net = ipaddress.IPv4Network(subnet)
    except ValueError as err:
        raise LabError(f"bad subnet: {err}") from err
    first = net.network_address
    nodes = [first + NODE_OFFSET + k for k in range(1, count + 1)]
    if not nodes or nodes[-1] >= net.broadcast_address:
        raise LabError(f"{count} nodes do not fit in {subnet}")
    return str(first + 1), [str(n) for n in nodes]


def check_subnet_free(subnet: str) -> None:
    """Refuse a subnet that overlaps any IPv4 address already configured on this host."""
    net = ipaddress.IPv4Network(subnet)
    for iface in json.loads(run("ip", "-j", "-4", "addr").stdout or "[]"):
        for a in iface.get("addr_info", []):
            taken = ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}").network
            if taken.overlaps(net):
                raise LabError(f"subnet {subnet} overlaps {taken} on {iface['ifname']}; use --subnet")


def create_bridge(bridge: str, ip: str, prefixlen: int) -> None:
    """A host bridge holding the lab's gateway address."""
    run("ip", "link", "add", bridge, "type", "bridge")
    run("ip", "addr", "add", f"{ip}/{prefixlen}", "dev", bridge)
    run("ip", "link", "set", bridge, "up")


def create_node_net(netns: str, veth: str, bridge: str, ip: str, prefixlen: int) -> None:
    """A namespace with lo up and eth0 (veth peer of `veth` on `bridge`); no default route."""
    run("ip", "netns", "add", netns)
    run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
    run("ip", "link", "set", veth, "master", bridge, "up")
    run("ip", "-n", netns, "addr", "add", f"{ip}/{prefixlen}", "dev", "eth0")
    run("ip", "-n", netns, "link", "set", "lo", "up")
    run("ip", "-n", netns, "link", "set", "eth0", "up")


def delete_net(netns: list[str], veths: list[str], bridge: str) -> None:
    """Remove veths, namespaces and the bridge; whatever is already gone is skipped."""
    existing = set(run("ip", "netns", "list").stdout.split())
    for veth in veths:
        run("ip", "link", "del", veth, check=False)
    for ns in netns:
        if ns in existing:
            run("ip", "netns", "del", ns)
    run("ip", "link", "del", bridge, check=False)
