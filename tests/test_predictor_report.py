"""`hwnas fit-predictor` writes report.html beside the card (issue #27, item 5): the cross-validated (out-of-fold)
prediction of every training row against its stored latency, the metrics, and what --kind auto chose and why. The
page is part of the artifact: listed in card.json with its SHA-256, so the artifact still loads, and an edited page
is refused like any edited model file."""

from __future__ import annotations

import html
import json
import re

import pytest

from journeys import read_csv, run_hwnas
from search_fixtures import write_nb201_tables

pytestmark = pytest.mark.journey


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("predictor")
    rows = read_csv(write_nb201_tables(root)[1])[:40]
    (root / "dev.csv").write_text("arch,latency_ms\n" + "".join(f"{r['arch']},{r['latency_ms']}\n" for r in rows))
    (root / "archs.txt").write_text(rows[0]["arch"] + "\n")
    run_hwnas(["import", "latency", "dev.csv", "--device", "pixel2", "--store", "s.db"], cwd=root).ok()
    ran = run_hwnas(["fit-predictor", "--device", "pixel2", "--space", "nb201", "--kind", "auto", "--store", "s.db",
                     "--out", "P"], cwd=root).ok()
    return root, rows, ran


def test_the_report_shows_every_cross_validated_prediction_and_why_auto_chose(fitted):
    root, rows, ran = fitted
    assert "report.html: cross-validated predictions against the store" in ran.out
    page = (root / "P" / "report.html").read_text()
    card = json.loads((root / "P" / "card.json").read_text())
    points = re.findall(r"<title>(.*?): measured ([\d.]+) ms, predicted ([\d.]+) ms \(([-+][\d.]+) %\)</title>", page)
    stored = {html.escape(r["arch"]): float(r["latency_ms"]) for r in rows}
    assert len(points) == 40 and {a for a, *_ in points} == set(stored)
    for arch, measured, predicted, err in points:
        assert float(measured) == pytest.approx(stored[arch], rel=1e-3)
        assert float(err) == pytest.approx(100 * (float(predicted) - float(measured)) / float(measured), abs=0.2)
    chosen = card["name"].split("-", 1)[1]
    picked = re.search(r"auto picked (\w[\w-]*): (.*)", ran.out)
    assert picked.group(1) == chosen and f"<b>{chosen}</b>: {html.escape(picked.group(2))}." in page
    assert f"<td>{chosen} (picked)</td>" in page and f"{card['cv_metrics']['within_10pct']:.3f}" in page
    assert "<script" not in page and "http" not in page and "a random sample" not in page  # 40 rows: all drawn


def test_a_large_store_draws_a_sample():
    """Thousands of rows: at most MAX_POINTS are drawn (a seeded sample, said on the page), the metrics stay."""
    import numpy as np

    from hwnas.predictors.report import MAX_POINTS, predictor_report

    rng = np.random.default_rng(1)
    y = rng.uniform(1, 10, 5000)
    p = y * rng.normal(1, 0.05, 5000)
    p[:10] = np.nan  # archs no fold could predict
    card = {"name": "nb201-lut", "device": "d", "cv_metrics": {"folds": 5, "within_10pct": 0.9}}
    page = predictor_report(card, [f"a{i}" for i in range(5000)], y, p)
    assert page.count("<circle") == MAX_POINTS < 4990 and f"({MAX_POINTS} of the 4990 drawn" in page
    assert page == predictor_report(card, [f"a{i}" for i in range(5000)], y, p)  # seeded: the same page again


def test_the_report_is_part_of_the_artifact(fitted):
    root, _, _ = fitted
    card = json.loads((root / "P" / "card.json").read_text())
    assert "report.html" in card["files"]
    run_hwnas(["predict", "--device", "pixel2", "--predictor", "P", "--archs", "archs.txt", "--out", "pred.csv"], cwd=root).ok()
    import shutil

    shutil.copytree(root / "P", root / "edited")  # the other tests keep the page as written
    page = root / "edited" / "report.html"
    page.write_text(page.read_text().replace("Latency predictor", "A better predictor"))
    refused = run_hwnas(["predict", "--device", "pixel2", "--predictor", "edited", "--archs", "archs.txt", "--out",
                         "pred.csv"], cwd=root)
    assert refused.rc == 2 and "report.html' does not match the SHA-256" in refused.err, refused.text


def test_the_predictor_report_in_a_browser(fitted):
    """Headless Chromium opens the page `fit-predictor` wrote: every training row is a drawn point inside the plot,
    each names its arch and both latencies on hover (the SVG <title>), nothing scrolls sideways in a 1000 px window,
    and the console has no error. ``HWNAS_SCREENSHOTS=docs/img`` saves predictor.png (docs/report.md)."""
    import os
    from pathlib import Path

    from browser import browser_or_skip, severe_console_messages, stop_browser

    root, rows, _ = fitted
    driver = browser_or_skip(1000, 800)
    try:
        driver.get((root / "P" / "report.html").resolve().as_uri())
        plot = driver.find_element("css selector", "svg[aria-label='predicted against measured']")
        box = plot.rect
        assert box["width"] > 200 and box["height"] > 100
        points = plot.find_elements("css selector", "circle")
        assert len(points) == 40
        for p in points:  # drawn, and inside the plot
            r = p.rect
            assert r["width"] > 0 and box["x"] <= r["x"] <= box["x"] + box["width"]
            assert box["y"] <= r["y"] <= box["y"] + box["height"]
        hover = {p.find_element("tag name", "title").get_attribute("textContent").split(":")[0] for p in points}
        assert hover == {r["arch"] for r in rows}
        width, window = driver.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert width <= window
        assert severe_console_messages(driver) == []
        where = os.environ.get("HWNAS_SCREENSHOTS")
        if where:
            Path(where).mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(Path(where) / "predictor.png"))
    finally:
        stop_browser(driver)
