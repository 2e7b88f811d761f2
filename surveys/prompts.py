"""Render a survey's prompts to files Asterisk plays: 8 kHz, mono, 16-bit PCM WAV.

Text-to-speech with espeak-ng (Mandarin voice ``cmn-latn-pinyin`` for zh-CN / zh-TW, ``en``
for English; Debian package ``espeak-ng``), resampled from espeak-ng's 22 050 Hz with sox (package ``sox``).
Layout: ``OUT/<asterisk language>/<audio>.wav`` (``zh_CN``, ``zh_TW``, ``en``), the
``sounds/<lang>/`` layout Asterisk searches after ``CHANNEL(language)`` is set, so pointing
``--out`` at ``/var/lib/asterisk/sounds`` installs them.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

from surveys.agi import asterisk_language
from surveys.definitions import Survey

__all__ = [
    "ESPEAK_VOICES",
    "PromptToolMissing",
    "RenderedPrompt",
    "render_hotline_prompts",
    "render_prompts",
    "render_safe_harbour",
    "safe_harbour_texts",
]

ESPEAK_VOICES = {"zh-CN": "cmn-latn-pinyin", "zh-TW": "cmn-latn-pinyin", "en": "en"}
"""espeak-ng voice per locale. Not plain ``cmn``: in Debian's espeak-ng 1.51 that voice
("latin as English") turns 汉字 into tone-numbered pinyin and then reads the pinyin letters and
digits as English ("gan three xie four ..."); ``cmn-latn-pinyin`` speaks Mandarin (checked with
``espeak-ng -x``), for simplified and traditional characters alike."""
SAMPLE_RATE = 8000


class PromptToolMissing(RuntimeError):
    """espeak-ng or sox is not installed."""


@dataclass(frozen=True)
class RenderedPrompt:
    locale: str
    audio: str
    path: Path
    seconds: float


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise PromptToolMissing(
            f"{name} is not installed: install it with `apt-get install -y {package}` "
            f"(Debian/Ubuntu package {package!r}) and run the command again"
        )
    return path


def render_prompts(
    survey: Survey, out_dir: Path, *, locales: tuple[str, ...] | None = None
) -> list[RenderedPrompt]:
    """Render every prompt of ``survey`` for each locale; return what was written."""
    espeak = _tool("espeak-ng", "espeak-ng")
    sox = _tool("sox", "sox")
    rendered: list[RenderedPrompt] = []
    seen: set[tuple[str, str]] = set()
    with tempfile.TemporaryDirectory(prefix="memberline-tts-") as tmp:
        raw = Path(tmp) / "tts.wav"
        for locale in locales or survey.locales:
            target_dir = out_dir / asterisk_language(locale)
            target_dir.mkdir(parents=True, exist_ok=True)
            for prompt in survey.prompts():
                if (locale, prompt.audio) in seen:
                    continue
                seen.add((locale, prompt.audio))
                target = target_dir / f"{prompt.audio}.wav"
                subprocess.run(
                    [espeak, "-v", ESPEAK_VOICES.get(locale, "en"), "-s", "150", "-w", str(raw)],
                    input=prompt.text_for(locale).encode("utf-8"),
                    check=True,
                    capture_output=True,
                    timeout=60,
                )
                subprocess.run(
                    [
                        sox,
                        str(raw),
                        "-r",
                        str(SAMPLE_RATE),
                        "-c",
                        "1",
                        "-b",
                        "16",
                        "-e",
                        "signed-integer",
                        str(target),
                    ],
                    check=True,
                    capture_output=True,
                    timeout=60,
                )
                with wave.open(str(target)) as w:
                    seconds = w.getnframes() / w.getframerate()
                rendered.append(RenderedPrompt(locale, prompt.audio, target, seconds))
    return rendered


def _speak(
    espeak: str, sox: str, segments: list[tuple[str, str]], target: Path, tmp: Path
) -> float:
    """Render ``(locale, text)`` segments one after another into one 8 kHz WAV file."""
    parts: list[str] = []
    for i, (locale, text) in enumerate(segments):
        part = tmp / f"seg{i}.wav"
        subprocess.run(
            [espeak, "-v", ESPEAK_VOICES.get(locale, "en"), "-s", "150", "-w", str(part)],
            input=text.encode("utf-8"),
            check=True,
            capture_output=True,
            timeout=60,
        )
        parts.append(str(part))
    subprocess.run(
        [sox, *parts, "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", "-e", "signed-integer",
         str(target)],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    with wave.open(str(target)) as w:
        return w.getnframes() / w.getframerate()


def render_hotline_prompts(
    out_dir: Path, *, locales: tuple[str, ...] = ("zh-CN", "zh-TW", "en")
) -> list[RenderedPrompt]:
    """Render the self-service hotline's prompts (:mod:`surveys.hotline`) and the number and
    date words it speaks (:mod:`surveys.hotline_say`) for each locale; the prompts played
    before the caller is known hold both languages, the channel's first."""
    from surveys.hotline import hotline_texts

    espeak = _tool("espeak-ng", "espeak-ng")
    sox = _tool("sox", "sox")
    rendered: list[RenderedPrompt] = []
    with tempfile.TemporaryDirectory(prefix="memberline-tts-") as tmp:
        for locale in locales:
            target_dir = out_dir / asterisk_language(locale)
            target_dir.mkdir(parents=True, exist_ok=True)
            for name, segments in hotline_texts(locale).items():
                target = target_dir / f"{name}.wav"
                seconds = _speak(espeak, sox, segments, target, Path(tmp))
                rendered.append(RenderedPrompt(locale, name, target, seconds))
    return rendered


def safe_harbour_texts(business: str, business_zh: str, callback: str) -> dict[str, str]:
    """The safe-harbour message per locale: who called and a number to call back (digits
    spoken one by one). Played to a member no agent took within 2 s."""
    digits = " ".join(ch for ch in callback if ch.isdigit() or ch == "+")
    return {
        "zh-CN": f"这里是{business_zh}，现在没有客服接听，请回电 {digits}。",
        "en": f"This is {business}. No one is free right now. Please call back on {digits}.",
    }


def render_safe_harbour(
    out_dir: Path,
    prompt: str,
    texts: dict[str, str],
    *,
    locales: tuple[str, ...] = ("zh-CN", "en"),
) -> list[RenderedPrompt]:
    """``OUT/<lang>/<prompt>.wav`` per locale, each in both languages (the channel's first:
    the dialplan plays it before anyone knows the member's language)."""
    espeak = _tool("espeak-ng", "espeak-ng")
    sox = _tool("sox", "sox")
    rendered: list[RenderedPrompt] = []
    with tempfile.TemporaryDirectory(prefix="memberline-tts-") as tmp:
        for locale in locales:
            target = out_dir / asterisk_language(locale) / f"{prompt}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            segments = [(locale, texts[locale])] + [
                (other, texts[other]) for other in locales if other != locale
            ]
            seconds = _speak(espeak, sox, segments, target, Path(tmp))
            rendered.append(RenderedPrompt(locale, prompt, target, seconds))
    return rendered
