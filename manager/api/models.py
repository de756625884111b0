"""Pydantic models of the request bodies and query parameters Shoal reads (Engine API 1.41 types).

Every model is strict like Go's JSON decoder (no "5" for an integer, no 1.5 for an int64, no 0 for a
boolean; null is accepted wherever Go accepts it) and lets unknown fields through: the engine gets
the client's JSON as it was sent. `validate` turns the first problem into a 400 naming the field,
e.g. `HostConfig.PortBindings.80/tcp[0].HostPort: invalid port specification: "abc"`.

A handler never validates by hand: `body = await read_model(call, CreateBody)` (manager.api.jsonio)
gives the typed body (`body.raw` is the JSON object to forward).
"""
from __future__ import annotations

import json
import re
from typing import Annotated, Any, TypeVar

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, Json, PlainValidator, PrivateAttr,
                      RootModel, ValidationError)
from pydantic_core import PydanticCustomError

from manager.errors import ApiError

INT64 = 2 ** 63 - 1
Int64 = Annotated[int, Field(ge=-INT64 - 1, le=INT64)]
Size = Annotated[int, Field(ge=0, le=INT64)]  # bytes, counts, nano CPUs: never negative
Uint16 = Annotated[int, Field(ge=0, le=65535)]
Uint64 = Annotated[int, Field(ge=0, le=2 ** 64 - 1)]
Swap = Annotated[int, Field(ge=-1, le=INT64)]  # -1: unlimited
Strings = list[str]
StringMap = dict[str, str]
PORT_RE = re.compile(r"(\d+)(?:-(\d+))?")


def _strslice(value: Any) -> Any:
    """Docker's strslice: a string or an array of strings (Cmd, Entrypoint, CapAdd...)."""
    if value is None or isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return value
    raise PydanticCustomError("strslice", "expected a string or an array of strings")


def _port_range(text: str, allow_empty: bool) -> str:
    """`80`, `8000-8010` (and "" when `allow_empty`): numbers within 0-65535, the range ascending."""
    match = PORT_RE.fullmatch(text)
    if not (match or (allow_empty and text == "")) or (match and not _ports_ok(*match.groups())):
        raise PydanticCustomError("port", "invalid port specification: {port}", {"port": json.dumps(text)})
    return text


def _ports_ok(first: str, last: str | None) -> bool:
    return int(first) <= 65535 and (last is None or int(first) <= int(last) <= 65535)


def _port_key(text: str) -> str:
    """`80/tcp`, `53/udp`, `8000-8010` (tcp when no protocol is given)."""
    port, _, proto = text.partition("/")
    _port_range(port, allow_empty=False)
    if "/" in text and not re.fullmatch(r"[a-z]+", proto):
        raise PydanticCustomError("port", "invalid port specification: {port}", {"port": json.dumps(text)})
    return text


StrSlice = Annotated[Any, PlainValidator(_strslice)]
PortKey = Annotated[str, AfterValidator(_port_key)]
HostPortText = Annotated[str, AfterValidator(lambda text: _port_range(text, allow_empty=True))]


class Model(BaseModel):
    """Strict as Go's decoder, every field optional (null is Go's zero value), unknown fields kept."""

    model_config = ConfigDict(extra="allow", strict=True)


class Body(Model):
    """A whole request body; `raw` is the JSON object exactly as the client sent it."""

    _raw: dict = PrivateAttr(default_factory=dict)

    @property
    def raw(self) -> dict:
        return self._raw


# ---- containers ----------------------------------------------------------------------------------
class PortBinding(Model):
    HostIp: str | None = None
    HostPort: HostPortText | None = None


class Restart(Model):
    Name: str | None = None
    MaximumRetryCount: Int64 | None = None


class WeightDevice(Model):
    Path: str | None = None
    Weight: Uint16 | None = None


class ThrottleDevice(Model):
    Path: str | None = None
    Rate: Uint64 | None = None


class DeviceMapping(Model):
    PathOnHost: str | None = None
    PathInContainer: str | None = None
    CgroupPermissions: str | None = None


