"""The lab's multi-host networking settings: what each dockerd is given, and refused modes."""
from __future__ import annotations

import pytest

from lab.daemons import Host
from lab.overlay import kv_config
from lab.procs import LabError
from lab.state import LabSpec, plan
from lab.tls import TlsPaths
from shoal.cli import build_parser

NODE = Host(name="node2", ip="10.213.9.12", netns="x-node2", veth="x-v2", dir="/d", run_dir="/r", cgroup="c")


def test_kv_engines_point_at_the_lab_etcd_and_advertise_their_own_address():
    assert kv_config(NODE, "10.213.9.1:2379") == {"cluster-store": "etcd://10.213.9.1:2379",
                                                   "cluster-advertise": "10.213.9.12:2375"}
    tls = TlsPaths(ca="/t/ca.pem", server_cert="/t/s.pem", server_key="/t/s.key", cert="/t/c.pem", key="/t/c.key")
    assert kv_config(NODE, "10.213.9.1:2379", tls)["cluster-store-opts"] == {
        "kv.cacertfile": "/t/ca.pem", "kv.certfile": "/t/c.pem", "kv.keyfile": "/t/c.key"}


def test_an_unknown_overlay_mode_is_refused_before_anything_is_made(tmp_path):
    with pytest.raises(LabError, match="--overlay must be one of swarm, kv, not 'vxlan'"):
        plan(LabSpec(name="nettest", subnet="10.213.129.0/24", overlay="vxlan", root=tmp_path))


@pytest.mark.parametrize("argv, mode", [([], None), (["--overlay"], "swarm"), (["--overlay", "kv"], "kv"),
                                        (["--overlay", "--manager", "4000"], "swarm")])  # as `make demo` has it
def test_lab_up_takes_overlay_with_swarm_as_its_default_mode(argv: list[str], mode: str | None):
    assert build_parser().parse_args(["lab", "up", *argv]).overlay == mode


def test_lab_up_refuses_an_unknown_overlay_mode(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["lab", "up", "--overlay", "vxlan"])
    assert "argument --overlay: invalid choice: 'vxlan' (choose from" in capsys.readouterr().err
