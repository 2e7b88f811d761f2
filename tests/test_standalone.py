"""The repository stands alone: no source, test, doc or script names a path outside it.

A fresh clone on a machine without the lab's shared folder must run the whole suite: the
recorded traces are fixtures in ``tests/fixtures/ami-traces/``. This test reads every text
file of the repository (not the fixtures themselves, which are recorded data) and fails on
an absolute path into a machine-specific place (``/work``, ``/home``, ``/opt``, ...) or on a
relative path climbing out to the shared folder. ``/tmp`` and the operating system's own
interfaces (``/proc``, ``/dev``) are fine; so are the few system paths in ALLOWED, each with
its reason.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fixtures import AMI_TRACES

REPO = Path(__file__).resolve().parents[1]

SKIP_DIRS = {
    ".git",
    ".venv",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    "build",
    "dist",
    "reports",
    "node_modules",
}
TEXT_SUFFIXES = {
    ".py",
    ".pyi",
    ".md",
    ".toml",
    ".cfg",
    ".ini",
    ".txt",
    ".tcss",
    ".j2",
    ".mako",
    ".sh",
    ".conf",
    ".yaml",
    ".yml",
    ".json",
    ".html",
    ".css",
}

# Top-level directories where a path names something of one machine (or of a lab).
_ROOTS = (
    "work|home|root|Users|mnt|media|srv|opt|data|shared|var|etc|usr|nix|Volumes|private|scratch"
)
ABSOLUTE = re.compile(rf"(?<![\w.~:/-])/(?:{_ROOTS})(?:/[^\s\"'`)\]>,;]*)?(?=[\s\"'`)\]>,;:]|$)")
CLIMB_OUT = re.compile(r"\.\./+" + "shared")

ALLOWED = (
    "/usr/bin/env",  # shebangs
    "/usr/lib/postgresql/",  # .ci/pg-*: where Debian installs the PostgreSQL server binaries
    "/var/lib/asterisk/",  # Asterisk's own sound directory on the PBX (deployment docs)
    "/etc/asterisk/",  # Asterisk's configuration directory on the PBX (deployment docs)
)


def _files() -> list[Path]:
    out = []
    for path in REPO.rglob("*"):
        rel = path.relative_to(REPO)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts[:-1]):
            continue
        if path.is_relative_to(AMI_TRACES) or not path.is_file() or path.name == ".git":
            continue
        if path == Path(__file__).resolve():  # its examples name such paths on purpose
            continue
        if path.suffix in TEXT_SUFFIXES or rel.parts[0] == ".ci" or path.name.startswith("."):
            out.append(path)
    return out


def offending(text: str) -> list[str]:
    """The outside-the-repository paths named in ``text``."""
    found = [m.group(0) for m in CLIMB_OUT.finditer(text)]
    for m in ABSOLUTE.finditer(text):
        if not any(m.group(0).startswith(a) or m.group(0) == a.rstrip("/") for a in ALLOWED):
            found.append(m.group(0))
    return found


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ('TRACES = Path("/work/shared/ami-traces")', True),
        ("default /home/me/bench-1m.db", True),
        ("see ``../" + "shared/NOTES.md``", True),
        ("x = Path('/opt/data')", True),
        ('keep = Path("/tmp/memberline-report.png")', False),
        ('open(f"/proc/{pid}/status")', False),
        ("#!/usr/bin/env bash", False),
        ('url = "http://127.0.0.1:8080/work/queue"', False),
        ("tests/fixtures/ami-traces/rate-200.txt", False),
        ('sounds in "/var/lib/asterisk/sounds"', False),
    ],
)
def test_detector(text: str, bad: bool) -> None:
    assert bool(offending(text)) is bad, offending(text)


def test_no_file_names_a_path_outside_the_repository() -> None:
    files = _files()
    assert len(files) > 100  # the walk found the repository
    bad = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if hits := offending(text):
            bad[str(path.relative_to(REPO))] = hits
    assert not bad, f"paths outside the repository: {bad}"


def test_recorded_traces_are_in_the_repository() -> None:
    names = {p.name for p in AMI_TRACES.iterdir()}
    for needed in (
        "README.md",
        "rate-200.txt",
        "a-inbound-queue-call.txt",
        "a-inbound-queue-call.timeline.txt",
        "fastagi-survey.from-asterisk.raw",
        "h-originate-failed-ivr.txt",
        "sequences-2026-12.txt",
    ):
        assert needed in names
    # the CRLF line ends of the recorded bytes survive the checkout (.gitattributes: -text)
    assert b"\r\n\r\n" in (AMI_TRACES / "rate-200.txt").read_bytes()[:4096]
