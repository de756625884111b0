"""`shoal manage` flags: classic Swarm's names, defaults and error texts."""
from __future__ import annotations

import pytest

from manager.cmd import configure
from shoal.cli import build_parser
from shoal.flags import UsageError


def parse(*argv: str):
    return build_parser().parse_args(["manage", *argv])


def test_defaults_follow_classic_swarm():
    config = configure(parse("nodes://10.0.0.1:2375"))
    assert config.hosts == ["tcp://127.0.0.1:2375"]
    assert config.scheduler.strategy_name == "spread"
    assert config.scheduler.filter_names == ["health", "port", "containerslots", "dependency",
                                             "affinity", "constraint", "network"]
    assert (config.engine.refresh_min, config.engine.refresh_max, config.engine.failure_retry) == (30, 60, 3)
    assert config.heartbeat == 60
    assert (config.cors, config.advertise) == (False, None)


def test_filters_replace_the_default_list_in_the_order_given():
    config = configure(parse("-f", "constraint", "--filter", "health", "--strategy", "binpack", "a:1"))
    assert config.scheduler.filter_names == ["constraint", "health"]
    assert config.scheduler.strategy_name == "binpack"


@pytest.mark.parametrize("argv, message", [
    ((), "discovery required to manage a cluster. See 'shoal manage --help'."),
    (("--engine-refresh-min-interval", "0s", "a:1"), "min refresh interval should be a positive number"),
    (("--engine-refresh-min-interval", "10s", "--engine-refresh-max-interval", "5s", "a:1"),
     "max refresh interval cannot be less than min refresh interval"),
    (("--engine-failure-retry", "0", "a:1"), "invalid failure retry count"),
    (("--engine-pull-stall-timeout", "0s", "a:1"), "--engine-pull-stall-timeout should be a positive duration"),
    (("--engine-refresh-retry", "5", "a:1"), "--engine-refresh-retry is deprecated. Use --engine-failure-retry"),
    (("--heartbeat", "500ms", "a:1"), "--heartbeat should be at least one second"),
    (("--cluster-opt", "swarm.overcommit=-2", "a:1"), "swarm.overcommit should be larger than -1, -2.000000 is invalid"),
    (("--cluster-opt", "swarm.nope=1", "a:1"), "unsupported cluster option: swarm.nope"),
    (("--strategy", "best", "a:1"), "strategy not supported: best"),
    (("--cluster-driver", "mesos-experimental", "a:1"), 'unsupported cluster "mesos-experimental"'),
    (("-c", "kubernetes", "a:1"), 'unsupported cluster "kubernetes"'),
    (("-f", "magic", "a:1"), "filter not supported: magic"),
    (("-H", "tcp://0.0.0.0:99999", "a:1"), "invalid listen address 'tcp://0.0.0.0:99999'"),
    (("--engine-refresh-min-interval", "soon", "a:1"), "invalid value 'soon' for --engine-refresh-min-interval"),
    (("--advertise", "10.0.0.1", "a:1"), "--advertise should be of the form ip:port or hostname:port"),
    (("--cluster-opt", "swarm.overcommit", "a:1"), "invalid --cluster-opt 'swarm.overcommit': expected key=value"),
    # classic Swarm's own test cases (test/integration/cli): values may begin with `-`, flags with one dash
    (("--engine-refresh-min-interval", "-10s", "a:1"), "min refresh interval should be a positive number"),
    (("--engine-refresh-max-interval", "0s", "a:1"), "max refresh interval cannot be less than min refresh interval"),
    (("--engine-refresh-max-interval", "-30s", "a:1"),
     "max refresh interval cannot be less than min refresh interval"),
    (("--engine-refresh-min-interval", "30s", "-engine-refresh-max-interval", "20s", "a:1"),
     "max refresh interval cannot be less than min refresh interval"),
    (("--engine-failure-retry", "-1", "a:1"), "invalid failure retry count"),
    (("--heartbeat", "-10s", "a:1"), "--heartbeat should be at least one second"),
    (("-heartbeat=0s", "a:1"), "--heartbeat should be at least one second"),
    (("--cluster-opt", "swarm.createretry=-1", "a:1"), "swarm.createretry can not be negative, -1 is invalid"),
    (("--cluster-opt", "swarm.createretry=two", "a:1"), "invalid value 'two' for swarm.createretry"),
    (("--replication", "etcd://h:2379/p"), "--advertise address must be provided when using --leader-election"),
    (("--replication", "--advertise", "h:1", "nodes://a:1"),
     "Leader election is only supported with consul, etcd and zookeeper discovery."),
    (("--replication", "--advertise", "h", "etcd://h:2379/p"),
     "--advertise should be of the form ip:port or hostname:port"),
    (("--replication", "--advertise", "h:1", "--replication-ttl", "0s", "etcd://h:2379/p"),
     "--replication-ttl should be a positive number"),
    (("--metrics-addr", "9323", "a:1"), "invalid listen address '9323'"),
    (("--metrics-addr", "unix:///run/m.sock", "a:1"), "--metrics-addr should be a host:port of its own"),
    (("-H", "tcp://127.0.0.1:4000", "--metrics-addr", "127.0.0.1:4000", "a:1"),
     "--metrics-addr should be a host:port of its own (plain HTTP, not one of the -H addresses): 127.0.0.1:4000"),
])
def test_bad_flags_are_refused_with_classic_messages(argv, message):
    with pytest.raises(UsageError) as err:
        configure(parse(*argv))
    assert str(err.value).startswith(message)


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == "shoal version 0.1.0\n"


def test_createretry_and_the_global_flags_reach_the_config():
    config = configure(build_parser().parse_args(
        ["-experimental", "-l", "warn", "manage", "--cluster-opt", "swarm.createretry=2", "a:1"]))
    assert (config.create_retry, config.experimental) == (2, True)
    assert configure(parse("a:1")).create_retry == 0


def test_classic_flags_that_change_nothing_here_are_accepted():
    """classic Swarm's `-c swarm` and its opt-in ps refreshes (Shoal's cache is event-fed, so ps is
    always as fresh as they made it)."""
    config = configure(parse("-c", "swarm", "--refresh-on-node-filter", "--container-name-refresh-filter",
                             "web", "a:1"))
    plain = configure(parse("a:1"))
    assert (config.engine, config.heartbeat, config.scheduler.filter_names) == (
        plain.engine, plain.heartbeat, plain.scheduler.filter_names)


def test_replication_flags():
    config = configure(parse("--replication", "--advertise", "10.0.0.5:4000", "--replication-ttl", "5s",
                             "etcd://h:2379/p"))
    assert (config.replication, config.advertise, config.replication_ttl) == (True, "10.0.0.5:4000", 5)
    assert configure(parse("a:1")).replication_ttl == 20  # classic's default


def test_metrics_addr():
    assert configure(parse("a:1")).metrics_addr is None
    assert configure(parse("--metrics-addr", "127.0.0.1:9323", "a:1")).metrics_addr == "127.0.0.1:9323"
