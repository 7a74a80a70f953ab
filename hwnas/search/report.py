"""The report of a search: pareto.png (matplotlib, Agg backend) and report.html, one self-contained interactive
page (inline SVG drawn by an inline script from the page's embedded data: it opens offline and can be mailed as one
file). The data and the script: ``report_data``; several runs side by side: ``compare``."""

from __future__ import annotations

import html
import io
from pathlib import Path

import numpy as np

from ..pareto import non_dominated_mask


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _pairs(objectives) -> list[tuple[int, int]]:
    """Objective 0 against every other (one panel per device cost when accuracy is objective 0)."""
    m = len(objectives)
    if m == 1:
        return [(0, 0)]
    return [(j, 0) for j in range(1, m)]


def pareto_figure(result):
    plt = _plt()
    objectives = result.objectives
    F = result.values()
    front = result.pareto()
    front_ids = {e.arch.arch_id for e in front}
    on = np.array([e.arch.arch_id in front_ids for e in result.evaluations], dtype=bool)
    pairs = _pairs(objectives)
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.2 * len(pairs), 4.2), squeeze=False)
    for ax, (x, y) in zip(axes[0], pairs):
        ok = np.all(np.isfinite(F[:, [x, y]]), axis=1)
        ax.scatter(F[ok & ~on, x], F[ok & ~on, y], s=10, c="#9aa5b1", alpha=0.35, label="evaluated")
        if on.any():
            P = F[on][:, [x, y]]
            ax.scatter(P[:, 0], P[:, 1], s=28, c="#d1495b", label=f"Pareto front ({len(P)})", zorder=3)
            if x != y:
                P2 = P[non_dominated_mask(P)]
                P2 = P2[np.argsort(P2[:, 0])]
                ax.step(P2[:, 0], P2[:, 1], where="post", c="#d1495b", lw=1, alpha=0.8)
        for j, o in ((x, objectives[x]), (y, objectives[y])):
            if o.bound is not None:
                (ax.axvline if j == x else ax.axhline)(o.bound, ls="--", c="#edae49", lw=1, label=f"{o.label} <= {o.bound:g}")
        ax.set_xlabel(objectives[x].label)
        ax.set_ylabel(objectives[y].label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{result.strategy} on {result.space}: {len(result.evaluations)} unique archs evaluated", fontsize=10)
    fig.tight_layout()
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    _plt().close(fig)
    return buf.getvalue()


def _table(header, rows, table_id: str | None = None) -> str:
    """A table inside its own horizontally scrollable box (``div.scroll``): however long its cells (arch
    strings, provenance), the page itself never scrolls sideways. With ``table_id`` the page's script makes it
    sortable (click a header) and filterable (the text box above it)."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    tools = ""
    if table_id:
        tools = (f"<p class='tools'><input class='filter' type='search' data-for='{table_id}' "
                 f"placeholder='filter rows' aria-label='filter rows'> <span class='count'>{len(rows)} rows</span></p>")
    attrs = f" id='{table_id}' class='sortable'" if table_id else ""
    return f"{tools}<div class='scroll'><table{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


# Nothing may widen the page past the window: tables scroll inside their own box (max-width 100 %, overflow-x
# auto), long unbroken cells (arch strings, provenance) may break anywhere, images and plots shrink to fit.
CSS = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222;overflow-wrap:anywhere}"
       ".scroll{max-width:100%;overflow-x:auto;margin:1em 0}"
       "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;"
       "text-align:left;vertical-align:top;overflow-wrap:anywhere;min-width:4em}"
       "td:first-child{min-width:12em}th{background:#f0f3f5}"
       "table.sortable th{cursor:pointer}th[data-sort=asc]::after{content:' \\25B2'}"
       "th[data-sort=desc]::after{content:' \\25BC'}"
       "img{max-width:100%;height:auto}.warn{color:#b00;font-weight:bold}"
       "code{background:#f4f4f4;padding:1px 3px;overflow-wrap:anywhere}pre{white-space:pre-wrap}summary{cursor:pointer}"
       ".plots{display:flex;flex-wrap:wrap;gap:1em}svg.plot{max-width:100%;width:560px;height:auto;"
       "font-size:11px;background:#fff}#parallel svg.plot{width:900px}"
       ".grid{stroke:#e4e7ea}.frame{fill:none;stroke:#888}.axis{stroke:#555}.label{font-size:12px}"
       ".tick{fill:#555}.bound{stroke:#edae49;stroke-dasharray:5 3}.stair{fill:none;stroke-width:1.2}"
       ".pt{cursor:pointer}.pt.infeasible{fill:none;stroke:#999;stroke-dasharray:2 1}"
       "polyline.pc{fill:none;stroke-width:1;stroke-opacity:.55}polyline.pc.front{stroke-width:2;stroke-opacity:1}polyline.pc.infeasible{stroke:#aaa;"
       "stroke-dasharray:4 3;stroke-opacity:.5}polyline.pc.sel,polyline.pc:hover{stroke:#000;stroke-width:2.5;"
       "stroke-opacity:1}circle.sel{stroke:#000;stroke-width:2.5}.hvline{fill:none;stroke-width:1.5}"
       ".tip{position:fixed;z-index:9;max-width:480px;background:#fffef5;border:1px solid #999;padding:6px 8px;"
       "font-size:12px;pointer-events:none;box-shadow:0 2px 6px rgba(0,0,0,.2)}.src{color:#666}"
       ".fronts{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}"
       ".details{flex:1 1 320px;border:1px solid #ccc;background:#fafbfc;padding:.2em 1em;margin:1em 0}")


def _front_table(result, front) -> tuple[str, bool]:
    """The Pareto-optimal archs: values, provenance, and validation vs test error where the test was read."""
    objectives = result.objectives
    rows = [[e.extras.get("arch", e.arch.arch_id)] + [f"{v:.4g}" for v in e.values] + list(e.sources) for e in front]
    header = ["arch"] + [o.label for o in objectives] + [f"{o.label} obtained" for o in objectives]
    tested = [e for e in front if "test_error" in e.extras]
    if tested:  # validation (what the search selected on) beside test (read once, for the front only)
        header += ["test_error", "test_error obtained"]
        for row, e in zip(rows, front):
            value, source = e.extras.get("test_error", (float("nan"), ""))
            row += [f"{value:.4g}", source]
    return _table(header, rows, "t-front"), bool(tested)


def _all_table(result, ranks) -> str:
    """Every evaluated arch, in evaluation order, with its Pareto rank and feasibility."""
    labels = [o.label for o in result.objectives]
    feasible = result.feasible_mask()
    rows = [[e.extras.get("order", i + 1), e.extras.get("arch", e.arch.arch_id)] + [f"{v:.4g}" for v in e.values]
            + list(e.sources) + [int(ranks[i]), "yes" if feasible[i] else f"no ({e.violation:.3g})"]
            for i, e in enumerate(result.evaluations)]
    header = ["#", "arch"] + labels + [f"{lb} obtained" for lb in labels] + ["Pareto rank", "feasible"]
    return _table(header, rows, "t-all")


def _fronts_section(m: int) -> str:
    pairs = ("every pair of objectives: a scatter matrix" if 2 < m <= 5
             else "the first objective against each other one" if m > 1 else "the objective")
    return "\n".join([
        "<h2>Fronts</h2>",
        f"<p>Every evaluated architecture ({pairs}); the Pareto front is highlighted, dashed hollow points are "
        "infeasible. Hover a point for its values and how each was obtained; click it for its details and the "
        "command that exports it.</p>",
        "<noscript><p class='warn'>The plots need JavaScript (inline, nothing is fetched); the tables below do "
        "not.</p></noscript>",
        "<div class='fronts'><div id='plots' class='plots'></div>",
        "<div id='details' class='details'><p>Click a point to see its details here.</p></div></div>",
        "<div id='tip' class='tip' hidden></div>",
        ("<h2>Parallel coordinates</h2><p>One line per architecture across every objective, coloured by Pareto "
         "rank; infeasible ones dashed grey.</p><div id='parallel' class='scroll'></div>" if m >= 3 else ""),
    ])


def _payload(result, store=None) -> str:
    from .report_data import COLOURS, data_and_script, new_sources, run_payload, store_measurements

    src = new_sources()
    cols = list(range(len(result.objectives)))
    history = [(r["n_evals"], r["hypervolume"]) for r in result.history if r.get("n_evals") not in ("", None)]
    run = run_payload(result, result.strategy, cols, src, history, COLOURS[0],
                      measured=store_measurements(result, store))
    return data_and_script("run", result.objectives, [run], src)


def render_html(result, out: Path | None = None, store=None) -> str:
    from .report_data import ranks_of

    objectives = result.objectives
    front = sorted(result.pareto(), key=lambda e: e.values[0])
    cfg = result.config or {}
    hv = result.history[-1]["hypervolume"] if result.history else float("nan")
    warn = "" if result.any_feasible or not result.evaluations else (
        "<p class='warn'>No evaluated architecture satisfies the constraints; the table lists the least-violating "
        "ones.</p>")
    front_table, tested = _front_table(result, front)
    sources = sorted({s for e in result.evaluations for s in e.sources})
    settings = [(k, v) for k, v in cfg.items() if k not in ("objectives_resolved",)]
    hist_rows = [[r.get("step"), r.get("n_evals"), f"{r.get('hypervolume', float('nan')):.4f}", r.get("front_size", "")]
                 for r in result.history]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>hwnas search: {html.escape(result.strategy)} on {html.escape(result.space)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Pareto search: {html.escape(result.strategy)} on {html.escape(result.space)}</h1>",
        f"<p>{len(result.evaluations)} unique architectures evaluated; {len(front)} on the front; "
        f"final hypervolume {hv:.4f} (normalised by the first generation's ideal and nadir, reference 1.1).</p>",
        warn,
        _fronts_section(len(objectives)),
        "<h2>Pareto-optimal architectures</h2>",
        front_table,
        ("<p>The search selected on <b>validation</b> error; <code>test_error</code> was computed once, after "
         "the search, for these architectures only.</p>" if tested else ""),
        trust_section(out),
        retrained_section(out),
        "<h2>How the values were obtained</h2>",
        "<ul>" + "".join(f"<li><code>{html.escape(s)}</code></li>" for s in sources) + "</ul>",
        "<p><code>imported</code>: read from a table; <code>predicted</code>: a latency predictor; "
        "<code>measured</code>: profiled on the device; <code>trained</code>: real training; <code>proxy</code>: "
        "a zero-cost score (not an accuracy); <code>counted</code>: counted from the network graph.</p>",
        "<h2>Progress</h2>",
        "<p><label><input type='checkbox' id='hv-log'> logarithmic evaluations axis</label></p>",
        "<div id='hv' class='plots'></div>",
        _table(["generation", "unique archs", "hypervolume", "front size"], hist_rows, "t-history"),
        "<h2>All evaluated architectures</h2>",
        # closed until asked for: a browser lays out no hidden row, so 1,000 of them cost the page's opening nothing
        f"<details id='all'><summary>all {len(result.evaluations)} archs, in evaluation order, with their values, "
        "provenance, Pareto rank and feasibility (click to open)</summary>",
        _all_table(result, ranks_of(result, list(range(len(objectives))))),
        "</details>",
        "<h2>Configuration</h2>",
        _table(["setting", "value"], [(k, v) for k, v in settings]),
        _payload(result, store),
        "</body></html>",
    ]
    return "\n".join(parts)


def trust_section(out) -> str:
    """How far to trust the accuracy axis (``trust.json``, written by the run: ``hwnas.search.trust``)."""
    from .trust import TRUST_NAME, read_trust, seeds_label

    trust = read_trust(out)
    if trust is None:
        return ""
    esc = html.escape
    parts = ["<h2 id='trust'>How far to trust the accuracy axis</h2>",
             f"<p class='trust'>{esc(str(trust.get('summary', '')))}</p>"]
    if trust.get("measured"):
        interval = (trust.get("interval") or {}).get("points")
        tau = trust.get("kendall_tau")
        parts.append(
            "<p>How it was obtained (measured in this run, <code>" + TRUST_NAME + "</code>): "
            + esc(str(trust.get("how", ""))) + ". "
            + f"Kendall tau {'n/a' if tau is None else f'{tau:+.2f}'} over {trust.get('n_archs')} archs; "
            + f"seed standard deviation {trust.get('seed_sd_points', float('nan')):.2f} points, so one value is "
            + f"uncertain by about &plusmn;{interval:.2f} points (95 %): two archs whose errors differ by less "
            + "than that may swap places with another seed. "
            + (f"The validation split has {trust['val_images']} images; another draw of them would add a "
               f"binomial sd of about {trust['val_sampling_sd_points']:.2f} points. "
               if trust.get("val_images") and trust.get("val_sampling_sd_points") is not None else "")
            + f"Cost: {trust['cost']['trainings']} trainings, {trust['cost']['wall_s']:.1f} s wall, "
            + f"{trust['cost']['cpu_s']:.1f} s CPU. " + esc(str(trust.get("caveat", ""))) + ".</p>")
        rows = [[a["arch"], f"{a['error_search']:.4g}", f"{a['error_seed2']:.4g}",
                 f"{abs(a['error_seed2'] - a['error_search']):.3g}"] for a in trust.get("archs", [])]
        (first, second), per = trust.get("seeds") or ["?", "?"], int(trust.get("train_seeds") or 1)
        parts.append(_table(["arch", f"error (search, {seeds_label(first, per)})", f"error ({seeds_label(second, per)})",
                             "|difference|"], rows))
    else:
        parts.append("<p>Not measured in this run (no interval is invented).</p>")
    return "\n".join(parts)


def retrained_section(out) -> str:
    """Search-time vs retrained accuracy (``hwnas retrain`` writes retrain.json / retrained.csv), if present."""
    import csv
    import json

    if not out or not (Path(out) / "retrained.csv").is_file():
        return ""
    with open(Path(out) / "retrained.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    summary = {}
    if (Path(out) / "retrain.json").is_file():
        try:
            summary = json.loads((Path(out) / "retrain.json").read_text())
        except ValueError:
            summary = {}
    header = list(rows[0].keys()) if rows else []
    taus = {k: v for k, v in summary.items() if "tau" in k}
    return ("<h2>Retrained from scratch (hwnas retrain)</h2>"
            + (f"<p>Kendall tau, search-time vs retrained: {html.escape(json.dumps(taus))}</p>" if taus else "")
            + _table(header, [[r.get(h, "") for h in header] for r in rows]))


def write_report(result, out: Path, page: Path | None = None, store=None) -> tuple[Path, Path]:
    """pareto.png (a static picture, for slides and mail) and the interactive report.html in the results directory
    ``out``; ``page``: write the HTML there instead; ``store``: the measurement store whose measurements of the
    run's archs are set beside predicted latencies (default: $HWNAS_STORE, else $HWNAS_HOME/measurements.db)."""
    out = Path(out)
    (out / "pareto.png").write_bytes(_png(pareto_figure(result)))
    page = Path(page) if page is not None else out / "report.html"
    page.write_text(render_html(result, out, store), encoding="utf-8")
    return out / "pareto.png", page
