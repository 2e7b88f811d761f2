"""Name, phone and place material for demo data (pure data and tiny pure generators)."""

from __future__ import annotations

import random

CN_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任"
    "沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
CN_GIVEN = (
    "伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀兰", "霞", "平", "刚", "桂英", "华", "玉兰", "萍", "建华", "红梅", "鑫", "婷", "雪", "飞",
    "宇", "浩然", "子涵", "欣怡", "梓轩", "一诺", "雨桐", "思远", "嘉怡", "晨阳", "佳琪", "俊杰", "文博",
    "诗琪", "志强", "晓东", "海燕", "丹",
)  # fmt: skip
TW_SURNAMES = "陳林黃張李王吳劉蔡楊許鄭謝郭洪曾邱廖賴周徐蘇葉莊呂江何蕭羅高"
TW_GIVEN = (
    "志明", "淑芬", "家豪", "雅婷", "冠宇", "怡君", "建宏", "美玲", "俊傑", "詩涵", "宗翰", "佩珊", "承恩",
    "欣妤", "大文", "嘉欣", "偉倫", "玉珍", "國華", "麗華", "曉薇", "子軒", "思穎", "柏翰",
)  # fmt: skip
EN_FIRST = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
    "Emily", "Oliver", "Amelia", "Jack", "Olivia", "Harry", "Isla", "George", "Ava", "Noah", "Sophie",
    "Daniel", "Chloe", "Wei", "Mei", "Jun", "Ling", "Kevin", "Grace", "Ethan",
)  # fmt: skip
EN_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Taylor", "Clark",
    "Lewis", "Walker", "Hall", "Young", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Tan",
    "Lim", "Lee", "Ng", "Wong", "Chan", "Ong", "Goh", "Chen", "Zhang",
)  # fmt: skip

CN_MOBILE_PREFIXES = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152", "153",
    "155", "156", "157", "158", "159", "180", "181", "182", "183", "185", "186", "187", "188", "189",
    "177", "199",
)  # fmt: skip
US_AREA_CODES = ("212", "415", "646", "310", "312", "617", "206", "718", "202", "305", "408", "512")

# region -> (weight, locale choices, time zone choices (name, UTC offset hours))
REGIONS: dict[str, tuple[float, tuple[str, ...], tuple[tuple[str, int], ...]]] = {
    "CN": (0.80, ("zh-CN",), (("Asia/Shanghai", 8),)),
    "HK": (0.05, ("zh-TW", "zh-TW", "en"), (("Asia/Hong_Kong", 8),)),
    "TW": (0.04, ("zh-TW",), (("Asia/Taipei", 8),)),
    "SG": (0.04, ("en", "zh-CN"), (("Asia/Singapore", 8),)),
    "US": (
        0.04,
        ("en",),
        (("America/New_York", -5), ("America/Los_Angeles", -8), ("America/Chicago", -6)),
    ),
    "GB": (0.03, ("en",), (("Europe/London", 0),)),
}

STORES = (
    ("上海南京路店", "store"), ("北京王府井店", "store"), ("广州天河店", "store"), ("深圳万象城店", "store"),
    ("成都春熙路店", "store"), ("杭州湖滨店", "store"), ("香港銅鑼灣店", "store"), ("台北信義店", "store"),
    ("Online", "online"), ("App", "app"),
)  # fmt: skip
CATEGORIES = (
    ("apparel", 350.0), ("cosmetics", 280.0), ("food", 80.0), ("electronics", 1500.0), ("home", 400.0),
    ("jewelry", 2500.0), ("shoes", 500.0), ("books", 60.0),
)  # fmt: skip
NOTES_ZH = (
    "偏好：M码，喜欢绿茶",
    "喜欢新品到货通知",
    "周末方便接电话",
    "对价格敏感",
    "喜欢红色系",
    "过敏体质，注意成分",
)
NOTES_EN = (
    "Prefers size M",
    "Likes new-arrival calls",
    "Call after 6pm",
    "Price sensitive",
    "Vegetarian",
)


def person_name(rng: random.Random, region: str, locale: str) -> str:
    if locale == "en":
        return f"{rng.choice(EN_FIRST)} {rng.choice(EN_LAST)}"
    if locale == "zh-TW":
        return rng.choice(TW_SURNAMES) + rng.choice(TW_GIVEN)
    return rng.choice(CN_SURNAMES) + rng.choice(CN_GIVEN)


_NATIONAL_LEN = {"HK": 8, "TW": 9, "SG": 8, "US": 10, "GB": 10}
_FIRST_DIGITS = {"HK": ("5", "6", "9"), "TW": ("9",), "SG": ("8", "9"), "GB": ("7",)}
_VALID_PREFIXES: dict[str, tuple[str, ...]] = {}


def _valid_prefixes(region: str) -> tuple[str, ...]:
    """National 4-digit prefixes whose numbers phonenumbers accepts (probed once, deterministic)."""
    cached = _VALID_PREFIXES.get(region)
    if cached is not None:
        return cached
    from crm_bridge.phones import normalise

    cc = {"HK": "852", "TW": "886", "SG": "65", "US": "1", "GB": "44"}[region]
    length = _NATIONAL_LEN[region]
    if region == "US":
        heads = tuple(f"{area}{ex}" for area in US_AREA_CODES for ex in range(2, 10))
    else:
        heads = tuple(f"{d}{n:03d}" for d in _FIRST_DIGITS[region] for n in range(1000))
    good = []
    for head in heads:
        tails = ("0" * (length - len(head)), "9" * (length - len(head)))
        if all(normalise(f"+{cc}{head}{t}") == f"+{cc}{head}{t}" for t in tails):
            good.append(head)
    _VALID_PREFIXES[region] = tuple(good)
    return _VALID_PREFIXES[region]


def phone_number(rng: random.Random, region: str) -> str:
    """A mobile number in E.164 for ``region`` that phonenumbers accepts as valid.

    Chinese numbers use assigned mobile prefixes; other regions use national prefixes probed
    once against phonenumbers' metadata (no per-number validation: a million members).
    """
    r = rng.random
    if region == "CN":
        return f"+86{CN_MOBILE_PREFIXES[int(r() * len(CN_MOBILE_PREFIXES))]}{int(r() * 10**8):08d}"
    heads = _valid_prefixes(region)
    head = heads[int(r() * len(heads))]
    rest = _NATIONAL_LEN[region] - len(head)
    cc = {"HK": "852", "TW": "886", "SG": "65", "US": "1", "GB": "44"}[region]
    return f"+{cc}{head}{int(r() * 10**rest):0{rest}d}"
