"""The system Chromium under Selenium (Debian's `chromium`, `chromium-driver`); nothing downloaded.

Shared by the browser tests and `scripts/dashboard_screenshot.py`.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1400,1000",
)


def missing() -> str:
    """Why the browser cannot start here ("" when it can): names the package to install."""
    if not CHROMIUM.exists():
        return (
            f"{CHROMIUM} is missing: install Debian's package `chromium` (apt-get install chromium)"
        )
    if not CHROMEDRIVER.exists():
        return (
            f"{CHROMEDRIVER} is missing: install Debian's package `chromium-driver` "
            "(apt-get install chromium-driver)."
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: `pip install -c constraints.txt -e '.[dev]'`."
    return ""


def _refuse_selenium_manager(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError(
        "Selenium Manager was asked for a driver: these tests use /usr/bin/chromedriver."
    )


def launch() -> tuple[Any, Path]:
    """A headless Chromium keeping its browser log, and its new profile folder (delete it after)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common import selenium_manager

    # Never download a driver or phone home: no Selenium Manager, even by accident.
    os.environ["SE_OFFLINE"] = "true"
    os.environ["SE_AVOID_STATS"] = "true"
    selenium_manager.SeleniumManager.binary_paths = _refuse_selenium_manager  # type: ignore[method-assign]
    profile = Path(tempfile.mkdtemp(prefix="music-etl-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(
            service=Service(executable_path=str(CHROMEDRIVER)), options=options
        )
    except Exception:
        shutil.rmtree(profile, ignore_errors=True)
        raise
    return driver, profile


def full_page_png(driver: Any, path: Path, width: int = 1400) -> Path:
    """Save the whole page (not only the viewport), `width` CSS pixels wide, as a PNG."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    metrics["height"] = height
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def wait_ready(driver: Any, shown: str | None = None, timeout: float = 15) -> None:
    """Wait until the page has drawn every section (and shows `day|genre` when given)."""
    from selenium.webdriver.support.ui import WebDriverWait

    script = (
        "const b = document.body; const q = document.getElementById('quality');"
        "const r = document.getElementById('runs');"
        "return b.dataset.state === 'ready' && q.dataset.state === 'ready'"
        " && r.dataset.state === 'ready' ? (b.dataset.shown || '') : null;"
    )

    def ready(d: Any) -> bool:
        now = d.execute_script(script)
        return now is not None and (shown is None or now == shown)

    WebDriverWait(driver, timeout).until(ready, f"the dashboard never showed {shown or 'anything'}")
