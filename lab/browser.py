"""Headless Chromium (Debian's chromium + chromium-driver, driven through Selenium) for looking at
the dashboard: in its e2e test and in bench.dashboard. Selenium is a test dependency, imported
only by whoever uses this module."""
from __future__ import annotations

import shutil
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from lab.procs import LabError

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# As root: no sandbox; no GPU; nothing of its own on the network; `profile` is a fresh directory.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000")


def headless_chromium(profile: Path) -> webdriver.Chrome:
    """A started headless Chromium with its profile in `profile`; LabError when it is not installed."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if shutil.which(p) is None]
    if missing:
        raise LabError(f"missing {', '.join(missing)} (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def query(browser: webdriver.Chrome, selector: str, attribute: str | None = None) -> list[str]:
    """The text (or `attribute`) of every element matching `selector`, read in one go: the page
    redraws its nodes on every change, so an element found earlier may be gone."""
    return browser.execute_script(
        "return [...document.querySelectorAll(arguments[0])]"
        ".map(e => arguments[1] ? e.getAttribute(arguments[1]) : e.textContent)", selector, attribute)
