"""``memberline prompts render --sounds-dir DIR``: every prompt the shipped dialplan plays.

One command installs what ``docs/asterisk/extensions.conf`` and the FastAGI scripts play:
the campaign safe-harbour message (``calling.safe_harbour_prompt``, naming
``calling.business_name`` and ``calling.callback_number``), every built-in survey's prompts
and the self-service hotline's. espeak-ng, 8 kHz mono 16-bit WAV, resampled with sox, in
Asterisk's ``sounds/<lang>/`` layout: point ``--sounds-dir`` at ``/var/lib/asterisk/sounds``.
(``memberline surveys prompts FILE --out DIR`` renders one survey of your own.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from memberline.cli import add_command
from memberline.config import Config


def _render(args: argparse.Namespace, cfg: Config) -> int:
    from surveys.definitions import builtin_names, load_builtin
    from surveys.prompts import (
        PromptToolMissing,
        render_hotline_prompts,
        render_prompts,
        render_safe_harbour,
        safe_harbour_texts,
    )

    out = Path(args.sounds_dir)
    c = cfg.calling
    done = []
    try:
        done += render_safe_harbour(
            out,
            c.safe_harbour_prompt,
            safe_harbour_texts(c.business_name, c.business_name_zh, c.callback_number),
        )
        for name in builtin_names():
            done += render_prompts(load_builtin(name), out)
        done += render_hotline_prompts(out)
    except PromptToolMissing as exc:
        print(f"memberline: {exc}", file=sys.stderr)
        return 3
    longest = max(done, key=lambda p: p.seconds)
    print(
        f"{len(done)} prompts written (8 kHz mono 16-bit WAV) under {out}; "
        f"safe harbour {done[0].seconds:.1f} s, longest {longest.audio} {longest.seconds:.1f} s"
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(sub, "prompts", None, "the prompts the shipped dialplan plays")
    psub = parser.add_subparsers(dest="prompts_command", metavar="ACTION")
    psub.required = True
    r = add_command(
        psub,
        "render",
        _render,
        "render the safe-harbour, survey and hotline prompts to 8 kHz WAV with espeak-ng",
    )
    r.add_argument(
        "--sounds-dir",
        required=True,
        metavar="DIR",
        help="Asterisk's sounds folder (one subfolder per language), e.g. /var/lib/asterisk/sounds",
    )
