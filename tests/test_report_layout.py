"""The HTML report never makes the page scroll sideways (issue #22, item 7: at 1400 px the Pareto table's last
column was cut and the page scrolled horizontally).

No browser is installed on the machines these tests run on, so the layout is checked through the structure
that guarantees it: every table sits in its own box that is at most the page's width and scrolls sideways
inside the page (``max-width:100%; overflow-x:auto``), long unbroken cells (arch strings, provenance) may break
anywhere, images shrink to fit, and nothing declares a fixed width wider than a 1000 px window."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from hwnas.cli.main import main

from search_fixtures import table_args, write_nb201_tables


class _Tree(HTMLParser):
    """Each <table> with the chain of its ancestors (tag, class)."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.stack: list[tuple[str, str]] = []
        self.tables: list[list[tuple[str, str]]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append(list(self.stack))
        if attrs.get("style"):
            self.styles.append(attrs["style"])
        if tag == "style":
            self._in_style = True
        if tag not in self.VOID:
            self.stack.append((tag, attrs.get("class") or ""))

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


def _rules(css: str) -> dict[str, dict[str, str]]:
    """selector -> {property: value} (every selector of a group gets the declarations)."""
    out: dict[str, dict[str, str]] = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        decl = dict((k.strip(), v.strip()) for k, _, v in (d.partition(":") for d in body.split(";") if ":" in d))
        for sel in selectors.split(","):
            out.setdefault(sel.strip(), {}).update(decl)
    return out


def check_no_sideways_scroll(page: str) -> int:
    """Assert the structure that keeps ``page`` within the window; returns how many tables it has."""
    tree = _Tree()
    tree.feed(page)
    css = " ".join(tree.styles)
    rules = _rules(css)
    assert tree.tables, "the report has no table"
    for ancestors in tree.tables:
        parent_tag, parent_class = ancestors[-1]
        assert parent_tag == "div" and "scroll" in parent_class.split(), \
            f"a table is not inside its scroll box (parent: <{parent_tag} class='{parent_class}'>)"
    box = rules.get(".scroll", {})
    assert box.get("overflow-x") == "auto" and box.get("max-width") == "100%", box
    for cell in ("td", "th"):
        assert rules.get(cell, {}).get("overflow-wrap") == "anywhere", f"long {cell} cells cannot break"
    assert rules.get("img", {}).get("max-width") == "100%"
    for px in re.findall(r"(?<![-\w])(?:min-)?width\s*:\s*(\d+(?:\.\d+)?)px", css):
        assert float(px) <= 1000, f"a fixed width of {px}px is wider than a 1000 px window"
    return len(tree.tables)


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    return write_nb201_tables(tmp_path_factory.mktemp("tables"))


def test_every_report_table_scrolls_inside_the_page(tables, tmp_path):
    out = tmp_path / "run"
    # long cells: arch strings (90 characters, no space) and provenance with absolute paths
    assert main(table_args(tables, budget=12, population=6) + ["--out", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "|+|" in page and "imported:table:" in page
    assert check_no_sideways_scroll(page) >= 3  # the front, the progress and the configuration tables


def test_the_structure_check_catches_a_bare_table():
    """The check itself can fail: a table written straight into the body (as before) is refused."""
    css = "<style>.scroll{max-width:100%;overflow-x:auto}td,th{overflow-wrap:anywhere}img{max-width:100%}</style>"
    with pytest.raises(AssertionError, match="not inside its scroll box"):
        check_no_sideways_scroll(f"<html><head>{css}</head><body><table><tr><td>x</td></tr></table></body></html>")
    with pytest.raises(AssertionError, match="wider than a 1000 px window"):
        check_no_sideways_scroll(f"<html><head>{css}<style>body{{min-width:1300px}}</style></head><body>"
                                 "<div class='scroll'><table><tr><td>x</td></tr></table></div></body></html>")


def _page_data(page: str) -> dict:
    import json

    start = page.index("<script type='application/json' id='hwnas-data'>")
    body = page[page.index(">", start) + 1: page.index("</script>", start)]
    return json.loads(body)


def test_the_page_carries_every_evaluation_with_its_provenance(tables, tmp_path):
    """The interactive plots are drawn from the page's own data: every evaluation of evaluations.csv, each value
    with how it was obtained, the front, the export command; the tables are sortable and filterable."""
    import csv

    out = tmp_path / "run"
    assert main(table_args(tables, budget=15, population=5) + ["--out", str(out), "--space-opt", "C=8"]) == 0
    page = (out / "report.html").read_text()
    data = _page_data(page)
    with open(out / "evaluations.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    (run,) = data["runs"]
    assert [o["label"] for o in data["objectives"]] == ["error", "latency_ms@dev"]
    assert len(run["evals"]) == len(rows) == 15
    for e, r in zip(run["evals"], rows):
        assert e["a"] == r["arch"] and e["o"] == int(r["order"])
        assert [data["sources"][i] for i in e["s"]] == [r["error_source"], r["latency_ms@dev_source"]]
        assert e["v"] == pytest.approx([float(r["error"]), float(r["latency_ms@dev"])], rel=1e-5)
        assert bool(e["f"]) == (r["on_front"] == "True") and (e["r"] == 0) == bool(e["f"])
    assert run["export"] == "hwnas export --space nb201 --space-opt C=8 --format onnx --out model.onnx --arch"
    assert [n for n, _ in run["history"]][-1] == 15
    for table in ("t-front", "t-all", "t-history"):
        assert f"id='{table}' class='sortable'" in page and f"data-for='{table}'" in page
    assert "id='hv-log'" in page and "http" not in page.split("id='hwnas-data'")[1]  # nothing fetched
