"""Coverage-guided fuzzing with atheris (not part of pytest; ``pip install atheris``).

    .venv/bin/python tests/reliability/atheris_fuzz.py ami -max_total_time=60
    .venv/bin/python tests/reliability/atheris_fuzz.py hubproto -max_total_time=60
    .venv/bin/python tests/reliability/atheris_fuzz.py args -max_total_time=60

Targets (all pure, no sockets):

* ``ami``: :class:`cti.ami.framing.Framer` fed the input in fuzzer-chosen chunks; the
  buffer must stay bounded and every message must have a kind and a name.
* ``hubproto``: :class:`cti.hubproto.framing.LineFramer` (what the hub runs on every
  console byte); any exception is a crash of the console connection.
* ``args``: fuzzer-built arguments (the command's own names, wrong types, unknown keys)
  through ``validate_args`` of a fuzzer-chosen command; only ``ProtocolError`` may come out.

Extra arguments go to libFuzzer (``-max_total_time``, ``-runs``, a corpus directory...).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from cti.ami.framing import Framer
    from cti.hubproto.framing import LineFramer
    from cti.hubproto.messages import COMMANDS, ProtocolError, validate_args

_NAMES = sorted(COMMANDS)


def fuzz_ami(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    framer = Framer(max_frame=1024, expect_banner=fdp.ConsumeBool())
    while fdp.remaining_bytes():
        chunk = fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 300))
        for msg in framer.feed(chunk):
            assert msg.kind and msg.name is not None
        assert framer.buffered <= 1024 + 3, framer.buffered


def fuzz_hubproto(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    framer = LineFramer(2048)
    while fdp.remaining_bytes():
        framer.feed(fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 500)))
        assert framer.buffered <= 2048


def _value(fdp: atheris.FuzzedDataProvider) -> object:
    kind = fdp.ConsumeIntInRange(0, 6)
    if kind == 0:
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 300))
    if kind == 1:
        return fdp.ConsumeInt(8)
    if kind == 2:
        return fdp.ConsumeRegularFloat()
    if kind == 3:
        return fdp.ConsumeBool()
    if kind == 4:
        return None
    if kind == 5:
        return [fdp.ConsumeInt(2) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    return {"k": fdp.ConsumeUnicodeNoSurrogates(8)}


def fuzz_args(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    spec = COMMANDS[_NAMES[fdp.ConsumeIntInRange(0, len(_NAMES) - 1)]]
    names = [f.name for f in spec.args] + ["bogus"]
    args: object
    if fdp.ConsumeIntInRange(0, 9) == 0:
        args = _value(fdp)  # not even an object
    else:
        args = {names[fdp.ConsumeIntInRange(0, len(names) - 1)]: _value(fdp)
                for _ in range(fdp.ConsumeIntInRange(0, len(names)))}  # fmt: skip
    try:
        validate_args(spec, args)
    except ProtocolError:
        pass


TARGETS = {"ami": fuzz_ami, "hubproto": fuzz_hubproto, "args": fuzz_args}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(TARGETS)}}} [libFuzzer options]")
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
