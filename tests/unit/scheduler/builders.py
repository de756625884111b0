"""Builders for the scheduler tests: nodes, specs and port bindings as plain objects."""
from __future__ import annotations

from typing import Any

from scheduler import ContainerInfo, ContainerSpec, Node, PortBinding


def make_node(name: str, labels: dict[str, str] | None = None, containers: tuple[ContainerInfo, ...] = (),
              **fields: Any) -> Node:
    """A node named `name` with ID `id-<name>`."""
    return Node(id=f"id-{name}", name=name, addr=f"{name}:2375", labels=labels or {},
                containers=containers, **fields)


def make_spec(*env: str, host: dict | None = None, name: str | None = None, **body: Any) -> ContainerSpec:
    """A busybox create body with these Env entries and HostConfig."""
    return ContainerSpec.from_create_body({"Image": "busybox", "Env": list(env), "HostConfig": host or {}, **body},
                                          name)


def kept_names(filter_, spec: ContainerSpec, nodes: list[Node]) -> list[str]:
    return [n.name for n in filter_.filter(spec, nodes)[0]]


def reasons(filter_, spec: ContainerSpec, nodes: list[Node]) -> dict[str, str]:
    """Node name -> explanation of why the filter dropped it."""
    by_id = {n.id: n for n in nodes}
    return {by_id[i].name: r.explain(by_id[i]) for i, r in filter_.filter(spec, nodes)[1].items()}


def bound(name: str, host_port: str, host_ip: str = "", container_port: str = "80/tcp") -> ContainerInfo:
    binding = PortBinding(host_ip, host_port, container_port)
    return ContainerInfo(id=f"{name}-id", names=(name,), port_bindings=(binding,))


def publish(port: str, host_ip: str = "", container_port: str = "80/tcp") -> ContainerSpec:
    return make_spec(host={"PortBindings": {container_port: [{"HostIp": host_ip, "HostPort": port}]}})
