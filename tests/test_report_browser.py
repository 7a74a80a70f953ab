"""The interactive report and the comparison page in a real browser (issue #27): headless Chromium driven by
Selenium opens the pages written by real quick searches (the installed ``hwnas`` command, as a subprocess, on
small planted tables) and does what a user does: hover a Pareto point, click it, sort and filter a table, toggle
the log axis, compare two runs. No console error is allowed. Skipped, naming what is missing, where selenium,
chromium or chromedriver is absent.

``HWNAS_SCREENSHOTS=docs/img`` also saves report.png and compare.png there (the pictures of docs/report.md)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from browser import browser_or_skip, severe_console_messages, stop_browser
from journeys import read_csv, run_hwnas
from search_fixtures import write_nb201_tables

pytestmark = pytest.mark.journey


@pytest.fixture(scope="module")
def browser():
    driver = browser_or_skip()
    yield driver
    stop_browser(driver)


def _search(tables, out: Path, *extra) -> Path:
    acc, lat = tables
    args = ["pareto-search", "--objective", "error", "--objective", "latency_ms@dev", "--objective", "energy_mj@dev",
            "--accuracy", f"table:{acc}", "--latency", f"dev=table:{lat}", "--energy", f"dev=table:{lat}",
            "--constraint", "latency_ms@dev<=6", "--budget", "20", "--strategy", "nsga2",
            "--strategy-opt", "population_size=10", "--out", str(out), *extra]
    run_hwnas(args, cwd=out.parent, timeout=120).ok()
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three objectives and a constraint (so some points are infeasible): seed0 and seed1 solve one problem,
    other-tables another (other latency and energy tables)."""
    root = tmp_path_factory.mktemp("browser")
    (root / "t0").mkdir()
    (root / "t1").mkdir()
    tables = write_nb201_tables(root / "t0")
    other = (tables[0], write_nb201_tables(root / "t1", seed=1)[1])
    return {"a": _search(tables, root / "seed0"), "b": _search(tables, root / "seed1", "--seed", "1"),
            "c": _search(other, root / "other-tables")}


def _open(driver, page: Path):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(page.resolve().as_uri())
    WebDriverWait(driver, 10).until(lambda d: d.find_element("tag name", "body").get_attribute("data-ready") == "1")


def _no_console_errors(driver):
    assert severe_console_messages(driver) == []


