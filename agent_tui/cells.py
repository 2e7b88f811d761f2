"""Terminal-cell-width text helpers (pure).

Chinese characters take two terminal cells. Column widths are computed with
:func:`rich.cells.cell_len`, and text is cropped between glyphs, never through one:
a double-width character that does not fit is replaced by an ellipsis (and a space
pad when needed) so every row of a table keeps the same width.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.cells import cell_len, get_character_cell_size

ELLIPSIS = "…"


def crop(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` cells, ending in ``…`` when cut; never mid-glyph."""
    if width <= 0:
        return ""
    if cell_len(text) <= width:
        return text
    out: list[str] = []
    used = 0
    limit = width - 1  # room for the ellipsis
    for ch in text:
        size = get_character_cell_size(ch)
        if used + size > limit:
            break
        out.append(ch)
        used += size
    return "".join(out) + ELLIPSIS


def pad(text: str, width: int) -> str:
    """``text`` cropped, then padded with spaces to exactly ``width`` cells."""
    cropped = crop(text, width)
    return cropped + " " * (width - cell_len(cropped))


def column_widths(
    header: Sequence[str], rows: Iterable[Sequence[str]], max_width: int = 40
) -> list[int]:
    """The width in cells of each column: its widest cell (header included), capped."""
    widths = [cell_len(h) for h in header]
    for row in rows:
        for i, value in enumerate(row[: len(widths)]):
            widths[i] = max(widths[i], cell_len(value))
    return [min(w, max_width) for w in widths]
