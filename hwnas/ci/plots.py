"""Per-model pictures of a CI check's two sample distributions (issue #27): every timed inference of the
baseline and of the candidate, pooled over the rounds, as two strips of points with their medians, in one small
self-contained SVG. ``hwnas ci-check --markdown FILE`` writes them to ``FILE``'s ``<stem>-plots/`` folder and
links them from the Markdown summary, so a reviewer sees whether the two distributions overlap or one moved."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np

W, H, LEFT, RIGHT = 640, 150, 90, 20
ROWS = (("baseline", "#00798c", 55), ("candidate", "#d1495b", 105))


def samples(measurement: dict | None) -> dict[str, list[float]]:
    """{side: every timed inference of that side, over all rounds} from a report's ``measurement`` block."""
    out: dict[str, list[float]] = {}
    for side, _, _ in ROWS:
        values = [float(v) for r in (measurement or {}).get("rounds", []) for v in r.get(f"{side}_ms", [])]
        if values:
            out[side] = values
    return out


def _x(v: float, lo: float, hi: float) -> float:
    return LEFT + (v - lo) / (hi - lo or 1.0) * (W - LEFT - RIGHT)


def distribution_svg(name: str, measurement: dict | None) -> str | None:
    """The SVG of one model's samples, or None when it has none (a gate-only check)."""
    got = samples(measurement)
    if not got:
        return None
    every = np.concatenate([np.asarray(v) for v in got.values()])
    lo, hi = np.percentile(every, 0.5), np.percentile(every, 99.5)  # a stray outlier does not squash the rest
    rng = np.random.default_rng(0)  # the vertical jitter only; the picture of a report is always the same
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {W} {H}' width='{W}' height='{H}' "
             f"font-family='sans-serif' font-size='12'><title>{html.escape(name)}: latency samples</title>",
             f"<text x='{LEFT}' y='18'>{html.escape(name)}: every timed inference (ms)</text>"]
    for side, colour, y in ROWS:
        if side not in got:
            continue
        v = np.clip(np.asarray(got[side]), lo, hi)
        med = float(np.median(got[side]))
        parts.append(f"<text x='8' y='{y + 4}'>{side}</text>")
        parts += [f"<circle cx='{_x(x, lo, hi):.1f}' cy='{y + j:.1f}' r='2' fill='{colour}' fill-opacity='.35'/>"
                  for x, j in zip(v, rng.uniform(-12, 12, len(v)))]
        parts.append(f"<line class='median' data-side='{side}' data-ms='{med:.6g}' x1='{_x(med, lo, hi):.1f}' "
                     f"x2='{_x(med, lo, hi):.1f}' y1='{y - 16}' y2='{y + 16}' stroke='{colour}' stroke-width='2.5'/>")
        parts.append(f"<text x='{min(_x(med, lo, hi) + 4, W - 110):.1f}' y='{y - 18}' fill='{colour}'>"
                     f"median {med:.4g} ms (n={len(v)})</text>")
    parts += [f"<line x1='{LEFT}' x2='{W - RIGHT}' y1='{H - 20}' y2='{H - 20}' stroke='#888'/>",
              f"<text x='{LEFT}' y='{H - 5}'>{lo:.4g} ms</text>",
              f"<text x='{W - RIGHT}' y='{H - 5}' text-anchor='end'>{hi:.4g} ms</text></svg>"]
    return "\n".join(parts) + "\n"


def write_distribution_plots(report, markdown_path: Path) -> dict[str, str]:
    """Write each measured model's SVG beside the Markdown file; {model name: path relative to it}."""
    folder = Path(markdown_path).with_name(Path(markdown_path).stem + "-plots")
    links: dict[str, str] = {}
    for i, m in enumerate(report.models):
        svg = distribution_svg(m.name, m.measurement)
        if svg is None:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        file = folder / f"{i:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', m.name)[:60]}.svg"
        file.write_text(svg, encoding="utf-8")
        links[m.name] = f"{folder.name}/{file.name}"
    return links


__all__ = ["samples", "distribution_svg", "write_distribution_plots"]
