"""Helpers for the browser tests of `runner ui` (tests/ui, and the Kubernetes one in tests/e2e).

Headless Chromium from the OS packages (Debian: chromium, chromium-driver; `make ui-deps`)
driven by Selenium.  Screenshots go to tests/ui/screenshots/ (git-ignored), or $RUNNER_UI_SCREENSHOTS.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

SCREENSHOTS = Path(os.environ.get("RUNNER_UI_SCREENSHOTS") or Path(__file__).parent / "ui" / "screenshots")
T = TypeVar("T")


def chromium_paths() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        raise AssertionError("headless Chromium is missing: apt-get install chromium chromium-driver (make ui-deps)")
    return browser, driver


@contextmanager
def chrome(downloads: Path) -> Iterator[webdriver.Chrome]:
    browser, driver_path = chromium_paths()
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--disable-gpu",
        "--no-first-run",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console errors (a CSP refusal) are checked
    opts.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    # the driver is the OS package's: Selenium Manager must not try to download one
    d = webdriver.Chrome(options=opts, service=Service(executable_path=driver_path))
    d.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield d
    finally:
        d.quit()


@contextmanager
def ui_server(env: dict[str, str]) -> Iterator[str]:
    """`runner ui --port 0` as a user starts it (the CLI), with this environment; yields its URL."""
    p = subprocess.Popen(
        [sys.executable, "-m", "runner", "ui", "--port", "0", "--no-open"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stderr is not None
        line = p.stderr.readline()
        m = re.search(r"(http://\S+)", line)
        assert m, f"runner ui printed no URL: {line!r} {p.stderr.read() if p.poll() is not None else ''}"
        yield m.group(1).rstrip("/")
    finally:
        p.terminate()
        p.wait(timeout=10)


def wait(what: str, probe: Callable[[], T | None], *, timeout: float = 60, every: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def screenshot(d: webdriver.Chrome, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    # the whole page, not just the window
    height = d.execute_script("return document.documentElement.scrollHeight")
    d.set_window_size(1400, max(1000, min(int(height) + 40, 6000)))
    d.save_screenshot(str(path))
    d.set_window_size(1400, 1000)
    print(f"screenshot: {path}")
    return path


def table_rows(d: webdriver.Chrome, table: str) -> list[dict[str, Any]]:
    return list(
        d.execute_script(
            "return [...document.querySelectorAll(arguments[0] + ' tbody tr')].map(tr => ({...tr.dataset,"
            " cells: [...tr.cells].map(c => c.textContent)}))",
            table,
        )
    )


def console_errors(d: webdriver.Chrome) -> list[str]:
    """What the page logged as errors (a script or style refused by the CSP, a failed request)."""
    return [str(e["message"]) for e in d.get_log("browser") if e["level"] == "SEVERE"]
