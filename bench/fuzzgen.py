"""The request fuzzer shared by the e2e fuzz test and `python -m bench.fuzz`: hypothesis strategies for
wrongly typed and malformed bodies, paths, filters, query strings and raw HTTP, and the client that
sends them to a manager and judges the answers.

An answer is bad when it is Shoal's catch-all (`internal error in Shoal`), or a hang: no response
head within HANG_AFTER seconds. Everything the requests create (containers, networks, volumes) is
recorded from the answers so `Fuzzer.clean_up` removes it. The generator never names an address
outside the lab (images come from the lab registry or are invalid references), never prunes, and
aims long-polls (wait, attach, logs) only at objects that do not exist. Driver names are the engines'
own or of the wrong type: dockerd looks for a plugin of an unknown name for 15 s before it answers.
"""
from __future__ import annotations

import asyncio
import json
import string
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import aiohttp
from hypothesis import strategies as st

HANG_AFTER = 15.0
INTERNAL = "internal error in Shoal"
FUZZ_LABEL = "shoal.fuzz"
PREFIX = "fuzz"  # every name the fuzzer makes up for objects starts with it


@dataclass(frozen=True)
class FuzzRequest:
    """One request: `raw` bytes are sent as they are (malformed HTTP); otherwise method, path and so on."""

    method: str = "GET"
    path: str = "/_ping"
    query: str = ""
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    raw: bytes | None = None


@dataclass
class Tally:
    """What the answers were."""

    sent: int = 0
    internal: int = 0
    hangs: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)  # a few examples of bad answers

    def line(self, alive: bool) -> str:
        return f"sent={self.sent} internal={self.internal} hangs={self.hangs} alive={'yes' if alive else 'no'}"


# ---- JSON values ---------------------------------------------------------------------------------
def _texts() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=12),
        st.sampled_from(["", " ", "80", "80/tcp", "-1", "65536", "abc", "1-2", "9-1", "0.0.0.0", "constraint:node==x",
                         "affinity:container==" + PREFIX, "reschedule:on-node-failure", "node1/x", "busybox", "\x00",
                         "../..", "a=b", "{}", "[]", "%s", "é", "🐟"]),
    )


def json_values(depth: int = 2) -> st.SearchStrategy[object]:
    """Any JSON value, biased to the edges: huge and negative numbers, floats, odd strings, nesting."""
    scalars = st.one_of(
        st.none(), st.booleans(), _texts(),
        st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
        st.sampled_from([0, -1, 1, 2 ** 31, 2 ** 63 - 1, 2 ** 63, -(2 ** 63) - 1, 65535, 65536, 1.5, -0.0, 1e308]),
        st.floats(allow_nan=False, allow_infinity=False),
    )
    if depth <= 0:
        return scalars
    inner = json_values(depth - 1)
    return st.one_of(scalars, st.lists(inner, max_size=4), st.dictionaries(_texts(), inner, max_size=4))


