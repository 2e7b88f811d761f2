"""Every benchmark stamps its JSON with the machine's load and its number of runs."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import memberline.benches
from memberline.benches._common import LoadStamp, emit

BENCHES = sorted(
    p for p in Path(memberline.benches.__file__).parent.glob("*.py") if not p.name.startswith("_")
)


def test_emit_stamps_load_and_runs(capsys: pytest.CaptureFixture[str]) -> None:
    stamp = LoadStamp()
    emit({"figure": 1.5}, stamp, runs=3)
    out = json.loads(capsys.readouterr().out)
    assert out["figure"] == 1.5 and out["runs"] == 3
    assert len(out["load_avg_start"]) == 3 and len(out["load_avg_end"]) == 3
    assert out["cpu_count"] >= 1


@pytest.mark.parametrize("path", BENCHES, ids=lambda p: p.stem)
def test_every_benchmark_prints_through_emit(path: Path) -> None:
    """Its output goes through ``emit`` (load average at start and end, runs), never a bare
    ``print(json.dumps(...))``; and its docstring says what it times."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    calls = {
        n.func.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    assert "emit" in calls and "LoadStamp" in calls
    dumps = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr in ("dumps", "dump")
        and any(isinstance(a, ast.Name) and a.id in ("result", "out") for a in n.args)
    ]
    assert not dumps
    doc = ast.get_docstring(tree)
    assert doc and len(doc) > 200
