"""Cell-width cropping: CJK glyphs are two cells and are never cut in half."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len

from agent_tui.cells import ELLIPSIS, column_widths, crop, pad

TEXT = st.text(alphabet=st.sampled_from(list("abc 李伟王芳（）会员积分ABC12")), max_size=30)


def test_crop_examples() -> None:
    assert crop("李思思（VIP会员）", 7) == "李思思…"  # 6 cells + ellipsis, not half a glyph
    assert crop("李思思", 6) == "李思思"
    assert crop("abc", 0) == ""
    assert pad("李伟", 5) == "李伟 "
    assert pad("李伟王", 5) == "李伟…"


@given(TEXT, st.integers(min_value=1, max_value=40))
def test_crop_fits_and_keeps_a_prefix(text: str, width: int) -> None:
    out = crop(text, width)
    assert cell_len(out) <= width
    if cell_len(text) <= width:
        assert out == text
    else:
        assert out.endswith(ELLIPSIS) and text.startswith(out[:-1])
    assert cell_len(pad(text, width)) == width


def test_column_widths_count_cells() -> None:
    rows = [["李思思（VIP）", "Gold"], ["Emily", "Platinum"]]
    assert column_widths(["Name", "Tier"], rows) == [13, 8]
    assert column_widths(["Name"], [["x" * 80]], max_width=20) == [20]
