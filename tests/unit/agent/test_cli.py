"""`shoal join/list/create`: classic Swarm's flags, defaults and error texts."""
import re
from pathlib import Path

import pytest

from agent.__main__ import main

ETCD = "etcd://127.0.0.1:2379/cluster"


@pytest.mark.parametrize("argv, message", [
    (["join", "--advertise", "10.0.0.1:2375"], "discovery required to join a cluster. See 'shoal join --help'."),
    (["join", ETCD], "missing mandatory --advertise flag"),
    (["join", "--advertise", "10.0.0.1", ETCD], "--advertise should be of the form ip:port or hostname:port"),
    (["join", "--advertise", "10.0.0.1:0", ETCD], "--advertise should be of the form ip:port or hostname:port"),
    (["join", "--advertise", "10.0.0.1:2375", "--heartbeat", "500ms", ETCD],
     "--heartbeat should be at least one second"),
    (["join", "--advertise", "10.0.0.1:2375", "--heartbeat", "10s", "--ttl", "10s", ETCD],
     "--ttl must be strictly superior to the heartbeat value"),
    (["join", "--advertise", "10.0.0.1:2375", "--ttl", "30s", ETCD],
     "--ttl must be strictly superior to the heartbeat value"),                # default heartbeat is 60s
    (["join", "--advertise", "10.0.0.1:2375", "--delay=-1s", ETCD], "--delay should not be a negative number"),
    (["join", "--advertise", "10.0.0.1:2375", "--heartbeat", "soon", ETCD],
     'invalid value \'soon\' for --heartbeat: time: invalid duration "soon"'),
    (["join", "--advertise", "10.0.0.1:2375", "--discovery-opt", "kv.path", ETCD],
     "invalid --discovery-opt 'kv.path': expected key=value"),
    (["join", "--advertise", "10.0.0.1:2375", "token://abcdef"], "hosted discovery service, which no longer exists"),
    (["join", "--advertise", "10.0.0.1:2375", "nodes://10.0.0.1:2375"], "cannot be joined"),
    (["join", "--advertise", "10.0.0.1:2376", "--engine", "https://10.0.0.1:2376", ETCD],
     "--engine https://... needs --tls or --tlsverify"),
    (["join", "--advertise", "10.0.0.1:2376", "--tlsverify", "--tlscert", "c.pem", "--tlskey", "k.pem", ETCD],
     "--tlscacert must be provided when using --tlsverify"),
    (["join", "--advertise", "10.0.0.1:2376", "--tlscert", "c.pem", ETCD],
     "--tlscert, --tlskey and --tlscacert require the use of either --tls or --tlsverify"),
    (["list"], "discovery required to list a cluster. See 'shoal list --help'."),
    (["list", "--timeout", "0s", ETCD], "--timeout should be a positive number"),
    (["list", "consul://10.0.0.1:8500/x"], "unsupported discovery consul://"),
    # classic Swarm's own test cases (test/integration/cli): values that begin with `-` reach the checks
    (["list", "--timeout", "-10s", ETCD], "--timeout should be a positive number"),
    (["list", "-timeout", "-1s", ETCD], "--timeout should be a positive number"),
    (["join", "--advertise", "10.0.0.1:2375", "--delay", "-30s", ETCD], "--delay should not be a negative number"),
    (["join", "--advertise=10.0.0.1:2375", "--heartbeat=-10s", "--ttl=10s", ETCD],
     "--heartbeat should be at least one second"),
    (["join", "--advertise", "10.0.0.1:2375", "--heartbeat", "1s", "--ttl", "-10s", ETCD],
     "--ttl must be strictly superior to the heartbeat value"),
    (["join", "-advertise", "127.0.0.1:65536", ETCD], "--advertise should be of the form ip:port or hostname:port"),
])
def test_bad_flags_are_explained(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err.splitlines()[-1]  # after the log lines of what it tried, if any
    assert err.startswith(f"shoal {argv[0]}: ") and message in err


def test_list_prints_one_address_per_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cluster = tmp_path / "cluster"
    cluster.write_text("10.0.0.2:2375\n10.0.0.[10:11]:2375\n")
    assert main(["list", f"file://{cluster}"]) == 0
    assert capsys.readouterr().out == "10.0.0.10:2375\n10.0.0.11:2375\n10.0.0.2:2375\n"


def test_list_times_out_on_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").write_text("# nobody yet\n")
    assert main(["list", "--timeout", "300ms", f"file://{tmp_path}/empty"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "Timed out" in captured.err


def test_list_reads_discovery_from_env(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SWARM_DISCOVERY", "nodes://10.0.0.5:2375")
    assert main(["list"]) == 0
    assert capsys.readouterr().out == "10.0.0.5:2375\n"


def test_create_prints_a_new_32_hex_cluster_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["create"]) == 0
    first = capsys.readouterr().out
    assert main(["create"]) == 0
    second = capsys.readouterr().out
    assert re.fullmatch(r"[0-9a-f]{32}\n", first) and first != second


def test_join_defaults_are_classic(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["join", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for expected in ("--advertise ADVERTISE, --addr ADVERTISE", "(default 60s)", "(default 180s)", "(default 0s)"):
        assert expected in help_text
