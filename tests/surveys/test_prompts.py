"""Prompt rendering with espeak-ng + sox to 8 kHz mono 16-bit WAV, Asterisk's layout."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import pytest

from memberline.cli import main
from surveys.definitions import load_builtin
from surveys.prompts import ESPEAK_VOICES, PromptToolMissing, render_prompts

TOOLS = shutil.which("espeak-ng") is not None and shutil.which("sox") is not None
needs_tts = pytest.mark.skipif(
    not TOOLS,
    reason="espeak-ng/sox not installed (apt-get install -y espeak-ng sox); CI installs them",
)


@pytest.mark.e2e
@needs_tts
def test_renders_every_prompt_as_asterisk_plays_them(tmp_path: Path) -> None:
    survey = load_builtin("satisfaction")
    done = render_prompts(survey, tmp_path, locales=("zh-TW",))
    names = {p.audio for p in survey.prompts()}
    assert {p.name for p in (tmp_path / "zh_TW").iterdir()} == {f"{n}.wav" for n in names}
    assert len(done) == len(names)
    for p in done:
        with wave.open(str(p.path)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
            assert w.getnframes() > 8000 * 0.5  # real speech, not an empty file
    assert [d.name for d in tmp_path.iterdir()] == ["zh_TW"]


@needs_tts
@pytest.mark.parametrize("locale", ["zh-CN", "zh-TW"])
def test_mandarin_voice_does_not_fall_back_to_english(locale: str) -> None:
    """Plain ``cmn`` reads Chinese as English-spelled pinyin; the chosen voice must not."""
    text = load_builtin("satisfaction").closing.text_for(locale)
    out = subprocess.run(
        ["espeak-ng", "-q", "-x", "-v", ESPEAK_VOICES[locale], text],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert "(en)" not in out and out.strip()


def test_clear_error_when_espeak_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng on this PATH
    with pytest.raises(PromptToolMissing, match="apt-get install -y espeak-ng"):
        render_prompts(load_builtin("satisfaction"), tmp_path / "out")
    assert main(["surveys", "prompts", "satisfaction", "--out", str(tmp_path / "out")]) == 3
    assert "espeak-ng is not installed" in capsys.readouterr().err
