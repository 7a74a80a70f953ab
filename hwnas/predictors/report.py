"""A predictor's report (``report.html`` beside its card.json, written by ``hwnas fit-predictor``): its
cross-validated predictions against the latencies it was fitted on (out-of-fold: each arch predicted by a model that
never saw it), the metrics, and, for ``--kind auto``, every candidate's cross-validated metrics and why it picked the
one it did. One static page: inline SVG, no script, nothing fetched."""

from __future__ import annotations

import html
import math

import numpy as np

CSS = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1000px;color:#222;overflow-wrap:anywhere}"
       ".scroll{max-width:100%;overflow-x:auto;margin:1em 0}table{border-collapse:collapse;font-size:13px}"
       "td,th{border:1px solid #ccc;padding:3px 7px;text-align:left;overflow-wrap:anywhere}th{background:#f0f3f5}"
       "svg{max-width:100%;height:auto;font-size:11px}.warn{color:#b00;font-weight:bold}"
       "code{background:#f4f4f4;padding:1px 3px}")
W, H, M = 520, 440, 60
MAX_POINTS = 2000  # drawn at most (a seeded random sample beyond): the page stays small beside the model files


def _log_ticks(lo: float, hi: float) -> list[float]:
    out = [m * 10.0 ** k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1) for m in (1, 2, 5)]
    inside = [t for t in out if lo <= t <= hi]
    return inside if len(inside) >= 2 else [lo, hi]


def drawn(measured, predicted) -> np.ndarray:
    """Indices of the rows drawn: every one with a positive measured and predicted value, a seeded random sample
    of ``MAX_POINTS`` of them beyond that."""
    y, p = np.asarray(measured, float), np.asarray(predicted, float)
    ok = np.flatnonzero(np.isfinite(y) & np.isfinite(p) & (y > 0) & (p > 0))
    if len(ok) > MAX_POINTS:
        ok = np.sort(np.random.default_rng(0).choice(ok, MAX_POINTS, replace=False))
    return ok


