"""Small charts drawn with Rich (textual-plotext is not installed): bars and a progress bar."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from textual.markup import escape

from agent_tui.cells import pad
from agent_tui.model import SurveyRow

BLOCKS = " ▏▎▍▌▋▊▉█"


def bar(value: float, maximum: float, width: int) -> str:
    """A horizontal bar of ``width`` cells, eighth-cell precision (pure)."""
    if maximum <= 0 or width <= 0:
        return " " * max(width, 0)
    frac = min(max(value / maximum, 0.0), 1.0)
    eighths = round(frac * width * 8)
    full, part = divmod(eighths, 8)
    out = "█" * full + (BLOCKS[part] if part else "")
    return out + " " * (width - len(out))


def diverging_bar(value: float, limit: float, width: int) -> tuple[str, str]:
    """A bar around zero for a score in ``-limit..limit`` (NPS): ``(left, right)`` halves of
    ``width // 2`` cells each. A negative score fills the left half from the centre outwards
    (half-cell precision), a positive one the right half (eighth-cell precision); so -100 and
    +100 fill opposite halves and 0 draws nothing (pure)."""
    half = max(width // 2, 1)
    if limit <= 0:
        return " " * half, " " * half
    frac = min(max(value / limit, -1.0), 1.0)
    if frac >= 0:
        return " " * half, bar(frac, 1.0, half)
    halves = round(-frac * half * 2)
    full, part = divmod(halves, 2)
    left = ("▐" if part else "") + "█" * full
    return " " * (half - len(left)) + left, " " * half


def progress_text(fraction: float, width: int = 10) -> str:
    return f"{bar(fraction, 1.0, width)} {fraction * 100:3.0f}%"


def survey_chart(rows: Sequence[SurveyRow], bar_width: int = 20) -> str:
    """CSAT (1-5 scale or %) and NPS (-100..100) per period as Textual markup lines.

    Colours are theme variables ($success / $error), so the chart reads on light and dark.
    """
    csat_max = 100.0 if any((r.csat or 0) > 5 for r in rows) else 5.0
    period_w = max([cell_len("Period"), *(cell_len(r.period) for r in rows)])
    half = max(bar_width // 2, 1)
    nps_head = pad("-100", half) + "0" + "+100".rjust(half)
    lines = [
        f"[b]{pad('Period', period_w)}  {'n':>5}  {pad('CSAT', bar_width + 6)}  NPS[/b]",
        f"{pad('', period_w)}  {'':>5}  {pad('', bar_width + 6)}  [dim]{nps_head}[/]",
    ]
    for r in rows:
        if r.csat is None:
            csat = pad("—", bar_width + 6)
        else:
            csat = f"[$success]{bar(r.csat, csat_max, bar_width)}[/] {r.csat:5.1f}"
        if r.nps is None:
            nps = "—"
        else:
            left, right = diverging_bar(r.nps, 100.0, bar_width)
            nps = f"[$error]{left}[/]│[$success]{right}[/] {r.nps:+4.0f}"
        lines.append(f"{escape(pad(r.period, period_w))}  {r.responses:>5}  {csat}  {nps}")
    return "\n".join(lines)
