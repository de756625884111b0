"""Classic Swarm's global flags before the command: `-l/--log-level`, `--debug`, `--experimental`."""
from __future__ import annotations

import logging

import pytest

from shoal.cli import build_parser, main
from shoal.logs import level_of


@pytest.mark.parametrize("argv, level", [
    ([], logging.INFO),
    (["-l", "debug"], logging.DEBUG),
    (["--log-level", "warn"], logging.WARNING),
    (["--log-level=error"], logging.ERROR),
    (["-log-level", "fatal"], logging.CRITICAL),
    (["--debug"], logging.DEBUG),
    (["-debug", "-l", "error"], logging.DEBUG),  # --debug wins, as in classic Swarm
])
def test_log_level_flags(argv, level):
    args = build_parser().parse_args([*argv, "list", "nodes://10.0.0.1:2375"])
    assert level_of(args, logging.INFO) == level


@pytest.mark.parametrize("flag", ["--experimental", "-experimental"])
def test_experimental_is_accepted_in_both_spellings(flag):
    assert build_parser().parse_args([flag, "create"]).experimental is True
    assert build_parser().parse_args(["create"]).experimental is False


def test_debug_from_the_environment(monkeypatch):
    monkeypatch.setenv("DEBUG", "1")
    assert build_parser().parse_args(["create"]).debug is True


@pytest.mark.parametrize("command", [["list", "nodes://10.0.0.1:2375"], ["manage", "nodes://10.0.0.1:2375"],
                                     ["join", "--advertise", "10.0.0.1:2375", "nodes://10.0.0.1:2375"]])
def test_an_unknown_level_is_refused_by_every_command(command, capsys):
    assert main(["-l", "chatty", *command]) == 1
    assert capsys.readouterr().err == (f'shoal {command[0]}: not a valid log level: "chatty" '
                                       "(debug, info, warn, error, fatal or panic)\n")
