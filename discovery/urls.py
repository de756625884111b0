"""`from_url`: the discovery URL (and `--discovery-opt`s) to a backend."""
from __future__ import annotations

from discovery.addresses import is_host_port, parse_list
from discovery.base import Discovery, DiscoveryError
from discovery.etcd import EtcdDiscovery
from discovery.etcd_store import TlsFiles
from discovery.static import FileDiscovery, NodesDiscovery

DEFAULT_NODES_PATH = "docker/swarm/nodes"
TLS_OPTIONS = ("kv.cacertfile", "kv.certfile", "kv.keyfile")
KNOWN_OPTIONS = ("kv.path", *TLS_OPTIONS)
SCHEMES = "etcd://, nodes://, file:// (or a bare host:port list)"
TOKEN_GONE = (
    "token:// discovery used Docker Hub's hosted discovery service, which no longer exists. "
    "Use etcd instead: run an etcd, then `shoal join --advertise=<host:port> etcd://<etcd-host>:2379/{token}` "
    "on each host and `shoal manage etcd://<etcd-host>:2379/{token}` (`shoal create` makes a new cluster ID)."
)


def from_url(url: str, options: dict[str, str] | None = None, heartbeat: float = 60.0) -> Discovery:
    """The backend for `url`; `heartbeat` caps how long a backend waits between checks or retries."""
    opts = dict(options or {})
    unknown = sorted(set(opts) - set(KNOWN_OPTIONS))
    if unknown:
        raise DiscoveryError(f"unknown discovery option {unknown[0]!r} (known: {', '.join(KNOWN_OPTIONS)})")
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "nodes", url
    if scheme == "nodes":
        return NodesDiscovery(_addresses(rest))
    if scheme == "file":
        if not rest:
            raise DiscoveryError("file:// discovery needs a path, e.g. file:///etc/shoal/cluster")
        return FileDiscovery(rest, poll=min(heartbeat, 1.0), warn_every=heartbeat)
    if scheme == "etcd":
        return _etcd(rest, opts, heartbeat)
    if scheme == "token":
        raise DiscoveryError(TOKEN_GONE.format(token=rest.rstrip("/").rpartition("/")[2] or "<cluster-id>"))
    raise DiscoveryError(f"unsupported discovery {scheme}:// (supported: {SCHEMES})")


def _addresses(text: str) -> list[str]:
    if not text.strip():
        raise DiscoveryError(f"no engine address in discovery URL (supported: {SCHEMES})")
    try:
        return parse_list(text.split(","))
    except ValueError as err:
        raise DiscoveryError(f"bad discovery URL: {err}") from None


def _etcd(rest: str, opts: dict[str, str], heartbeat: float) -> EtcdDiscovery:
    hosts, _, prefix = rest.partition("/")
    endpoints = [host.strip() for host in hosts.split(",")]
    bad = [host for host in endpoints if not is_host_port(host)]
    if bad:
        raise DiscoveryError(f"bad etcd endpoint {bad[0]!r} in discovery URL: expected "
                             "etcd://host:port[,host:port...]/<prefix>")
    parts = [part for part in (*prefix.split("/"), *opts.get("kv.path", DEFAULT_NODES_PATH).split("/")) if part]
    nodes_prefix = "/" + "/".join(parts) + "/" if parts else "/"
    return EtcdDiscovery(endpoints, nodes_prefix, _tls(opts), retry_cap=min(heartbeat, 5.0))


def _tls(opts: dict[str, str]) -> TlsFiles | None:
    given = [name for name in TLS_OPTIONS if opts.get(name)]
    if not given:
        return None
    if len(given) != len(TLS_OPTIONS):
        missing = ", ".join(name for name in TLS_OPTIONS if name not in given)
        raise DiscoveryError(f"TLS to etcd needs kv.cacertfile, kv.certfile and kv.keyfile together; missing {missing}")
    pems = []
    for name in TLS_OPTIONS:
        try:
            with open(opts[name], "rb") as handle:
                pems.append(handle.read())
        except OSError as err:
            raise DiscoveryError(f"cannot read {name} {opts[name]}: {err.strerror}") from None
    return TlsFiles(*pems)
