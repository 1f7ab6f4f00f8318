"""The dashboard in a real headless Chromium, against `music-etl serve` over a lake `run` made.

One lake, one server, one browser for the whole module. Every value the page shows is checked
against the serving store or the ledger read directly.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from browser import chromium
from music_etl.adapters.ledger import open_ledger
from music_etl.adapters.serving import open_serving
from music_etl.adapters.serving.base import ServingStore
from music_etl.logic.serving_model import DAILY_GENRE_KPIS, TOP_GENRES_PER_DAY, TOP_SONGS_PER_GENRE
from music_etl.settings import load_settings

# One lake, one server, one browser: keep the module on one xdist worker.
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("dashboard")]

MUSIC_ETL = str(Path(sys.executable).parent / "music-etl")
REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "test-output"


def _cli(*args: str) -> None:
    env = {**os.environ, "MUSIC_ETL_SETTLE_SECONDS": "0"}
    done = subprocess.run([MUSIC_ETL, *args], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = chromium.missing()
    if reason:
        pytest.skip(f"BROWSER TESTS SKIPPED: {reason}")
    root = tmp_path_factory.mktemp("dashboard") / "lake"
    _cli("generate", "--lake", str(root), "--streams", "6000", "--files", "2", "--days", "12")
    _cli("run", "--lake", str(root))
    return root


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(base: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"music-etl serve exited with {server.returncode}: {server.stdout.read()}")  # type: ignore[union-attr]
        try:
            with urllib.request.urlopen(f"{base}/api/v1/health", timeout=2) as answer:  # noqa: S310
                if json.load(answer)["status"] == "ok":
                    return
        except OSError:
            time.sleep(0.05)
    pytest.fail("music-etl serve did not answer /api/v1/health within 30 s")


@pytest.fixture(scope="module")
def base(lake: Path) -> Iterator[str]:
    port = _free_port()
    args = [MUSIC_ETL, "serve", "--lake", str(lake), "--port", str(port)]
    server = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, server)
        yield url
    finally:
        server.terminate()
        server.communicate(timeout=15)


@pytest.fixture(scope="module")
def driver(base: str) -> Iterator[Any]:
    browser, profile = chromium.launch()
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def store(lake: Path) -> ServingStore:
    return open_serving(load_settings(lake=str(lake)).serving_url)


def open_page(driver: Any, url: str, shown: str | None = None) -> None:
    driver.get_log("browser")  # start each page with an empty log
    driver.get(url)
    chromium.wait_ready(driver, shown)


def js(driver: Any, script: str, *args: Any) -> Any:
    return driver.execute_script(script, *args)


def query(driver: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(driver.current_url).query).items()}


def bars(driver: Any, chart: str, key: str) -> list[tuple[str, int]]:
    """(data-<key>, data-value) of every bar in the chart `chart`, top to bottom."""
    return [
        (k, int(v))
        for k, v in js(
            driver,
            "return [...document.querySelectorAll(`#${arguments[0]} rect.bar`)]"
            ".map(b => [b.dataset[arguments[1]], b.dataset.value]);",
            chart,
            key,
        )
    ]


def top_genres(store: ServingStore, day: str) -> list[tuple[str, int]]:
    items = sorted(store.read(TOP_GENRES_PER_DAY, [day]), key=lambda i: int(i["rank"]))
    return [(i["genre"], int(i["listen_count"])) for i in items]


def kpi(store: ServingStore, day: str, genre: str) -> dict[str, Any]:
    return store.read(DAILY_GENRE_KPIS, [day], sort_key=genre)[0]


def top_songs(store: ServingStore, day: str, genre: str) -> list[tuple[str, int]]:
    songs = store.read(TOP_SONGS_PER_GENRE, [day], sort_key=genre)[0]["songs"]
    return [(s["track_id"], int(s["play_count"])) for s in sorted(songs, key=lambda s: s["rank"])]


def severe(entries: list[dict[str, Any]]) -> list[str]:
    return [e["message"] for e in entries if e["level"] == "SEVERE"]


def test_opens_on_the_latest_day_without_console_errors_in_under_a_second(
    driver: Any, base: str, store: ServingStore
) -> None:
    latest = store.days()[-1]
    genre = top_genres(store, latest)[0][0]
    open_page(driver, f"{base}/", f"{latest}|{genre}")
    assert severe(driver.get_log("browser")) == []
    assert query(driver) == {"day": latest, "genre": genre}
    timing = js(
        driver,
        "const n = performance.getEntriesByType('navigation')[0];"
        "const ready = Number(document.body.dataset.readyMs);"
        "return {load: n.loadEventEnd - n.startTime, ready};",
    )
    print(
        f"\ndashboard timing: load event {timing['load']:.0f} ms, all charts {timing['ready']} ms"
    )
    assert 0 < timing["ready"] < 1000, timing


def test_every_chart_draws_the_store_values(driver: Any, base: str, store: ServingStore) -> None:
    day = store.days()[-1]
    genre = top_genres(store, day)[0][0]
    open_page(driver, f"{base}/?day={day}&genre={genre}", f"{day}|{genre}")
    assert bars(driver, "top-genres", "genre") == top_genres(store, day)
    assert bars(driver, "top-songs", "trackId") == top_songs(store, day, genre)
    cards = js(
        driver,
        "return Object.fromEntries([...document.querySelectorAll('#kpis .card')]"
        ".map(c => [c.dataset.kpi, [Number(c.dataset.value), c.querySelector('dd').innerText]]));",
    )
    row = kpi(store, day, genre)
    assert cards["listen_count"] == [row["listen_count"], f"{row['listen_count']:,}"]
    assert cards["unique_listeners"][0] == row["unique_listeners"]
    assert cards["total_listening_time"] == [
        row["total_listening_time"],
        f"{row['total_listening_time'] / 3_600_000:,.1f} h".replace(".0 h", " h"),
    ]


def test_trend_shows_the_genre_over_the_30_days_ending_at_the_day(
    driver: Any, base: str, store: ServingStore
) -> None:
    days = store.days()
    day = days[-1]
    genre = top_genres(store, day)[0][0]
    open_page(driver, f"{base}/?day={day}&genre={genre}", f"{day}|{genre}")
    start = (date.fromisoformat(day) - timedelta(days=29)).isoformat()
    in_range = [d for d in days if start <= d <= day]
    expected = {
        series: [(d, kpi(store, d, genre)[series]) for d in in_range]
        for series in ("listen_count", "unique_listeners")
    }
    for series, points in expected.items():
        shown = js(
            driver,
            "return [...document.querySelectorAll(`#trend circle[data-series=${arguments[0]}]`)]"
            ".map(p => [p.dataset.date, Number(p.dataset.value)]);",
            series,
        )
        assert [tuple(p) for p in shown] == points
    svg = js(driver, "const s = document.querySelector('#trend svg'); return {...s.dataset};")
    assert svg == {"genre": genre, "from": start, "to": day}


def test_quality_and_run_history_match_the_ledger(driver: Any, base: str, lake: Path) -> None:
    open_page(driver, f"{base}/")
    ledger = open_ledger(load_settings(lake=str(lake)).ledger_url)
    reasons: Counter[str] = Counter()
    for record in ledger.records():
        reasons.update(record.bad_by_reason)
    shown: Counter[str] = Counter()
    for reason, value in js(
        driver,
        "return [...document.querySelectorAll('#quality rect.segment')]"
        ".map(s => [s.dataset.reason, Number(s.dataset.value)]);",
    ):
        shown[reason] += value
    assert shown == reasons
    assert sum(reasons.values()) > 0  # the generator writes bad rows of every reason
    runs = js(
        driver,
        "return [...document.querySelectorAll('#runs tbody tr')].map(r => r.dataset.runId);",
    )
    assert runs == [run.run_id for run in ledger.runs(10)]


def test_genre_selector_changes_the_charts_and_the_url(
    driver: Any, base: str, store: ServingStore
) -> None:
    from selenium.webdriver.support.ui import Select

    day = store.days()[-1]
    first, second = (g for g, _ in top_genres(store, day)[:2])
    open_page(driver, f"{base}/", f"{day}|{first}")
    Select(driver.find_element("id", "genre")).select_by_value(second)
    chromium.wait_ready(driver, f"{day}|{second}")
    assert query(driver) == {"day": day, "genre": second}
    assert bars(driver, "top-songs", "trackId") == top_songs(store, day, second)
    assert js(driver, "return document.querySelector('#kpis dl').dataset.genre") == second
    selected = js(
        driver, "return document.querySelector('#top-genres rect[data-selected]').dataset.genre"
    )
    assert selected == second
    assert severe(driver.get_log("browser")) == []


def test_date_picker_changes_the_day_and_refuses_days_without_results(
    driver: Any, base: str, store: ServingStore
) -> None:
    days = store.days()
    latest, earlier = days[-1], days[-4]
    open_page(driver, f"{base}/")
    pick = (
        "const i = document.getElementById('day'); i.value = arguments[0];"
        "i.dispatchEvent(new Event('change', {bubbles: true}));"
    )
    js(driver, pick, earlier)
    genre = top_genres(store, earlier)[0][0]
    if query(driver).get("genre") in {g for g, _ in top_genres(store, earlier)}:
        genre = query(driver)["genre"]
    chromium.wait_ready(driver, f"{earlier}|{genre}")
    assert query(driver)["day"] == earlier
    assert bars(driver, "top-genres", "genre") == top_genres(store, earlier)
    before = driver.current_url
    js(driver, pick, "2001-01-01")
    hint = driver.find_element("id", "day-hint").text
    assert hint == f"No results on 2001-01-01: try {days[0]}."
    assert driver.current_url == before
    driver.find_element("id", "next-day").click()
    chromium.wait_ready(driver, f"{days[-3]}|{query(driver)['genre']}")
    assert query(driver)["day"] == days[-3]
    assert latest != days[-3]


def test_back_restores_the_previous_state(driver: Any, base: str, store: ServingStore) -> None:
    from selenium.webdriver.support.ui import Select

    day = store.days()[-1]
    first, second = (g for g, _ in top_genres(store, day)[:2])
    open_page(driver, f"{base}/?day={day}&genre={first}", f"{day}|{first}")
    Select(driver.find_element("id", "genre")).select_by_value(second)
    chromium.wait_ready(driver, f"{day}|{second}")
    driver.back()
    chromium.wait_ready(driver, f"{day}|{first}")
    assert query(driver) == {"day": day, "genre": first}
    assert driver.find_element("id", "genre").get_attribute("value") == first
    assert bars(driver, "top-songs", "trackId") == top_songs(store, day, first)
    driver.forward()
    chromium.wait_ready(driver, f"{day}|{second}")


def test_a_shared_url_opens_in_its_state(driver: Any, base: str, store: ServingStore) -> None:
    day = store.days()[1]
    genre = top_genres(store, day)[-1][0]
    open_page(driver, f"{base}/?day={day}&genre={genre}", f"{day}|{genre}")
    assert driver.find_element("id", "day").get_attribute("value") == day
    assert driver.find_element("id", "genre").get_attribute("value") == genre
    assert bars(driver, "top-genres", "genre") == top_genres(store, day)
    assert bars(driver, "top-songs", "trackId") == top_songs(store, day, genre)


def test_an_api_error_is_a_readable_message(driver: Any, base: str) -> None:
    open_page(driver, f"{base}/?day=2001-01-01", "2001-01-01|")
    errors = js(
        driver,
        "return [...document.querySelectorAll('#top-genres .error, #trend .error')]"
        ".map(e => [e.dataset.errorCode, e.textContent]);",
    )
    assert [code for code, _ in errors] == ["no_such_day", "no_such_day"]
    assert all("2001-01-01" in text for _, text in errors)
    assert "2001-01-01" in driver.find_element("id", "message").text
    # The only console entry: the browser's own note of the 404 the page then explained.
    assert all("404" in m for m in severe(driver.get_log("browser")))


def test_screenshot_of_the_dashboard(driver: Any, base: str) -> None:
    open_page(driver, f"{base}/")
    png = chromium.full_page_png(driver, OUTPUT / "dashboard.png")
    print(f"\ndashboard screenshot: {png}")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(png.read_bytes()[16:20], "big") == 1400


def test_a_range_the_api_refuses_is_explained_in_the_trend(
    driver: Any, base: str, store: ServingStore
) -> None:
    day = store.days()[-1]
    genre = top_genres(store, day)[0][0]
    open_page(driver, f"{base}/?day={day}&genre={genre}&from=2020-01-01", f"{day}|{genre}")
    code, text = js(
        driver,
        "const e = document.querySelector('#trend .error');"
        "return e ? [e.dataset.errorCode, e.textContent] : null;",
    )
    assert code == "bad_range"
    assert "366" in text
    assert bars(driver, "top-genres", "genre") == top_genres(store, day)
