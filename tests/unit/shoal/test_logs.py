"""`--log-format text|json`: one line per event with stable keys, tracebacks kept on the line,
secrets masked; the flag works before the command and after `manage` / `join`."""
from __future__ import annotations

import json
import logging
from typing import Iterator

import pytest

from shoal.cli import build_parser, main
from shoal.logs import format_of, setup, split_message

JOIN = ["join", "--advertise", "10.0.0.1:2375", "nodes://10.0.0.1:2375"]


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Put the root logger back as it was after `setup` replaced its handler."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("message, event, fields", [
    ("container created container=3f2a name=web node=node1 image=busybox took_ms=12.5",
     "container created", {"container": "3f2a", "name": "web", "node": "node1", "image": "busybox", "took_ms": 12.5}),
    ("agent: joining addr=10.0.0.1:2375 heartbeat=1s", "joining", {"addr": "10.0.0.1:2375", "heartbeat": "1s"}),
    ("events stream lost addr=h:1 node=node2 error='Server disconnected now'", "events stream lost",
     {"addr": "h:1", "node": "node2", "error": "Server disconnected now"}),
    ("discovery members=3", "discovery", {"members": 3}),
    ("shutting down", "shutting down", {}),
    ("login sent auth=eyJ1c2VyIjoi password=hunter2 user=bob", "login sent",
     {"auth": "***", "password": "***", "user": "bob"}),
])
def test_messages_split_into_event_and_keys(message, event, fields):
    assert split_message(message) == (event, fields)


def test_json_lines(root_logging, capsys):
    setup(build_parser().parse_args(["--log-format", "json", *JOIN]))
    log = logging.getLogger("shoal.cluster")
    log.info("container created container=%s node=%s took_ms=%.1f", "3f2a", "node1", 12.25)
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        log.exception("refresh loop error addr=%s", "h:1")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first.pop("time").endswith("Z")
    assert first == {"level": "info", "logger": "shoal.cluster", "event": "container created",
                     "container": "3f2a", "node": "node1", "took_ms": 12.2}
    assert second["event"] == "refresh loop error" and second["level"] == "error"
    assert "ValueError: boom\nsecond line" in second["trace"]


def test_text_lines_stay_one_line_per_event(root_logging, capsys):
    setup(build_parser().parse_args(JOIN))
    log = logging.getLogger("shoal.engine")
    log.warning("engine unhealthy addr=%s node=%s error=%r", "h:1", "node2", "a\nb")
    try:
        raise OSError("down")
    except OSError:
        log.exception("events loop error token=%s", "s3cr3t")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("time=") and lines[0].endswith(
        " level=warning logger=shoal.engine engine unhealthy addr=h:1 node=node2 error='a\\nb'")
    assert " token=*** trace=\"Traceback" in lines[1] and "s3cr3t" not in lines[1]


@pytest.mark.parametrize("argv, fmt", [
    (JOIN, "text"),
    (["--log-format", "json", *JOIN], "json"),
    (["-log-format=json", *JOIN], "json"),
    ([*JOIN[:1], "--log-format", "json", *JOIN[1:]], "json"),
    (["manage", "--log-format", "json", "nodes://10.0.0.1:2375"], "json"),
    (["--log-format", "json", "manage", "nodes://10.0.0.1:2375"], "json"),
])
def test_log_format_before_or_after_the_command(argv, fmt):
    assert format_of(build_parser().parse_args(argv)) == fmt


@pytest.mark.parametrize("command", [["manage", "nodes://10.0.0.1:2375"], JOIN])
def test_an_unknown_format_is_refused(command, capsys, root_logging):
    assert main(["--log-format", "xml", *command]) == 1
    assert capsys.readouterr().err == f'shoal {command[0]}: not a valid log format: "xml" (text or json)\n'