# ---- bodies --------------------------------------------------------------------------------------
CREATE_FIELDS = [
    ("Image",), ("Cmd",), ("Entrypoint",), ("Env",), ("Labels",), ("Tty",), ("OpenStdin",), ("StopTimeout",),
    ("ExposedPorts",), ("Volumes",), ("Healthcheck",), ("User",), ("WorkingDir",), ("Memory",), ("CpuShares",),
    ("HostConfig",), ("HostConfig", "Memory"), ("HostConfig", "MemoryReservation"), ("HostConfig", "MemorySwap"),
    ("HostConfig", "NanoCpus"), ("HostConfig", "CpuShares"), ("HostConfig", "CpuQuota"),
    ("HostConfig", "PortBindings"), ("HostConfig", "PortBindings", "80/tcp"),
    ("HostConfig", "PortBindings", "80/tcp", 0), ("HostConfig", "PortBindings", "80/tcp", 0, "HostPort"),
    ("HostConfig", "NetworkMode"), ("HostConfig", "Links"), ("HostConfig", "VolumesFrom"), ("HostConfig", "Binds"),
    ("HostConfig", "RestartPolicy"), ("HostConfig", "RestartPolicy", "Name"), ("HostConfig", "LogConfig"),
    ("HostConfig", "Ulimits"), ("HostConfig", "Mounts"), ("HostConfig", "BlkioWeight"), ("HostConfig", "Devices"),
    ("NetworkingConfig",), ("NetworkingConfig", "EndpointsConfig"),
    ("NetworkingConfig", "EndpointsConfig", PREFIX), ("Labels", "com.docker.swarm.constraints"),
    ("Labels", "com.docker.swarm.affinities"), ("Labels", FUZZ_LABEL), ("Env", 0), ("Env", 1),
]
OTHER_BODIES = {  # path template -> (fields to spoil, a valid body, the engines' drivers of its kind)
    "/containers/{target}/update": ([("Memory",), ("CpuShares",), ("RestartPolicy",), ("NanoCpus",),
                                     ("BlkioWeight",), ("PidsLimit",)], {"CpuShares": 512}, ()),
    "/containers/{target}/exec": ([("Cmd",), ("Env",), ("Tty",), ("AttachStdout",), ("User",), ("Cmd", 0)],
                                  {"Cmd": ["true"], "AttachStdout": True}, ()),
    "/exec/{fuzz}/start": ([("Detach",), ("Tty",), ("ConsoleSize",)], {"Detach": False}, ()),
    "/networks/create": ([("Name",), ("Driver",), ("IPAM",), ("IPAM", "Config"), ("Options",), ("Labels",),
                          ("Internal",), ("EnableIPv6",)], {"Name": PREFIX + "net", "Labels": {FUZZ_LABEL: "1"}},
                         ("bridge", "null", "macvlan", "")),
    "/networks/{fuzz}/connect": ([("Container",), ("EndpointConfig",), ("EndpointConfig", "Aliases")],
                                 {"Container": "{target}"}, ()),
    "/networks/bridge/disconnect": ([("Container",), ("Force",)], {"Container": PREFIX + "none"}, ()),
    "/volumes/create": ([("Name",), ("Driver",), ("DriverOpts",), ("Labels",)],
                        {"Name": PREFIX + "vol", "Labels": {FUZZ_LABEL: "1"}}, ("local", "")),
    # no such container or node (no name has a `~`): a body that passes is a 404, nothing is committed or drained
    "/commit?container={fuzz}~": ([("Cmd",), ("Env",), ("Env", 0), ("Labels",), ("ExposedPorts",), ("User",)],
                                 {"Cmd": ["true"]}, ()),
    "/nodes/{fuzz}~/update?version=1": ([("Availability",), ("Labels",), ("Labels", "a"), ("Role",), ("Name",)],
                                       {"Availability": "active"}, ()),
    "/auth": ([("username",), ("password",), ("email",), ("auth",)],  # always the lab registry
              {"username": PREFIX, "password": PREFIX, "serveraddress": "{registry}"}, ()),
}


def _set(node: object, path: tuple, value: object) -> None:
    """Set `path` in `node` to `value`, making missing (or wrongly typed) parents as objects or arrays."""
    key, rest = path[0], path[1:]
    if isinstance(node, list):
        if not isinstance(key, int):
            return
        while len(node) <= key:
            node.append(None)
    elif not isinstance(node, dict):
        return
    if not rest:
        node[key] = value
        return
    if not isinstance(node[key] if isinstance(node, list) else node.get(key), (dict, list)):
        node[key] = [] if isinstance(rest[0], int) else {}
    _set(node[key], rest, value)


DRIVERS = {("Driver",), ("IPAM", "Driver")}


def _value(path: tuple, drivers: tuple[str, ...]) -> st.SearchStrategy[object]:
    """Any JSON value for `path`; for a driver, one of `drivers` or anything but a string."""
    if path in DRIVERS:
        return st.one_of(st.sampled_from(drivers), json_values().filter(lambda v: not isinstance(v, str)))
    return json_values()


