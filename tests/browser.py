"""A real browser for tests of the HTML reports: Selenium driving headless Chromium (Debian's chromium and
chromedriver). ``browser_or_skip()`` skips the test, naming what is missing, where any of the three is absent.

The browser is isolated: a fresh profile directory, no network of its own (no background networking,
component updates, sync or QUIC), console messages kept (``goog:loggingPrefs``) so a test can assert that none is
an error."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def _find(name: str, env: str) -> str | None:
    """$ENV, else /usr/bin/NAME, else NAME on PATH."""
    for candidate in (os.environ.get(env), f"/usr/bin/{name}", shutil.which(name)):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def missing() -> list[str]:
    out = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        out.append("selenium (pip install selenium, in the dev extra)")
    if _find("chromium", "HWNAS_CHROMIUM") is None:
        out.append("chromium (/usr/bin/chromium or $HWNAS_CHROMIUM; apt-get install chromium)")
    if _find("chromedriver", "HWNAS_CHROMEDRIVER") is None:
        out.append("chromedriver (/usr/bin/chromedriver or $HWNAS_CHROMEDRIVER; apt-get install chromium-driver)")
    return out


def start_browser(width: int = 1280, height: int = 900):
    """A headless Chromium driven by Selenium, with a fresh profile; quit it when done."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _find("chromium", "HWNAS_CHROMIUM")
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="hwnas-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(_find("chromedriver", "HWNAS_CHROMEDRIVER")))
    driver.hwnas_profile = profile
    return driver


def stop_browser(driver) -> None:
    driver.quit()
    shutil.rmtree(driver.hwnas_profile, ignore_errors=True)


def browser_or_skip(width: int = 1280, height: int = 900):
    gone = missing()
    if gone:
        pytest.skip("no browser to test the report in: missing " + "; ".join(gone))
    return start_browser(width, height)


def severe_console_messages(driver) -> list[dict]:
    """The browser console's errors since the last call (SEVERE: a script error, a failed load)."""
    return [m for m in driver.get_log("browser") if m.get("level") == "SEVERE"]