class Ulimit(Model):
    Name: str | None = None
    Soft: Int64 | None = None
    Hard: Int64 | None = None


class Mount(Model):
    Type: str | None = None
    Source: str | None = None
    Target: str | None = None
    ReadOnly: bool | None = None
    Consistency: str | None = None
    BindOptions: dict | None = None
    VolumeOptions: dict | None = None
    TmpfsOptions: dict | None = None


class LogSettings(Model):
    Type: str | None = None
    Config: StringMap | None = None


class Resources(Model):
    """HostConfig's resources, also the body of `POST /containers/{id}/update`."""

    CpuShares: Size | None = None
    Memory: Size | None = None
    NanoCpus: Size | None = None
    CgroupParent: str | None = None
    BlkioWeight: Uint16 | None = None
    BlkioWeightDevice: list[WeightDevice] | None = None
    BlkioDeviceReadBps: list[ThrottleDevice] | None = None
    BlkioDeviceWriteBps: list[ThrottleDevice] | None = None
    BlkioDeviceReadIOps: list[ThrottleDevice] | None = None
    BlkioDeviceWriteIOps: list[ThrottleDevice] | None = None
    CpuPeriod: Int64 | None = None
    CpuQuota: Int64 | None = None
    CpuRealtimePeriod: Int64 | None = None
    CpuRealtimeRuntime: Int64 | None = None
    CpusetCpus: str | None = None
    CpusetMems: str | None = None
    Devices: list[DeviceMapping] | None = None
    DeviceCgroupRules: Strings | None = None
    DeviceRequests: list[dict] | None = None
    KernelMemory: Int64 | None = None
    KernelMemoryTCP: Int64 | None = None
    MemoryReservation: Size | None = None
    MemorySwap: Swap | None = None
    MemorySwappiness: Int64 | None = None
    OomKillDisable: bool | None = None
    PidsLimit: Int64 | None = None
    Ulimits: list[Ulimit] | None = None
    CpuCount: Size | None = None
    CpuPercent: Annotated[int, Field(ge=0, le=100)] | None = None
    IOMaximumIOps: Uint64 | None = None
    IOMaximumBandwidth: Uint64 | None = None


class HostSettings(Resources):
    Binds: Strings | None = None
    ContainerIDFile: str | None = None
    LogConfig: LogSettings | None = None
    NetworkMode: str | None = None
    PortBindings: dict[PortKey, list[PortBinding] | None] | None = None
    RestartPolicy: Restart | None = None
    AutoRemove: bool | None = None
    VolumeDriver: str | None = None
    VolumesFrom: Strings | None = None
    CapAdd: StrSlice = None
    CapDrop: StrSlice = None
    CgroupnsMode: str | None = None
    Dns: Strings | None = None
    DnsOptions: Strings | None = None
    DnsSearch: Strings | None = None
    ExtraHosts: Strings | None = None
    GroupAdd: Strings | None = None
    IpcMode: str | None = None
    Cgroup: str | None = None
    Links: Strings | None = None
    OomScoreAdj: Int64 | None = None
    PidMode: str | None = None
    Privileged: bool | None = None
    PublishAllPorts: bool | None = None
    ReadonlyRootfs: bool | None = None
    SecurityOpt: Strings | None = None
    StorageOpt: StringMap | None = None
    Tmpfs: StringMap | None = None
    UTSMode: str | None = None
    UsernsMode: str | None = None
    ShmSize: Size | None = None
    Sysctls: StringMap | None = None
    Runtime: str | None = None
    ConsoleSize: list[Uint64] | None = None
    Isolation: str | None = None
    Mounts: list[Mount] | None = None
    MaskedPaths: Strings | None = None
    ReadonlyPaths: Strings | None = None
    Init: bool | None = None


class HealthConfig(Model):
    Test: Strings | None = None
    Interval: Int64 | None = None
    Timeout: Int64 | None = None
    StartPeriod: Int64 | None = None
    Retries: Int64 | None = None


