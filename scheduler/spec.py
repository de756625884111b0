"""The container to place, parsed from a Docker `POST /containers/create` body."""
from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Mapping

from scheduler.errors import SpecError
from scheduler.expr import Expr, parse_expr
from scheduler.node import ContainerInfo, PortBinding

# env prefix -> label holding the JSON array of that kind of rule
RULE_LABELS = {
    "constraint": "com.docker.swarm.constraints",
    "affinity": "com.docker.swarm.affinities",
    "reschedule": "com.docker.swarm.reschedule-policies",
}
RESCHEDULE_POLICIES = ("off", "on-node-failure")
# Network modes every engine has: joining one says nothing about where the container goes.
BUILTIN_NETWORKS = frozenset({"", "default", "bridge", "host", "none"})


def network_refs(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The networks a create body joins (`HostConfig.NetworkMode` and the keys of
    `NetworkingConfig.EndpointsConfig`), as written, without the builtin modes every node has."""
    mode = (body.get("HostConfig") or {}).get("NetworkMode") or ""
    endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
    refs = [mode, *endpoints] if isinstance(endpoints, Mapping) else [mode]
    wanted = [r for r in refs if isinstance(r, str) and r not in BUILTIN_NETWORKS
              and not r.startswith("container:")]
    return tuple(dict.fromkeys(wanted))


@dataclass(frozen=True)
class ContainerSpec:
    """What the scheduler needs to know about a container to place.

    `labels` are the body's labels with the merged rule arrays written back; `env` is the
    body's Env without `constraint:` / `affinity:` / `reschedule:` entries. `networks` are the
    networks it joins, as the body names them; the manager replaces them by the references its
    nodes list (`node/name` for a node-local network, the plain name for a cluster-wide one).
    """

    body: Mapping[str, Any]
    image: str = ""
    name: str | None = None
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    env: tuple[str, ...] = ()
    constraints: tuple[Expr, ...] = ()
    affinities: tuple[Expr, ...] = ()
    cpus: float = 0.0
    memory: int = 0
    port_bindings: tuple[PortBinding, ...] = ()
    exposed_ports: tuple[str, ...] = ()
    network_mode: str = "default"
    links: tuple[str, ...] = ()
    volumes_from: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()

    @classmethod
    def from_create_body(cls, body: Mapping[str, Any], name: str | None = None) -> ContainerSpec:
        """Parse a create body; raises SpecError / ExprError on rules it cannot accept."""
        labels = dict(body.get("Labels") or {})
        rules = {kind: label_rules(labels, label) for kind, label in RULE_LABELS.items()}
        env = []
        for entry in body.get("Env") or ():
            kind, sep, rule = entry.partition(":") if isinstance(entry, str) else ("", "", "")
            if sep and kind in rules:
                rules[kind].append(rule)
            else:
                env.append(entry)
        for kind, label in RULE_LABELS.items():
            if rules[kind]:
                labels[label] = json.dumps(rules[kind], separators=(",", ":"))
        policies = rules["reschedule"]
        if len(policies) > 1:
            raise SpecError("too many reschedule policies")
        if policies and policies[0] not in RESCHEDULE_POLICIES:
            raise SpecError(f"invalid reschedule policy: {policies[0]}")

        host = body.get("HostConfig") or {}

        def resource(key: str) -> float:  # legacy top-level fields win, as in classic Swarm
            value = body.get(key) or host.get(key) or 0
            if not isinstance(value, (int, float)) or value < 0:
                raise SpecError(f"invalid {key}: {value!r}")
            return value

        nano_cpus = resource("NanoCpus")
        return cls(
            body=body,
            image=body.get("Image") or "",
            name=name.lstrip("/") if name else None,
            labels=labels,
            env=tuple(env),
            constraints=tuple(parse_expr(r, "constraint") for r in rules["constraint"]),
            affinities=tuple(parse_expr(r, "affinity") for r in rules["affinity"]),
            cpus=nano_cpus / 1e9 if nano_cpus else resource("CpuShares") / 1024,
            memory=int(resource("MemoryReservation") or resource("Memory")),
            port_bindings=tuple(
                PortBinding((b or {}).get("HostIp") or "", str((b or {}).get("HostPort") or ""),
                            port if "/" in port else port + "/tcp")
                for port, bindings in (host.get("PortBindings") or {}).items()
                for b in bindings or ()),
            exposed_ports=tuple(p if "/" in p else p + "/tcp" for p in body.get("ExposedPorts") or ()),
            network_mode=host.get("NetworkMode") or "default",
            links=tuple(host.get("Links") or ()),
            volumes_from=tuple(host.get("VolumesFrom") or ()),
            networks=network_refs(body),
        )

    @property
    def has_soft_rules(self) -> bool:
        return any(e.soft for e in self.constraints + self.affinities)

    def hard_only(self) -> ContainerSpec:
        """This spec without its soft (`~`) constraints and affinities."""
        return dataclasses.replace(
            self, constraints=tuple(e for e in self.constraints if not e.soft),
            affinities=tuple(e for e in self.affinities if not e.soft))

    def create_body(self) -> dict[str, Any]:
        """The body to send to the engine: rule env entries removed, merged rule labels set, CPU
        shares within what the engine's runtime takes."""
        out = engine_cpu_shares(copy.deepcopy(dict(self.body)))
        if out.get("Env") is not None:
            out["Env"] = list(self.env)
        if out.get("Labels") is not None or self.labels:
            out["Labels"] = dict(self.labels)
        return out

    def as_container(self, id: str) -> ContainerInfo:
        """This container as a pending placement, holding its name, ports and reservations."""
        return ContainerInfo(
            id=id, names=(self.name,) if self.name else (), image=self.image, labels=self.labels,
            port_bindings=self.port_bindings, network_mode=self.network_mode,
            exposed_ports=self.exposed_ports, cpus=self.cpus, memory=self.memory)


MIN_CPU_SHARES, MAX_CPU_SHARES = 2, 262144  # what runc and the kernel accept


def engine_cpu_shares(body: dict[str, Any]) -> dict[str, Any]:
    """`body` (a create or update body) with its CPU shares clamped to 2..262144, as dockerd does
    for old clients: `--cpu-shares 1` would otherwise fail at start on cgroup v2 engines. The
    reservation is still worked out from what the client asked for."""
    for holder in (body, body.get("HostConfig")):
        if isinstance(holder, dict):
            shares = holder.get("CpuShares")
            if isinstance(shares, int) and shares > 0:
                holder["CpuShares"] = min(max(shares, MIN_CPU_SHARES), MAX_CPU_SHARES)
    return body


def label_rules(labels: Mapping[str, str], label: str) -> list[str]:
    """The JSON array of strings in `label` (empty when absent)."""
    if label not in labels:
        return []
    try:
        rules = json.loads(labels[label])
    except (TypeError, ValueError):
        rules = None
    if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
        raise SpecError(f"invalid label {label}: expected a JSON array of strings")
    return rules
