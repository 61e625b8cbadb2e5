"""Latency distributions as a hand-written SVG (no plotting dependency).

A cumulative distribution on a logarithmic time axis shows two servers that
differ by an order of magnitude on one chart, and every percentile can be read
off it: p50 where a curve crosses 0.5, p99 where it crosses 0.99.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 720, 420
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 60
COLOURS = ("#d95f02", "#1b6fa8", "#2a9d3c", "#7a3db8")
_STEPS = (1, 2, 5)


def _ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks covering [lo, hi]."""
    out: list[float] = []
    exp = math.floor(math.log10(lo))
    while True:
        for step in _STEPS:
            value = step * 10.0**exp
            if value > hi * 1.0001:
                return out
            if value >= lo * 0.9999:
                out.append(value)
        exp += 1


def _bracket(lo: float, hi: float) -> tuple[float, float]:
    """The nearest 1-2-5 values at or below `lo` and at or above `hi`."""
    exp = math.floor(math.log10(lo))
    low = max(step * 10.0**exp for step in _STEPS if step * 10.0**exp <= lo * 1.0001)
    exp = math.floor(math.log10(hi))
    high = min(step * 10.0**e for e in (exp, exp + 1) for step in _STEPS if step * 10.0**e >= hi * 0.9999)
    return low, high


def _label(ms: float) -> str:
    return f"{ms:g} ms" if ms < 1000 else f"{ms / 1000:g} s"


def cdf_svg(series: Sequence[tuple[str, Sequence[float]]], title: str, note: str = "") -> str:
    """An SVG chart of the cumulative distribution of each named list of milliseconds."""
    values = [v for _, vs in series for v in vs if v > 0]
    if not values:
        raise ValueError("nothing to plot")
    lo, hi = _bracket(min(values), max(values))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(ms: float) -> float:
        return LEFT + plot_w * (math.log10(ms) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    def y(fraction: float) -> float:
        return TOP + plot_h * (1 - fraction)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>',
    ]
    for tick in _ticks(lo, hi):
        tx = x(tick)
        parts.append(f'<line x1="{tx:.1f}" y1="{TOP}" x2="{tx:.1f}" y2="{TOP + plot_h}" stroke="#e4e4e4"/>')
        parts.append(f'<text x="{tx:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{_label(tick)}</text>')
    for fraction in (0.0, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0):
        ty = y(fraction)
        dash = ' stroke-dasharray="4 3"' if fraction in (0.5, 0.9, 0.99) else ""
        parts.append(f'<line x1="{LEFT}" y1="{ty:.1f}" x2="{LEFT + plot_w}" y2="{ty:.1f}" '
                     f'stroke="#d0d0d0"{dash}/>')
        if fraction < 1.0:  # the top edge is 1; a label there would overlap 0.99
            parts.append(f'<text x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end">{fraction:g}</text>')
    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#555"/>')
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 22}" text-anchor="middle">'
                 f'{escape(note or "latency (log scale)")}</text>')
    parts.append(f'<text transform="translate(16 {TOP + plot_h / 2}) rotate(-90)" text-anchor="middle">'
                 'fraction of samples at or below</text>')
    for i, (name, vs) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        ordered = sorted(v for v in vs if v > 0)
        n = len(ordered)
        # A step function: the curve rises by 1/n at each sample.
        points = [(x(ordered[0]), y(0.0))]
        for k, v in enumerate(ordered):
            points += [(x(v), y(k / n)), (x(v), y((k + 1) / n))]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        ly = TOP + 18 + 18 * i
        parts.append(f'<line x1="{LEFT + 12}" y1="{ly}" x2="{LEFT + 36}" y2="{ly}" stroke="{colour}" '
                     'stroke-width="3"/>')
        median = ordered[(n + 1) // 2 - 1]  # nearest-rank p50
        parts.append(f'<text x="{LEFT + 42}" y="{ly + 4}">{escape(name)} (n={n}, p50 {median:.1f} ms)</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
