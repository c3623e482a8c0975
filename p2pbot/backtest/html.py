"""The backtest as one self-contained HTML page: the table side by side and, per config and
ad, the price over time with the rivals' prices behind it, and the rank over time. Inline
SVG only: no script, no CDN, nothing fetched, so the file opens anywhere and can be mailed."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from p2pbot.backtest.report import text
from p2pbot.backtest.runner import AdRun, Run

W, H, PAD = 900, 260, 40
MAX_POINTS = 1200  # per series: a day of 10 s snapshots is thinned to this many
COLOURS = ("#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f")


def _thin(n: int) -> int:
    return max(1, n // MAX_POINTS)


def _scale(lo: float, hi: float, size: int, flip: bool = False):  # type: ignore[no-untyped-def]
    span = (hi - lo) or 1.0

    def f(v: float) -> float:
        x = (v - lo) / span * (size - 2 * PAD)
        return round((size - PAD - x) if flip else (PAD + x), 1)

    return f


def _stamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%m-%d %H:%M")


def price_svg(ad: AdRun, colour: str) -> str:
    """Our price (a line), the rivals' three best (grey dots), floor and ceiling (dashed)."""
    s = ad.samples
    if not s:
        return "<p>no decisions</p>"
    step = _thin(len(s))
    pts = s[::step]
    values = [float(p.price) for p in pts] + [float(r) for p in pts for r in p.rivals]
    bounds = [float(b) for b in (ad.floor, ad.ceiling) if b is not None]
    lo, hi = min(values), max(values)
    lo, hi = min([lo, *[b for b in bounds if b >= lo - (hi - lo)]]), \
        max([hi, *[b for b in bounds if b <= hi + (hi - lo)]])
    x, y = _scale(s[0].at, s[-1].at, W), _scale(lo, hi, H, flip=True)
    dots = "".join(f'<circle cx="{x(p.at)}" cy="{y(float(r))}" r="1.2"/>'
                   for p in pts for r in p.rivals)
    line = " ".join(f"{x(p.at)},{y(float(p.price))}" for p in pts)
    marks = "".join(
        f'<line x1="{PAD}" x2="{W - PAD}" y1="{y(float(b))}" y2="{y(float(b))}" '
        f'stroke="#999" stroke-dasharray="4 3"/><text x="{W - PAD + 2}" y="{y(float(b)) + 4}">'
        f"{name} {b}</text>"
        for name, b in (("floor", ad.floor), ("ceiling", ad.ceiling))
        if b is not None and lo <= float(b) <= hi)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W + 80} {H}" '
            f'role="img" aria-label="price of {html.escape(ad.label)}">'
            f'<g fill="#bbb">{dots}</g>{marks}'
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{line}"/>'
            f"{_axes(s[0].at, s[-1].at, lo, hi)}</svg>")


def rank_svg(ad: AdRun, colour: str) -> str:
    """The rank over time (1 at the top; unseen drawn below 20)."""
    s = ad.samples
    if not s:
        return ""
    step = _thin(len(s))
    pts = s[::step]
    x, y = _scale(s[0].at, s[-1].at, W), _scale(1, 21, H // 2 + PAD, flip=False)
    path = " ".join(f"{x(p.at)},{y(min(p.rank or 21, 21))}" for p in pts)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W + 80} {H // 2 + PAD}" '
            f'role="img" aria-label="rank of {html.escape(ad.label)}">'
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.2" points="{path}"/>'
            f'<text x="2" y="{y(1) + 4}">1</text><text x="2" y="{y(10) + 4}">10</text>'
            f'<text x="2" y="{y(21) + 4}">out</text></svg>')


def _axes(t0: float, t1: float, lo: float, hi: float) -> str:
    return (f'<text x="{PAD}" y="{H - 8}">{_stamp(t0)}</text>'
            f'<text x="{W - PAD - 70}" y="{H - 8}">{_stamp(t1)}</text>'
            f'<text x="2" y="{PAD}">{hi:g}</text><text x="2" y="{H - PAD}">{lo:g}</text>')


def _table(configs: Sequence[dict[str, Any]]) -> str:
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [("rank-1 share", lambda c: f"{c['rank1_share']:.1%}"),
            ("edits", lambda c: str(c["edits"])),
            ("median margin above floor", lambda c: c["margin_floor"] or "-"),
            ("median margin below ceiling", lambda c: c["margin_ceiling"] or "-"),
            ("orders (estimated)", lambda c: f"{c['orders']:.2f}"),
            ("volume (estimated)", lambda c: c["volume"]),
            ("guards hit", lambda c: ", ".join(f"{k} {v}" for k, v in c["guards"].items()) or "-"),
            ("time modelled", lambda c: f"{c['modelled_share']:.0%}")]
    head = "".join(f"<th>{html.escape(c['name'])}</th>" for c in configs)
    body = "".join(f"<tr><th>{label}</th>" + "".join(f"<td>{html.escape(f(c))}</td>"
                                                      for c in configs) + "</tr>"
                   for label, f in rows)
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


def page(doc: dict[str, Any], runs: Sequence[Run]) -> str:
    """The whole page."""
    sections = []
    for i, run in enumerate(runs):
        colour = COLOURS[i % len(COLOURS)]
        for ad in run.ads:
            sections.append(
                f'<section><h2 style="color:{colour}">{html.escape(run.name)}: '
                f"{html.escape(ad.label)} ({ad.side})</h2>"
                f"<h3>price (line) and the three best rivals (grey)</h3>{price_svg(ad, colour)}"
                f"<h3>rank in search</h3>{rank_svg(ad, colour)}</section>")
    diffs = "".join(f"<li>{html.escape(d)}</li>" for d in doc["differences"])
    title = f"p2pbot backtest: {', '.join(c['name'] for c in doc['configs'])}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font:14px system-ui,sans-serif;margin:24px;max-width:1040px}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
svg{{width:100%;height:auto;background:#fafafa;font:10px sans-serif}}
pre{{background:#f4f4f4;padding:8px;overflow-x:auto}}</style></head>
<body><h1>{html.escape(title)}</h1>
{_table(doc["configs"])}
<h2>differences</h2><ul>{diffs or "<li>one config: nothing to compare</li>"}</ul>
{"".join(sections)}
<h2>what is replayed and what is modelled</h2>
<p><b>replayed:</b> {html.escape(doc["replayed"])}</p>
<p><b>modelled:</b> {html.escape(doc["modelled"])}</p>
<details><summary>the report as text</summary><pre>{html.escape(text(doc))}</pre></details>
</body></html>
"""