def _screenshot(driver, name: str, show: str | None = None):
    """Save the window to $HWNAS_SCREENSHOTS/name (when set): the top of the page, or scrolled so that the element
    ``show`` (a CSS selector) ends at the window's bottom."""
    where = os.environ.get("HWNAS_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        if show:
            driver.execute_script("document.querySelector(arguments[0]).scrollIntoView({block: 'end'})", show)
        else:
            driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(str(Path(where) / name))


def test_hover_and_click_a_pareto_point(browser, runs):
    from selenium.webdriver.common.action_chains import ActionChains

    _open(browser, runs["a"] / "report.html")
    front = {r["arch"]: r for r in read_csv(runs["a"] / "pareto.csv")}
    point = browser.find_elements("css selector", "#plots circle.pt.front")[0]
    ActionChains(browser).move_to_element(point).perform()
    tip = browser.find_element("id", "tip")
    assert tip.is_displayed()
    arch = next(a for a in front if a in tip.text)  # the tooltip names a front arch ...
    row = front[arch]
    for label in ("error", "latency_ms@dev", "energy_mj@dev"):  # ... every objective with how it was obtained
        assert f"{label} = " in tip.text and f"({row[f'{label}_source']})" in tip.text
    assert "imported:table:accuracy.csv" in tip.text and "feasible, on the Pareto front" in tip.text
    point.click()
    assert browser.find_element("id", "details-arch").text == arch
    command = browser.find_element("id", "export-cmd").text
    assert command.startswith("hwnas export --space nb201 ") and arch in command
    assert "circle" in {e.tag_name for e in browser.find_elements("css selector", ".sel")}
    _screenshot(browser, "report.png", show="#details")
    _no_console_errors(browser)
    # the command the panel shows works as typed: it exports that arch
    words = shlex.split(command)
    run_hwnas(words[1:], cwd=runs["a"], timeout=120).ok()
    assert (runs["a"] / "model.onnx").stat().st_size > 0


def _column(driver, table: str, i: int) -> list[str]:
    return [td.text for td in driver.find_elements("css selector", f"#{table} tbody tr:not([hidden]) td:nth-child({i})")]


def test_tables_sort_and_filter(browser, runs):
    _open(browser, runs["a"] / "report.html")
    header = browser.find_elements("css selector", "#t-front thead th")
    i = [th.text for th in header].index("latency_ms@dev")
    header[i].click()
    values = [float(v) for v in _column(browser, "t-front", i + 1)]
    assert header[i].get_attribute("data-sort") == "asc" and values == sorted(values) and len(values) > 2
    header[i].click()
    values = [float(v) for v in _column(browser, "t-front", i + 1)]
    assert header[i].get_attribute("data-sort") == "desc" and values == sorted(values, reverse=True)
    # every evaluation's table opens on request; its filter keeps the rows that contain the text
    box = browser.find_element("css selector", "input.filter[data-for='t-all']")
    assert not box.is_displayed()
    browser.find_element("css selector", "details#all > summary").click()
    assert box.is_displayed()
    box.send_keys("nor_conv_3x3~0|+|")
    archs = _column(browser, "t-all", 2)
    assert 0 < len(archs) < 20 and all("nor_conv_3x3~0|+|" in a for a in archs)
    assert browser.find_element("css selector", "input.filter[data-for='t-all'] + .count").text == \
        f"{len(archs)} of 20 rows"
    _no_console_errors(browser)


def test_parallel_coordinates_and_log_axis(browser, runs):
    _open(browser, runs["a"] / "report.html")
    # three objectives: a scatter matrix, every pair once
    plots = [p.get_attribute("aria-label") for p in browser.find_elements("css selector", "#plots svg.plot")]
    assert len(plots) == 3 and len(set(plots)) == 3, plots
    evals = read_csv(runs["a"] / "evaluations.csv")
    lines = browser.find_elements("css selector", "#parallel polyline.pc")
    assert len(lines) == len(evals) == 20
    infeasible = browser.find_elements("css selector", "#parallel polyline.pc.infeasible")
    assert len(infeasible) == sum(float(r["violation"]) > 0 for r in evals) > 0
    assert browser.execute_script("return getComputedStyle(arguments[0]).strokeDasharray", infeasible[0]) != "none"
    assert "(log scale)" not in browser.find_element("id", "hv").text
    browser.find_element("id", "hv-log").click()
    assert "unique archs evaluated (log scale)" in browser.find_element("id", "hv").text
    _no_console_errors(browser)


def test_comparison_of_two_runs(browser, runs, tmp_path):
    root = runs["a"].parent  # as a user types it, in the directory holding the runs
    run_hwnas(["report", "seed0", "seed1", "--out", "compare.html"], cwd=root).ok()
    _open(browser, root / "compare.html")
    for k, name in enumerate(("seed0", "seed1")):  # both runs' fronts, one colour each, in the legend
        assert browser.find_elements("css selector", f"#plots circle.front[data-k^='{k}:']")
        assert f"{name} (" in browser.find_element("id", "plots").text
    assert browser.find_element("id", "same-problem").is_displayed()
    assert not browser.find_elements("id", "mismatch")
    rows = browser.find_elements("css selector", "#t-hv tbody tr")
    assert [r.find_element("tag name", "td").text for r in rows] == ["seed0", "seed1"]
    assert len(browser.find_elements("css selector", "#hv polyline.hvline")) == 2
    _screenshot(browser, "compare.png")
    _no_console_errors(browser)


def test_comparison_warns_about_different_problems(browser, runs, tmp_path):
    page = tmp_path / "compare.html"
    run_hwnas(["report", runs["a"], runs["c"], "--out", page], cwd=tmp_path).ok()
    _open(browser, page)
    warning = browser.find_element("css selector", "#mismatch .warn")
    assert warning.is_displayed() and "do not solve the same problem (latency, energy differ)" in warning.text
    _no_console_errors(browser)


def test_a_missing_browser_skips_naming_it(monkeypatch):
    import browser as b

    monkeypatch.setattr(b, "_find", lambda name, env: None)
    with pytest.raises(pytest.skip.Exception, match=r"missing .*chromium \(/usr/bin/chromium.*chromedriver"):
        b.browser_or_skip()


def test_measured_latency_beside_predicted(browser, tmp_path):
    """A run that predicted latency (a predictor fitted from the store's imported rows), whose front was then
    profiled for real on this host: the report, given the store, sets measured beside predicted."""
    from selenium.webdriver.common.action_chains import ActionChains

    rows = read_csv(write_nb201_tables(tmp_path)[1])[:40]
    (tmp_path / "host.csv").write_text("arch,latency_ms\n" + "".join(f"{r['arch']},{r['latency_ms']}\n" for r in rows))
    run_hwnas(["import", "latency", "host.csv", "--device", "host", "--store", "s.db"], cwd=tmp_path).ok()
    run_hwnas(["pareto-search", "--space", "nb201", "--strategy", "random", "--objective", "params", "--objective",
               "latency_ms@host", "--latency", "host=predictor", "--budget", "6", "--store", "s.db", "--out", "run"],
              cwd=tmp_path).ok()
    run_hwnas(["profile", "--device", "host", "--archs", "run/pareto.csv", "--quick", "--no-op-profile", "--store",
               "s.db"], cwd=tmp_path, timeout=200).ok()
    run_hwnas(["report", "run", "--store", "s.db"], cwd=tmp_path).ok()
    _open(browser, tmp_path / "run" / "report.html")
    point = browser.find_elements("css selector", "#plots circle.pt.front")[0]
    ActionChains(browser).move_to_element(point).perform()
    assert "latency_ms@host (measurement store) = " in browser.find_element("id", "tip").text
    point.click()
    details = browser.find_element("id", "details").text
    assert "latency_ms: measured " in details and "(measured:onnxruntime" in details
    assert "vs predicted " in details and "(predicted:nb201-" in details and "from-store@host)" in details
    _no_console_errors(browser)


def test_no_sideways_scroll_in_a_1000px_window(browser, runs, tmp_path):
    """What tests/test_report_layout.py checks through the page's structure, measured in the browser: in a
    1000 px window neither page is wider than the window (tables scroll in their own boxes, plots shrink)."""
    run_hwnas(["report", runs["a"], runs["c"], "--out", tmp_path / "compare.html"], cwd=tmp_path).ok()
    size = browser.get_window_size()
    browser.set_window_size(1000, 800)
    try:
        for page in (runs["a"] / "report.html", tmp_path / "compare.html"):
            _open(browser, page)
            width, window = browser.execute_script(
                "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
            assert width <= window, (page.name, width, window)
            boxes = browser.find_elements("css selector", "div.scroll")
            assert boxes and all(b.size["width"] <= window for b in boxes)
    finally:
        browser.set_window_size(size["width"], size["height"])
    _no_console_errors(browser)


def test_validation_beside_test_error(browser, tmp_path):
    """A trained-accuracy run (the embedded demo, shrunk): the search selected on validation error, the front's test
    error was read once after it; the details panel of a front point sets the two side by side."""
    run_hwnas(["pareto-search", "--budget", "3", "--epochs", "1", "--max-train", "400", "--trust-archs", "0",
               "--strategy-opt", "population_size=3", "--out", "run"], cwd=tmp_path, timeout=200).ok()
    tested = {r["arch"]: r for r in read_csv(tmp_path / "run" / "pareto.csv")}
    _open(browser, tmp_path / "run" / "report.html")
    browser.find_elements("css selector", "#plots circle.pt.front")[0].click()
    row = tested[browser.find_element("id", "details-arch").text]
    details = browser.find_element("id", "details").text
    assert f"error: validation {float(row['error']):.4g} ({row['error_source']}" in details
    assert f"vs test {float(row['test_error']):.4g} ({row['test_error_source']}, read once after the search)" in details
    _no_console_errors(browser)
