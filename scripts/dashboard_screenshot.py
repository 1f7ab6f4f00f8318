"""Take `docs/dashboard.png`: the dashboard of a lake, full page, 1400 px wide.

Starts `music-etl serve` on a free loopback port over the lake, opens `/` in the system's headless
Chromium (Debian `chromium` and `chromium-driver`), waits for every chart and saves the page.

    make dashboard-png    # = make demo, then: .venv/bin/python scripts/dashboard_screenshot.py
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser import chromium  # noqa: E402 - the one place that knows how to start the browser

MUSIC_ETL = Path(sys.executable).parent / "music-etl"


def main() -> int:
    """Parse the arguments, take the screenshot, print where it went."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", default="demo-lake", help="the lake to show (default: demo-lake)")
    parser.add_argument("--out", default="docs/dashboard.png", help="where to write the PNG")
    args = parser.parse_args()
    lake = Path(args.lake)
    if not (lake / "_state").is_dir():
        print(f"{lake} is not a lake with results: run `make demo` first (or pass --lake).")
        return 2
    reason = chromium.missing()
    if reason:
        print(f"Cannot take the screenshot: {reason}")
        return 2
    path = take(lake, Path(args.out))
    print(f"wrote {path}")
    return 0


def take(lake: Path, out: Path) -> Path:
    """Serve `lake`, open the dashboard, save it to `out`."""
    port = _free_port()
    command = [str(MUSIC_ETL), "serve", "--lake", str(lake), "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, server)
        driver, profile = chromium.launch()
        try:
            driver.get(f"{base}/")
            chromium.wait_ready(driver)
            return chromium.full_page_png(driver, out)
        finally:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)
    finally:
        server.terminate()
        server.wait(timeout=15)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/api/v1/health", timeout=2) as answer:  # noqa: S310
                if json.load(answer).get("status") == "ok":
                    return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"music-etl serve did not come up on {base} (exit code {server.poll()}).")


if __name__ == "__main__":
    sys.exit(main())
