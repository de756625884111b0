"""Multi-host networking for the lab's engines, through dockerd's own overlay driver.

`swarm`: node1 runs `swarm init --advertise-addr <its ip>`, the others `swarm join` it as workers:
a swarm-mode cluster used for networking only (Shoal makes attachable overlays on node1).
`kv`: every dockerd gets `cluster-store: etcd://<bridge ip>:<etcd port>` (the lab's etcd, with
its v2 API on) and `cluster-advertise: <node ip>:2375` in its config file (dockerd <= 20.10).
Both were checked with dockerd 20.10 in network namespaces: kernel VXLAN between the nodes on
the lab bridge (UDP 4789), gossip on 7946, swarm control on 2377. Nothing outlives `lab down`:
the swarm state is in the data-roots, the overlay namespaces (with their VXLAN links) are nsfs
files under the exec-roots, and each node's namespace goes with its VXLAN sockets.
"""
from __future__ import annotations

import json
import ssl
from concurrent.futures import ThreadPoolExecutor

from lab.daemons import Host, api_checked
from lab.procs import progress
from lab.tls import TlsPaths

MODES = ("swarm", "kv")
SWARM_PORT = 2377


def kv_config(node: Host, etcd_for_nodes: str, tls: TlsPaths | None = None) -> dict:
    """The daemon.json entries that put a node's engine on the lab's KV store (over TLS with the
    lab's client pair when the lab uses TLS)."""
    config: dict = {"cluster-store": f"etcd://{etcd_for_nodes}", "cluster-advertise": node.engine}
    if tls is not None:
        config["cluster-store-opts"] = {"kv.cacertfile": tls.ca, "kv.certfile": tls.cert, "kv.keyfile": tls.key}
    return config


def _post(addr: str, path: str, body: dict, tls: ssl.SSLContext | None) -> bytes:
    return api_checked(addr, "POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"},
                       timeout=60.0, tls=tls)


def join_swarm(node: Host, manager_ip: str, token: str, tls: ssl.SSLContext | None = None) -> None:
    """`docker swarm join --advertise-addr <node ip> --token <token> <manager>:2377`."""
    _post(node.engine, "/swarm/join", {"ListenAddr": f"0.0.0.0:{SWARM_PORT}", "AdvertiseAddr": node.ip,
                                       "RemoteAddrs": [f"{manager_ip}:{SWARM_PORT}"], "JoinToken": token}, tls)


def form_swarm(nodes: list[Host], tls: ssl.SSLContext | None = None) -> str:
    """node1 initialises a swarm-mode cluster, the others join it as workers; its cluster ID."""
    first = nodes[0]
    _post(first.engine, "/swarm/init", {"ListenAddr": f"0.0.0.0:{SWARM_PORT}", "AdvertiseAddr": first.ip}, tls)
    swarm = json.loads(api_checked(first.engine, "GET", "/swarm", tls=tls))
    token = swarm["JoinTokens"]["Worker"]
    with ThreadPoolExecutor(max(1, len(nodes) - 1)) as pool:
        list(pool.map(lambda n: join_swarm(n, first.ip, token, tls), nodes[1:]))
    progress("swarm-mode overlay up", cluster=swarm["ID"], manager=first.name,
             workers=",".join(n.name for n in nodes[1:]) or "-")
    return swarm["ID"]