class ContainerConfig(Body):
    """A container's Config: the body of `POST /commit`, and the base of a create body."""

    Hostname: str | None = None
    Domainname: str | None = None
    User: str | None = None
    AttachStdin: bool | None = None
    AttachStdout: bool | None = None
    AttachStderr: bool | None = None
    ExposedPorts: dict[PortKey, dict | None] | None = None
    Tty: bool | None = None
    OpenStdin: bool | None = None
    StdinOnce: bool | None = None
    Env: Strings | None = None
    Cmd: StrSlice = None
    Healthcheck: HealthConfig | None = None
    ArgsEscaped: bool | None = None
    Image: str | None = None
    Volumes: dict[str, dict | None] | None = None
    WorkingDir: str | None = None
    Entrypoint: StrSlice = None
    NetworkDisabled: bool | None = None
    MacAddress: str | None = None
    OnBuild: Strings | None = None
    Labels: StringMap | None = None
    StopSignal: str | None = None
    StopTimeout: Int64 | None = None
    Shell: Strings | None = None


class EndpointIPAMConfig(Model):
    IPv4Address: str | None = None
    IPv6Address: str | None = None
    LinkLocalIPs: Strings | None = None


class EndpointSettings(Model):
    IPAMConfig: EndpointIPAMConfig | None = None
    Links: Strings | None = None
    Aliases: Strings | None = None
    NetworkID: str | None = None
    EndpointID: str | None = None
    Gateway: str | None = None
    IPAddress: str | None = None
    IPPrefixLen: Int64 | None = None
    IPv6Gateway: str | None = None
    GlobalIPv6Address: str | None = None
    GlobalIPv6PrefixLen: Int64 | None = None
    MacAddress: str | None = None
    DriverOpts: StringMap | None = None


class Networking(Model):
    EndpointsConfig: dict[str, EndpointSettings | None] | None = None


class CreateBody(ContainerConfig):
    """`POST /containers/create`: the Config, HostConfig and NetworkingConfig (and the legacy
    top-level resources old clients send, which classic Swarm read too)."""

    HostConfig: HostSettings | None = None
    NetworkingConfig: Networking | None = None
    Memory: Size | None = None
    MemorySwap: Swap | None = None
    MemoryReservation: Size | None = None
    CpuShares: Size | None = None
    NanoCpus: Size | None = None
    Cpuset: str | None = None


class UpdateBody(Resources, Body):
    """`POST /containers/{id}/update`."""

    RestartPolicy: Restart | None = None


class ExecCreateBody(Body):
    """`POST /containers/{id}/exec`."""

    AttachStdin: bool | None = None
    AttachStdout: bool | None = None
    AttachStderr: bool | None = None
    ConsoleSize: list[Uint64] | None = None
    DetachKeys: str | None = None
    Tty: bool | None = None
    Env: Strings | None = None
    Cmd: StrSlice = None
    Privileged: bool | None = None
    User: str | None = None
    WorkingDir: str | None = None


class ExecStartBody(Body):
    """`POST /exec/{id}/start`."""

    Detach: bool | None = None
    Tty: bool | None = None
    ConsoleSize: list[Uint64] | None = None


class CommitBody(ContainerConfig):
    """`POST /commit`: the new image's container config (its `Cmd`, `Env`, `Labels`...)."""


class AuthBody(Body):
    """`POST /auth`: the credentials `docker login` checks against a registry."""

    username: str | None = None
    password: str | None = None
    auth: str | None = None
    email: str | None = None
    serveraddress: str | None = None
    identitytoken: str | None = None
    registrytoken: str | None = None


# ---- networks and volumes ------------------------------------------------------------------------
class IPAMPool(Model):
    Subnet: str | None = None
    IPRange: str | None = None
    Gateway: str | None = None
    AuxiliaryAddresses: StringMap | None = None


class IpamSettings(Model):
    Driver: str | None = None
    Config: list[IPAMPool] | None = None
    Options: StringMap | None = None


