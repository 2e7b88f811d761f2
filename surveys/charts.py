"""Small inline SVG charts (pure functions, strings out): no JavaScript, no CDN."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

__all__ = ["bar_chart", "line_chart"]

W, H = 560, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 28, 44
FONT = "font-family='system-ui, sans-serif' font-size='11'"


def _text_w(text: str) -> float:
    """Rough width in px of ``text`` at 11 px: 6.5 per Latin character, 11 per CJK one."""
    return sum(11.0 if ord(ch) > 0x2E80 else 6.5 for ch in text)


def _frame(title: str) -> list[str]:
    return [
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {W} {H}' width='{W}' height='{H}' "
        f"role='img' aria-label='{escape(title, quote=True)}'>",
        f"<title>{escape(title)}</title>",
        f"<rect x='0' y='0' width='{W}' height='{H}' fill='#ffffff'/>",
        f"<text x='{LEFT}' y='18' {FONT} font-size='13' font-weight='600' fill='#222'>"
        f"{escape(title)}</text>",
    ]


def _y(value: float, lo: float, hi: float) -> float:
    span = hi - lo or 1.0
    return TOP + (H - TOP - BOTTOM) * (1 - (value - lo) / span)


def _axes(lo: float, hi: float, ticks: Sequence[float], unit: str) -> list[str]:
    out = []
    for t in ticks:
        y = _y(t, lo, hi)
        out.append(
            f"<line x1='{LEFT}' x2='{W - RIGHT}' y1='{y:.1f}' y2='{y:.1f}' "
            f"stroke='{'#888' if t == 0 else '#e3e3e3'}' stroke-width='1'/>"
        )
        out.append(
            f"<text x='{LEFT - 6}' y='{y + 4:.1f}' text-anchor='end' {FONT} fill='#555'>"
            f"{t:g}{escape(unit)}</text>"
        )
    return out


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float | None]]],
    *,
    lo: float,
    hi: float,
    ticks: Sequence[float],
    unit: str = "",
    sublabels: Sequence[str] | None = None,
) -> str:
    """Lines over ``labels`` (x); ``series`` = (name, colour, values); None = a gap.

    Only every ``step``-th label is written, ``step`` chosen from the widest label so that
    none overlaps; ``sublabels`` (e.g. the year under a week) go on a second line, under
    the first written label of each run of equal sublabels."""
    out = _frame(title) + _axes(lo, hi, ticks, unit)
    n = len(labels)
    plot_w = W - LEFT - RIGHT

    def x(i: int) -> float:
        return LEFT + (plot_w * (i + 0.5) / n if n else 0)

    widest = max([_text_w(label) for label in labels] + [1.0])
    slot = plot_w / max(n, 1)
    step = max(1, math.ceil((widest + 8) / slot))
    shown_sub = ""
    for i, label in enumerate(labels):
        if i % step == 0:
            out.append(
                f"<text x='{x(i):.1f}' y='{H - BOTTOM + 16}' text-anchor='middle' {FONT} "
                f"fill='#555'>{escape(label)}</text>"
            )
            sub = sublabels[i] if sublabels is not None and i < len(sublabels) else ""
            if sub and sub != shown_sub:
                out.append(
                    f"<text x='{x(i):.1f}' y='{H - BOTTOM + 29}' text-anchor='middle' {FONT} "
                    f"fill='#888'>{escape(sub)}</text>"
                )
                shown_sub = sub
    for s_index, (name, colour, values) in enumerate(series):
        runs: list[list[tuple[float, float]]] = [[]]
        for i, v in enumerate(values):
            if v is None:
                runs.append([])
            else:
                runs[-1].append((x(i), _y(max(lo, min(hi, v)), lo, hi)))
        for run in runs:
            if len(run) > 1:
                pts = " ".join(f"{px:.1f},{py:.1f}" for px, py in run)
                out.append(
                    f"<polyline points='{pts}' fill='none' stroke='{colour}' stroke-width='2.5'/>"
                )
            for px, py in run:
                out.append(f"<circle cx='{px:.1f}' cy='{py:.1f}' r='3.5' fill='{colour}'/>")
        # the legend sits top right, beside the title (the bottom holds two lines of labels)
        lx = W - RIGHT - 130 * (len(series) - s_index)
        out.append(f"<rect x='{lx}' y='10' width='12' height='4' fill='{colour}'/>")
        out.append(f"<text x='{lx + 16}' y='16' {FONT} fill='#333'>{escape(name)}</text>")
    if not any(v is not None for _, _, vals in series for v in vals):
        out.append(
            f"<text x='{W / 2}' y='{H / 2}' text-anchor='middle' {FONT} fill='#999'>no data</text>"
        )
    out.append("</svg>")
    return "\n".join(out)


def bar_chart(title: str, bars: Sequence[tuple[str, int, str]], *, x_title: str = "") -> str:
    """A histogram: (label, count, colour) per bar, counts printed above the bars."""
    top = max([c for _, c, _ in bars] + [1])
    nice = top if top <= 5 else int(-(-top // 5) * 5)
    ticks = sorted({0, nice / 2 if nice > 1 else 0, nice})
    out = _frame(title) + _axes(0, nice, ticks, "")
    n = len(bars)
    slot = (W - LEFT - RIGHT) / max(n, 1)
    for i, (label, count, colour) in enumerate(bars):
        x = LEFT + slot * i + slot * 0.15
        y = _y(count, 0, nice)
        h = _y(0, 0, nice) - y
        out.append(
            f"<rect x='{x:.1f}' y='{y:.1f}' width='{slot * 0.7:.1f}' height='{h:.1f}' "
            f"fill='{colour}'><title>{escape(label)}: {count}</title></rect>"
        )
        # The count sits above its bar, or inside a bar that reaches the top (above it, the
        # text would run into the chart's title).
        inside = y - 4 - 11 < TOP
        out.append(
            f"<text x='{x + slot * 0.35:.1f}' y='{y + 13 if inside else y - 4:.1f}' "
            f"text-anchor='middle' {FONT} fill='{'#fff' if inside else '#333'}'>{count}</text>"
        )
        out.append(
            f"<text x='{x + slot * 0.35:.1f}' y='{H - BOTTOM + 16}' text-anchor='middle' {FONT} "
            f"fill='#555'>{escape(label)}</text>"
        )
    if x_title:
        out.append(
            f"<text x='{(LEFT + W - RIGHT) / 2}' y='{H - 8}' text-anchor='middle' {FONT} "
            f"fill='#555'>{escape(x_title)}</text>"
        )
    out.append("</svg>")
    return "\n".join(out)
