"""The dashboard in a real headless Chromium (Debian's chromium + chromium-driver, through Selenium)
against a manager on the real lab: nodes, live containers, placements and no-fits, events."""
from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.support.ui import WebDriverWait

from lab.browser import headless_chromium, query
from lab.state import LabState
from tests.support.manager import Manager, start_manager

ARTIFACTS = Path(os.environ.get("SHOAL_ARTIFACTS", "/tmp/shoal-artifacts"))
LIVE_WITHIN = 2.0  # seconds from `docker run` to the container on its node's card


@pytest.fixture(scope="module")
def manager(lab: LabState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Manager]:
    manager = start_manager("nodes://" + ",".join(lab.engines), healthy=3,
                            log_dir=tmp_path_factory.mktemp("dashboard"))
    yield manager
    manager.docker("rm", "-f", "dash1", check=False)
    manager.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    driver = headless_chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


def wait(browser: webdriver.Chrome, check, timeout: float = 10.0, what: str = ""):
    """Poll the page until `check(browser)` returns something truthy; that value."""
    return WebDriverWait(browser, timeout, poll_frequency=0.05).until(check, what)


def cards(browser: webdriver.Chrome) -> dict[str, str]:
    """Node name -> the state badge on its card."""
    return dict(zip(query(browser, ".node", "data-node"), query(browser, ".node .state")))


def test_page_is_served_from_the_package_and_browsers_are_sent_to_it(manager: Manager) -> None:
    request = urllib.request.Request(manager.url + "/", headers={"Accept": "text/html"})
    with urllib.request.urlopen(request, timeout=5) as reply:
        assert reply.url == manager.url + "/dashboard/"
        page = reply.read().decode()
    assert '<script src="app.js">' in page and "http" not in page.split("<body>")[1]  # nothing from a CDN
    assert manager.api("GET", "/")[0] == 404  # a Docker client still finds no page at `/`
    status, body = manager.api("POST", "/dashboard/stream")
    assert status >= 400 and "message" in body  # read-only


def test_dashboard_shows_the_cluster_live(manager: Manager, browser: webdriver.Chrome) -> None:
    browser.get(manager.url + "/dashboard/")
    wait(browser, lambda b: cards(b) == {"node1": "Healthy", "node2": "Healthy", "node3": "Healthy"},
         what="3 healthy nodes")
    assert "size=small" in query(browser, '.node[data-node="node1"] .labels')[0]
    memory_bar = '.node[data-node="node2"] .bar.memory'
    used_before = int(query(browser, memory_bar, "data-used")[0])

    began = time.monotonic()
    manager.docker("run", "-d", "--name", "dash1", "-m", "64m", "-e", "constraint:node==node2",
                   "busybox", "sleep", "300")
    running = '.node[data-node="node2"] tr.running[data-container="dash1"]'
    row = wait(browser, lambda b: query(b, running), timeout=LIVE_WITHIN, what="dash1 running on node2's card")[0]
    took = time.monotonic() - began
    print(f"dashboard: docker run -> container running on its node's card in {took:.2f}s")
    assert row.startswith("dash1busyboxUp")
    assert not query(browser, '.node:not([data-node="node2"]) tr[data-container="dash1"]')
    assert int(query(browser, memory_bar, "data-used")[0]) == used_before + 64 * 2**20
    placed = query(browser, '#placements li[data-outcome="placed"]')[0]
    assert "dash1 (busybox) → node2" in placed
    wait(browser, lambda b: any("node2 container start dash1" in e for e in query(b, "#events li")),
         what="start event")

    failed = subprocess.run(["/usr/bin/docker", "run", "-e", "constraint:size==huge", "busybox", "true"],
                            env=manager.env, capture_output=True, text=True, timeout=60)
    assert failed.returncode != 0 and "size==huge" in failed.stderr
    no_fit = wait(browser, lambda b: query(b, '#placements li[data-outcome="no_fit"]'), what="a no-fit")[0]
    selector = '#placements li[data-outcome="no_fit"]:first-child .reasons li'
    reasons = dict(zip(query(browser, selector, "data-node"), query(browser, selector)))
    assert reasons == {"node1": "node1: constraint size==huge (node has size=small)",
                       "node2": "node2: constraint size==huge (node has no label size)",
                       "node3": "node3: constraint size==huge (node has size=xxl)"}
    assert "(unnamed) (busybox): no fit (constraint)" in no_fit
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    assert browser.save_screenshot(str(shot))
    print(f"dashboard: screenshot {shot}")
