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


def progress_text(fraction: float, width: int = 10) -> str:
    return f"{bar(fraction, 1.0, width)} {fraction * 100:3.0f}%"


def survey_chart(rows: Sequence[SurveyRow], bar_width: int = 20) -> str:
    """CSAT (1-5 scale or %) and NPS (-100..100) per period as Textual markup lines.

    Colours are theme variables ($success / $error), so the chart reads on light and dark.
    """
    csat_max = 100.0 if any((r.csat or 0) > 5 for r in rows) else 5.0
    period_w = max([cell_len("Period"), *(cell_len(r.period) for r in rows)])
    lines = [f"[b]{pad('Period', period_w)}  {'n':>5}  {pad('CSAT', bar_width + 6)}  NPS[/b]"]
    for r in rows:
        if r.csat is None:
            csat = pad("—", bar_width + 6)
        else:
            csat = f"[$success]{bar(r.csat, csat_max, bar_width)}[/] {r.csat:5.1f}"
        if r.nps is None:
            nps = "—"
        else:
            colour = "$success" if r.nps >= 0 else "$error"
            nps = f"[{colour}]{bar(abs(r.nps), 100.0, bar_width)}[/] {r.nps:+4.0f}"
        lines.append(f"{escape(pad(r.period, period_w))}  {r.responses:>5}  {csat}  {nps}")
    return "\n".join(lines)
