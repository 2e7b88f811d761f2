"""Numbers and dates as the hotline speaks them, and every prompt it can play is rendered."""

from __future__ import annotations

import datetime as dt
import shutil
import wave
from pathlib import Path

import pytest

from surveys.hotline import HOTLINE_PROMPTS, hotline_texts
from surveys.hotline_say import NUMBER_WORDS, date_prompts, number_prompts
from surveys.prompts import render_hotline_prompts


def _zh(n: int) -> str:
    return "".join(NUMBER_WORDS["zh"][p] for p in number_prompts(n, "zh-CN"))


def _en(n: int) -> str:
    return " ".join(NUMBER_WORDS["en"][p] for p in number_prompts(n, "en"))


@pytest.mark.parametrize(
    ("n", "zh", "en"),
    [
        (0, "零", "zero"),
        (12, "十二", "twelve"),
        (105, "一百零五", "one hundred five"),
        (1005, "一千零五", "one thousand five"),
        (10010, "一万零一十", "ten thousand ten"),
        (12300, "一万两千三百", "twelve thousand three hundred"),
        (20000, "两万", "twenty thousand"),
        (100005, "十万零五", "one hundred thousand five"),
        (200000000, "两亿", "two hundred million"),
        (123456789, "一亿两千三百四十五万六千七百八十九",
         "one hundred twenty three million four hundred fifty six thousand seven hundred "
         "eighty nine"),
    ],
)  # fmt: skip
def test_numbers(n: int, zh: str, en: str) -> None:
    assert (_zh(n), _en(n)) == (zh, en)


def test_dates() -> None:
    words = {**NUMBER_WORDS["zh"]}
    d = dt.date(2027, 3, 31)
    assert "".join(words[p] for p in date_prompts(d, "zh-CN")) == "二零二七年三月三十一日"
    en = " ".join(NUMBER_WORDS["en"][p] for p in date_prompts(d, "en"))
    assert en == "March thirty-first twenty twenty seven"
    leap = " ".join(NUMBER_WORDS["en"][p] for p in date_prompts(dt.date(2028, 2, 29), "en"))
    assert leap == "February twenty-ninth twenty twenty eight"
    assert " ".join(NUMBER_WORDS["en"][p] for p in date_prompts(dt.date(2005, 1, 2), "en")) == (
        "January second two thousand five"
    )


def test_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError):
        number_prompts(-1, "en")


@pytest.mark.parametrize("locale", ["zh-CN", "zh-TW", "en"])
def test_every_prompt_the_ivr_plays_is_rendered(locale: str) -> None:
    texts = hotline_texts(locale)
    needed = {
        n
        for n in HOTLINE_PROMPTS
        if HOTLINE_PROMPTS[n]["zh-CN" if locale.startswith("zh") else "en"]
    }
    for n in [*range(0, 10_001), 12_300, 99_999_999, 123_456_789_012]:
        needed.update(number_prompts(n, locale))
    day = dt.date(2026, 1, 1)
    while day < dt.date(2027, 1, 1):
        needed.update(date_prompts(day, locale))
        day += dt.timedelta(days=1)
    assert needed <= set(texts)
    assert all(seg[1] for segs in texts.values() for seg in segs)


@pytest.mark.e2e
@pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="espeak-ng/sox not installed (apt-get install -y espeak-ng sox); CI installs them",
)
def test_hotline_prompts_render_for_traditional_chinese_members(tmp_path: Path) -> None:
    """A zh-TW member's channel language is zh_TW: every hotline word is rendered there."""
    done = render_hotline_prompts(tmp_path, locales=("zh-TW",))
    files = {p.name for p in (tmp_path / "zh_TW").iterdir()}
    assert files == {f"{n}.wav" for n in hotline_texts("zh-TW")}
    lengths = {p.audio: p.seconds for p in done}
    for p in done:
        with wave.open(str(p.path)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
            assert w.getnframes() > 8000 * 0.1  # speech, even for a single syllable
    # said in both languages before the caller is known: longer than the Chinese alone
    assert lengths["hotline-welcome"] > lengths["hotline-tier-gold"] + 1.0