def _spoiled(base: dict, fields: list[tuple], drivers: tuple[str, ...] = ("",)) -> st.SearchStrategy[object]:
    """`base` with up to three fields set to any JSON value."""
    def spoil(changes: list[tuple[tuple, object]]) -> dict:
        body = json.loads(json.dumps(base))
        for path, value in changes:
            _set(body, path, value)
        return body
    change = st.sampled_from(fields).flatmap(lambda path: st.tuples(st.just(path), _value(path, drivers)))
    return st.lists(change, min_size=1, max_size=3).map(spoil)


def _encoded(value: object) -> st.SearchStrategy[bytes]:
    """A body as JSON, mostly; sometimes broken JSON made from it."""
    text = json.dumps(value)
    return st.one_of(
        st.just(text.encode()), st.just(text.encode()), st.just(text.encode()),
        st.just(text[: max(1, len(text) // 2)].encode()),              # cut short
        # a NaN added, not put into a string: an address's digit made `NaN0.213...` is a name to look up
        st.just((text[:-1] + ', "Memory": NaN}' if text.endswith("}") else "NaN").encode()),
        st.just(("[" * 2000 + "]" * 2000).encode()),                    # deep
        st.binary(max_size=64),
        st.just(b"\xff\xfe{}"),
    )


def _images(registry: str) -> st.SearchStrategy[str]:
    repo = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=8)
    return st.one_of(st.just("busybox"), st.just("busybox:latest"),
                     repo.map(lambda r: f"{registry}/{PREFIX}{r}:1"),   # the lab registry: 404 at once
                     st.sampled_from(["", "BUSYBOX", "busy box", "::", "@sha256:zz", "a" * 300]))


def create_bodies(registry: str) -> st.SearchStrategy[object]:
    base = st.builds(lambda image: {"Image": image, "Cmd": ["true"], "Labels": {FUZZ_LABEL: "1"}},
                     _images(registry))
    return base.flatmap(lambda b: st.one_of(st.just(b), _spoiled(b, CREATE_FIELDS)))


# ---- requests ------------------------------------------------------------------------------------
def _fuzz_ref() -> st.SearchStrategy[str]:
    return st.text(alphabet=string.ascii_letters + string.digits + "._-", max_size=16).map(lambda s: PREFIX + s)


def _version() -> st.SearchStrategy[str]:
    return st.sampled_from(["", "", "/v1.41", "/v1.24", "/v1.12", "/v9.99", "/v1.0", "/vx", "/v1.41/v1.41"])


def _filters() -> st.SearchStrategy[str]:
    keys = st.sampled_from(["label", "name", "id", "status", "node", "exited", "health", "ancestor", "network",
                            "volume", "before", "since", "dangling", "reference", "type", "event", "driver", "x"])
    values = st.one_of(st.lists(_texts(), max_size=3), st.dictionaries(_texts(), st.booleans(), max_size=2),
                       json_values(1))
    return st.one_of(st.dictionaries(keys, values, max_size=3).map(json.dumps), _texts(),
                     json_values(1).map(json.dumps))


def _queries() -> st.SearchStrategy[str]:
    keys = st.sampled_from(["all", "limit", "size", "filters", "name", "t", "force", "v", "since", "until",
                            "fromImage", "tag", "repo", "follow", "stdout", "tail", "h", "w", "signal", "x"])
    values = st.one_of(_texts(), st.integers(-5, 10 ** 20).map(str), _filters())
    return st.one_of(st.dictionaries(keys, values, max_size=4).map(urlencode), st.text(max_size=30).map(quote))


def _simple(method: str, path: str, query: str = "", body: bytes | None = None,
            content_type: str | None = "application/json") -> FuzzRequest:
    headers = (("Content-Type", content_type),) if content_type and body is not None else ()
    return FuzzRequest(method, path, query, body, headers)


def fuzz_requests(registry: str, target: str) -> st.SearchStrategy[FuzzRequest]:
    """Requests for a manager whose lab registry is `registry` and with a container `target`
    (created, never started) to aim bodies at."""
    create = st.builds(
        lambda v, name, body: _simple("POST", f"{v}/containers/create", urlencode({"name": name}) if name else "",
                                      body),
        _version(), st.one_of(st.none(), _fuzz_ref(), _texts()),
        create_bodies(registry).flatmap(_encoded))

    def other(template: str) -> st.SearchStrategy[FuzzRequest]:
        fields, base, drivers = OTHER_BODIES[template]
        base = json.loads(json.dumps(base).replace("{target}", target).replace("{registry}", registry))
        return st.builds(
            lambda fuzz, body: _simple("POST", *template.format(target=target, fuzz=fuzz).partition("?")[::2], body),
            _fuzz_ref(), st.one_of(st.just(base), _spoiled(base, fields, drivers or ("",))).flatmap(_encoded))

    listings = st.builds(
        lambda v, path, filters, extra: _simple("GET", v + path, urlencode({"filters": filters}) + extra),
        _version(), st.sampled_from(["/containers/json", "/images/json", "/networks", "/volumes"]), _filters(),
        st.sampled_from(["", "&all=1", "&limit=x", "&limit=--5", "&limit=99999999999999999999"]))
    events = st.builds(lambda filters: _simple("GET", "/events", urlencode({"until": "1", "filters": filters})),
                       _filters())
    build = st.builds(
        lambda q, body: _simple("POST", "/build", q, body, "application/x-tar"),
        st.dictionaries(st.sampled_from(["buildargs", "labels", "cachefrom", "memory", "memswap", "cpushares",
                                         "shmsize", "t", "q", "nocache"]),
                        st.one_of(json_values(1).map(json.dumps), _texts()), max_size=3).map(urlencode),
        st.sampled_from([b"", b"not a tar"]))
    archives = st.builds(  # docker load, docker import -: never a valid archive, so no image is made
        lambda path, query: _simple("POST", path, query, b"not a tar", "application/x-tar"),
        st.sampled_from(["/images/load", "/images/create"]),
        st.builds(lambda repo, quiet: urlencode({"fromSrc": "-", "repo": repo, "quiet": quiet}),
                  st.one_of(_fuzz_ref(), _texts()), _texts()))
    ref_paths = st.builds(
        lambda v, method, template, ref, query: _simple(method, v + template.format(quote(ref, safe="")), query),
        _version(), st.sampled_from(["GET", "POST", "DELETE", "PUT", "HEAD"]),
        st.sampled_from(["/containers/{}/json", "/containers/{}/start", "/containers/{}/stop",
                         "/containers/{}/kill", "/containers/{}", "/containers/{}/logs", "/containers/{}/wait",
                         "/containers/{}/attach", "/containers/{}/top", "/containers/{}/rename",
                         "/containers/{}/resize", "/containers/{}/archive", "/exec/{}/json", "/images/{}/json",
                         "/images/{}/tag", "/images/{}", "/images/{}/history", "/networks/{}", "/volumes/{}",
                         "/{}", "/{}/json", "/swarm/{}", "/plugins/{}"]),
        st.one_of(_fuzz_ref(), _fuzz_ref().map(lambda r: f"node1/{r}"), _fuzz_ref().map(lambda r: r + "%00")),
        _queries())
    target_paths = st.builds(
        lambda v, template, query: _simple("POST" if not template.endswith("json") else "GET",
                                           v + template.format(target), query),
        _version(), st.sampled_from(["/containers/{}/json", "/containers/{}/top", "/containers/{}/rename",
                                     "/containers/{}/update", "/containers/{}/kill", "/containers/{}/pause"]),
        _queries())
    raw = st.sampled_from([
        b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 40000 + b"\r\n\r\n",
        b"GET /_ping HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(200)) + b"\r\n",
        b"GET /_ping HTTP/1.1\r\nNo colon here\r\n\r\n",
        b"BREW /coffee HTTCPCP/1.0\r\n\r\n",
        b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 3000000\r\n\r\n{",
        b"POST /containers/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"\x16\x03\x01\x00\x05hello",
    ]).map(lambda data: FuzzRequest(raw=data))
    big = st.just(_simple("POST", "/containers/create", "", b'{"Image":"busybox","Env":["' + b"x" * 3_000_000
                          + b'"]}'))
    return st.one_of(
        create, create, create, *(other(t) for t in OTHER_BODIES), listings, events, build, archives, ref_paths,
        target_paths, raw, big)


# ---- sending -------------------------------------------------------------------------------------
class Fuzzer:
    """Sends requests to a manager, tallies the answers, remembers what was created."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.base_url = base_url
        self.session = session
        self.tally = Tally()
        self.created: dict[str, set[str]] = {"containers": set(), "networks": set(), "volumes": set()}

    async def send_all(self, requests: list[FuzzRequest]) -> None:
        """Send the requests at once."""
        await asyncio.gather(*(self.send(r) for r in requests))

    async def send(self, request: FuzzRequest) -> None:
        """Send one request; count it."""
        self.tally.sent += 1
        try:
            async with asyncio.timeout(HANG_AFTER):
                status, text = await (self._raw(request.raw) if request.raw is not None else self._http(request))
        except TimeoutError:
            self._bad("hang", request)
            self.tally.hangs += 1
            return
        self.tally.statuses[status] = self.tally.statuses.get(status, 0) + 1
        if INTERNAL in text:
            self.tally.internal += 1
            self._bad(text[:300], request)

    async def _http(self, request: FuzzRequest) -> tuple[int, str]:
        url = self.base_url + request.path + (f"?{request.query}" if request.query else "")
        try:
            async with self.session.request(request.method, url, data=request.body, headers=dict(request.headers),
                                            allow_redirects=False) as resp:
                text = (await resp.content.read(64 * 1024)).decode(errors="replace")
                self._remember(request, resp.status, text)
                return resp.status, text
        except (aiohttp.ClientError, ValueError) as exc:  # the manager closed on us (bad request framing)
            return 0, f"connection ended: {exc!r}"

    async def _raw(self, data: bytes) -> tuple[int, str]:
        reader, writer = await asyncio.open_connection(*self.base_url.removeprefix("http://").rsplit(":", 1))
        try:
            writer.write(data)
            with_eof = data.startswith(b"\x16")
            if with_eof:
                writer.write_eof()
            answer = await reader.read(64 * 1024)
        except ConnectionError as exc:
            return 0, f"connection ended: {exc!r}"
        finally:
            writer.close()
        parts = answer.split(b" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        return status, answer.decode(errors="replace")

    def _remember(self, request: FuzzRequest, status: int, text: str) -> None:
        if status != 201 or not request.path.endswith("/create"):
            return
        try:
            answer = json.loads(text)
        except ValueError:
            return
        kind = request.path.rsplit("/", 2)[-2]
        key = "Name" if kind == "volumes" else "Id"
        if kind in self.created and isinstance(answer, dict) and answer.get(key):
            self.created[kind].add(answer[key])

    def _bad(self, what: str, request: FuzzRequest) -> None:
        if len(self.tally.bad) < 10:
            shown = request.raw[:120] if request.raw is not None else (
                request.method, request.path, request.query[:200], (request.body or b"")[:300])
            self.tally.bad.append(f"{what}: {shown!r}")

    async def alive(self) -> bool:
        """Does the manager still answer /info?"""
        try:
            async with self.session.get(self.base_url + "/info", timeout=aiohttp.ClientTimeout(total=10)) as resp:
                return resp.status == 200 and "SystemStatus" in await resp.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return False

    async def clean_up(self) -> list[str]:
        """Remove what the requests created, through the manager; the failures, as text."""
        failures = []
        for kind, path, query in (("containers", "/containers/{}", "?force=1&v=1"), ("networks", "/networks/{}", ""),
                                  ("volumes", "/volumes/{}", "?force=1")):
            for ref in sorted(self.created[kind]):
                async with self.session.delete(self.base_url + path.format(quote(ref, safe="")) + query) as resp:
                    if resp.status not in (200, 204, 404):
                        failures.append(f"{kind} {ref}: {resp.status} {await resp.text()}")
        return failures