def scatter_svg(archs: list[str], measured, predicted) -> str:
    """Measured (x) against cross-validated predicted (y) latency, log-log, with y = x and the +-10 % band."""
    y, p = np.asarray(measured, float), np.asarray(predicted, float)
    ok = drawn(y, p)
    if not len(ok):
        return "<p>No cross-validated prediction to draw.</p>"
    lo, hi = float(min(y[ok].min(), p[ok].min())) / 1.15, float(max(y[ok].max(), p[ok].max())) * 1.15

    def at(v, a, b):
        return a + (math.log10(v) - math.log10(lo)) * (b - a) / (math.log10(hi) - math.log10(lo))

    parts = [f"<rect x='{M}' y='{M // 3}' width='{W - M - 10}' height='{H - M - M // 3}' fill='none' stroke='#888'/>"]
    for t in _log_ticks(lo, hi):
        x, yy = at(t, M, W - 10), at(t, H - M, M // 3)
        parts.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{M // 3}' y2='{H - M}' stroke='#eee'/>"
                     f"<text x='{x:.1f}' y='{H - M + 15}' text-anchor='middle'>{t:g}</text>"
                     f"<line x1='{M}' x2='{W - 10}' y1='{yy:.1f}' y2='{yy:.1f}' stroke='#eee'/>"
                     f"<text x='{M - 5}' y='{yy:.1f}' dy='.32em' text-anchor='end'>{t:g}</text>")
    for factor, dash in ((1.0, ""), (1.1, " stroke-dasharray='4 3'"), (1 / 1.1, " stroke-dasharray='4 3'")):
        a, b = lo / min(factor, 1.0), hi / max(factor, 1.0)  # y = factor * x, kept inside the frame
        parts.append(f"<line x1='{at(a, M, W - 10):.1f}' y1='{at(a * factor, H - M, M // 3):.1f}' "
                     f"x2='{at(b, M, W - 10):.1f}' y2='{at(b * factor, H - M, M // 3):.1f}' stroke='#edae49'{dash}/>")
    for i in ok:
        err = 100 * (p[i] - y[i]) / y[i]
        parts.append(f"<circle cx='{at(y[i], M, W - 10):.1f}' cy='{at(p[i], H - M, M // 3):.1f}' r='3.5' "
                     f"fill='#00798c' fill-opacity='.6'><title>{html.escape(archs[i])}: measured {y[i]:.4g} ms, "
                     f"predicted {p[i]:.4g} ms ({err:+.1f} %)</title></circle>")
    parts.append(f"<text x='{(M + W) / 2:.0f}' y='{H - 15}' text-anchor='middle' font-size='12'>latency in the store "
                 f"(ms, log scale)</text><text transform='translate(14,{H / 2:.0f}) rotate(-90)' text-anchor='middle' "
                 "font-size='12'>cross-validated prediction (ms)</text>")
    return (f"<svg viewBox='0 0 {W} {H}' width='{W}' role='img' aria-label='predicted against measured'>"
            + "".join(parts) + "</svg>")


def _table(header, rows) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _metric_cells(m: dict, keys) -> list[str]:
    return [f"{m[k]:.3f}" if isinstance(m.get(k), (int, float)) else str(m.get(k, "")) for k in keys]


def auto_section(cv: dict, chosen: str, why: str) -> str:
    """Every candidate ``--kind auto`` cross-validated, and why it picked ``chosen``."""
    keys = ["within_10pct", "kendall_tau", "mape_pct", "coverage", "score", "space_coverage"]
    rows = [[k + (" (picked)" if k == chosen else "")] + _metric_cells(m, keys) for k, m in cv.items()]
    return ("<h2>What auto chose, and why</h2>"
            f"<p><b>{html.escape(chosen)}</b>: {html.escape(why)}.</p>"
            + _table(["candidate", "within +-10 %", "Kendall tau", "MAPE %", "fold coverage", "score",
                      "space coverage"], rows))


def predictor_report(card: dict, archs: list[str], measured, predicted, auto: tuple | None = None) -> str:
    """The page. ``archs``, ``measured``: the training rows; ``predicted``: their out-of-fold predictions (NaN where
    a fold could not predict one); ``auto``: (cv of every candidate, chosen, why) for ``--kind auto``."""
    cv = card.get("cv_metrics") or {}
    metrics = [[k, f"{v:.4g}" if isinstance(v, float) else v] for k, v in cv.items()]
    sources = ", ".join(f"{v} {k}" for k, v in (card.get("training_sources") or {}).items() if v)
    n_cv, n_drawn = int(np.sum(np.isfinite(np.asarray(predicted, float)))), len(drawn(measured, predicted))
    sample = f" ({n_drawn} of the {n_cv} drawn, a random sample, seed 0)" if n_drawn < n_cv else ""
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>hwnas predictor {esc(str(card.get('name')))} ({esc(str(card.get('device')))})</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Latency predictor {esc(str(card.get('name')))} for {esc(str(card.get('device')))}</h1>",
        f"<p>{esc(str(card.get('method', card.get('kind'))))}; fitted on {len(archs)} archs of the store "
        f"({esc(sources)}; runtime {esc(str(card.get('runtime')))}).</p>",
        "".join(f"<p class='warn'>warning: {esc(str(w))}</p>" for w in card.get("warnings") or []),
        "<h2>Cross-validated predictions against the store</h2>",
        f"<p>Each point{sample} is one arch predicted by a model fitted on the other folds "
        f"({cv.get('folds', 5)}-fold; never on itself); the solid line is y = x, the dashed ones &plusmn;10 %. "
        "Hover a point for its arch.</p>" if n_drawn else f"<p>{esc(str(cv.get('note', 'no cross-validation')))}</p>",
        scatter_svg(archs, measured, predicted) if n_drawn else "",
        _table(["metric", "value"], metrics),
        auto_section(*auto) if auto else "",
        "".join(f"<p>note: {esc(str(n))}</p>" for n in card.get("notes") or []),
        "</body></html>",
    ]
    return "\n".join(parts)
