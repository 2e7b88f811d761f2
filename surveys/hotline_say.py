"""How the hotline speaks numbers and dates: pure functions from a value to prompt names.

Each name is a short recording in ``sounds/<lang>/`` (``hotline-n-7``, ``hotline-n-10000``,
``hotline-month-3`` ...), rendered by ``memberline prompts render`` in every
language, so a real Asterisk plays them without its own ``say`` sounds for Chinese.

Chinese reads numbers in groups of four (万, 亿) with 零 for a gap and 两 before 千/万/亿
(12 300 = 一万两千三百, 1 005 = 一千零五, 20 000 = 两万) and dates as 二零二七年三月三十一日;
English reads 12 300 as "twelve thousand three hundred" and dates as "March thirty-first,
twenty twenty-seven".
"""

from __future__ import annotations

import datetime as dt

__all__ = ["MONTHS_EN", "NUMBER_WORDS", "ORDINALS_EN", "date_prompts", "number_prompts"]

MAX_NUMBER = 10**12 - 1

ZH_DIGITS = "零一二三四五六七八九"
NUMBER_WORDS: dict[str, dict[str, str]] = {
    "zh": {
        **{f"hotline-n-{i}": ZH_DIGITS[i] for i in range(10)},
        "hotline-n-10": "十",
        "hotline-n-100": "百",
        "hotline-n-1000": "千",
        "hotline-n-10000": "万",
        "hotline-n-100000000": "亿",
        "hotline-n-liang": "两",
        "hotline-year": "年",
        "hotline-month": "月",
        "hotline-day": "日",
    },
    "en": {
        **{
            f"hotline-n-{i}": w
            for i, w in enumerate(
                "zero one two three four five six seven eight nine ten eleven twelve thirteen "
                "fourteen fifteen sixteen seventeen eighteen nineteen".split()
            )
        },
        **{
            f"hotline-n-{10 * i}": w
            for i, w in enumerate(
                "twenty thirty forty fifty sixty seventy eighty ninety".split(), start=2
            )
        },
        "hotline-n-100": "hundred",
        "hotline-n-1000": "thousand",
        "hotline-n-1000000": "million",
        "hotline-n-1000000000": "billion",
        "hotline-n-oh": "oh",
    },
}
"""Every number/date word each language needs: prompt name -> text to render."""

MONTHS_EN = (
    "January February March April May June July August September October November December"
).split()
_ORD_SMALL = (
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
    "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth"
).split()


def _ordinal_en(n: int) -> str:
    if n < 20:
        return _ORD_SMALL[n - 1]
    tens = {20: "twent", 30: "thirt"}[n - n % 10]
    if n % 10 == 0:
        return f"{tens}ieth"
    return f"{tens}y-{_ORD_SMALL[n % 10 - 1]}"


ORDINALS_EN = {f"hotline-ord-{d}": _ordinal_en(d) for d in range(1, 32)}
NUMBER_WORDS["en"].update({f"hotline-month-{i}": m for i, m in enumerate(MONTHS_EN, start=1)})
NUMBER_WORDS["en"].update(ORDINALS_EN)


def _lang(locale: str) -> str:
    return "zh" if locale.lower().startswith("zh") else "en"


def number_prompts(n: int, locale: str) -> list[str]:
    """The prompts that speak the whole number ``n`` (0 <= n < 10**12) in ``locale``."""
    if not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"cannot speak {n}: out of range")
    return _zh_number(n) if _lang(locale) == "zh" else _en_number(n)


def _zh_group(g: int, *, leading: bool) -> list[str]:
    """A group 1..9999; ``leading``: the number's first group (十二, not 一十二)."""
    out: list[str] = []
    gap = False
    for unit in (1000, 100, 10, 1):
        d = g // unit % 10
        if d == 0:
            gap = bool(out)
            continue
        if gap:
            out.append("hotline-n-0")
            gap = False
        if unit == 10 and d == 1 and leading and not out:
            out.append("hotline-n-10")  # 十二, not 一十二
            continue
        if d == 2 and unit == 1000:
            out.append("hotline-n-liang")
        else:
            out.append(f"hotline-n-{d}")
        if unit > 1:
            out.append(f"hotline-n-{unit}")
    return out


def _zh_number(n: int) -> list[str]:
    if n == 0:
        return ["hotline-n-0"]
    groups = []
    rest = n
    while rest:
        groups.append(rest % 10000)
        rest //= 10000
    names = {1: "hotline-n-10000", 2: "hotline-n-100000000", 3: "hotline-n-10000"}
    out: list[str] = []
    for i in range(len(groups) - 1, -1, -1):
        g = groups[i]
        if g == 0:
            continue
        leading = not out
        if not leading and (g < 1000 or groups[i + 1] == 0):
            out.append("hotline-n-0")  # 一万零五, 一亿零五万
        words = _zh_group(g, leading=leading)
        if g == 2 and i > 0:
            words = ["hotline-n-liang"]  # 两万, 两亿
        out += words
        if i == 3:
            out += ["hotline-n-10000", "hotline-n-100000000"]  # 万亿
        elif i:
            out.append(names[i])
    return out


def _en_below_1000(n: int) -> list[str]:
    out: list[str] = []
    if n >= 100:
        out += [f"hotline-n-{n // 100}", "hotline-n-100"]
        n %= 100
    if n >= 20:
        out.append(f"hotline-n-{n - n % 10}")
        n %= 10
        if n:
            out.append(f"hotline-n-{n}")
    elif n:
        out.append(f"hotline-n-{n}")
    return out


def _en_number(n: int) -> list[str]:
    if n == 0:
        return ["hotline-n-0"]
    out: list[str] = []
    for scale, name in (
        (10**9, "hotline-n-1000000000"),
        (10**6, "hotline-n-1000000"),
        (1000, "hotline-n-1000"),
    ):
        if n >= scale:
            out += [*_en_below_1000(n // scale), name]
            n %= scale
    return out + _en_below_1000(n)


def date_prompts(d: dt.date, locale: str) -> list[str]:
    """The prompts that speak a calendar date in ``locale``."""
    if _lang(locale) == "zh":
        year = [f"hotline-n-{int(c)}" for c in str(d.year)]  # 二零二七
        return [
            *year,
            "hotline-year",
            *_zh_number(d.month),
            "hotline-month",
            *_zh_number(d.day),
            "hotline-day",
        ]
    return [f"hotline-month-{d.month}", f"hotline-ord-{d.day}", *_en_year(d.year)]


def _en_year(y: int) -> list[str]:
    if 2000 <= y < 2010 or y % 100 == 0 or y < 1000:
        return _en_number(y)  # two thousand seven, nineteen hundred -> one thousand nine hundred
    tail = y % 100
    second = ["hotline-n-oh", f"hotline-n-{tail}"] if tail < 10 else _en_below_1000(tail)
    return _en_below_1000(y // 100) + second