class NetworkCreateBody(Body):
    """`POST /networks/create`."""

    Name: str | None = None
    CheckDuplicate: bool | None = None
    Driver: str | None = None
    Scope: str | None = None
    EnableIPv6: bool | None = None
    IPAM: IpamSettings | None = None
    Internal: bool | None = None
    Attachable: bool | None = None
    Ingress: bool | None = None
    ConfigOnly: bool | None = None
    ConfigFrom: dict | None = None
    Options: StringMap | None = None
    Labels: StringMap | None = None


class NetworkConnectBody(Body):
    """`POST /networks/{id}/connect` and `/disconnect`."""

    Container: str
    EndpointConfig: EndpointSettings | None = None
    Force: bool | None = None


class VolumeCreateBody(Body):
    """`POST /volumes/create`."""

    Name: str | None = None
    Driver: str | None = None
    DriverOpts: StringMap | None = None
    Labels: StringMap | None = None
    ClusterVolumeSpec: dict | None = None


# ---- nodes ---------------------------------------------------------------------------------------
class NodeSpecBody(Body):
    """`POST /nodes/{id}/update` (a swarm-mode NodeSpec)."""

    Name: str | None = None
    Labels: StringMap | None = None
    Role: str | None = None
    Availability: str | None = None


# ---- query parameters ----------------------------------------------------------------------------
def _filter_values(value: Any) -> Any:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    if isinstance(value, dict) and all(isinstance(v, bool) for v in value.values()):
        return value
    raise PydanticCustomError("filter", "expected an array of strings or an object of booleans")


class Filters(RootModel[dict[str, Annotated[Any, PlainValidator(_filter_values)]]]):
    """`filters={"label":["a=b"]}` or dockerd's own `{"label":{"a=b":true}}`."""

    def values(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.root.items()}


class BuildQuery(BaseModel):
    """The query parameters of `POST /build` that carry JSON or numbers (the rest pass through)."""

    model_config = ConfigDict(extra="allow")  # lax: query values are text, "512" is a number

    buildargs: Json[dict[str, str | None]] | None = None
    labels: Json[StringMap] | None = None
    cachefrom: Json[Strings] | None = None
    memory: Int64 | None = None
    memswap: Swap | None = None
    cpushares: Size | None = None
    cpuperiod: Int64 | None = None
    cpuquota: Int64 | None = None
    shmsize: Size | None = None


M = TypeVar("M", bound=BaseModel)
MESSAGES = {
    "int_type": "expected an integer", "int_parsing": "expected an integer",
    "int_from_float": "expected an integer", "string_type": "expected a string",
    "bool_type": "expected true or false", "bool_parsing": "expected true or false",
    "list_type": "expected an array", "dict_type": "expected an object", "model_type": "expected an object",
    "model_attributes_type": "expected an object", "missing": "is required",
    "json_invalid": "invalid JSON", "json_type": "expected JSON text",
}


def validate(model: type[M], data: object, what: str) -> M:
    """`data` as a `model`; a 400 `<what>: <field>: <problem>` for the first thing wrong with it."""
    try:
        result = model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, f"{what}: {describe(exc)}") from None
    if isinstance(result, Body) and isinstance(data, dict):
        result._raw = data
    return result


def describe(exc: ValidationError) -> str:
    """The first error as `Field.Path[0]: problem, got <value>` (+ how many more there were)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    problem = MESSAGES.get(first["type"], first["msg"])
    if first["type"] in ("greater_than_equal", "less_than_equal"):
        bound = first["ctx"].get("ge", first["ctx"].get("le"))
        problem = f"must be {'at least' if 'ge' in first['ctx'] else 'at most'} {bound}"
    text = f"{field_path(first['loc'])}: {problem}" if first["loc"] else problem
    if first["type"] not in ("missing", "port"):
        text += f", got {_shown(first['input'])}"
    more = len(errors) - 1
    return text + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def field_path(loc: tuple) -> str:
    """('HostConfig', 'PortBindings', '80/tcp', 0, 'HostPort') -> HostConfig.PortBindings.80/tcp[0].HostPort"""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part != "[key]":
            text += f".{part}" if text else str(part)
    return text


def _shown(value: object) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
