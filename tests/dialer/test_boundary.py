"""The dialer's narrow door to the hub: it imports no ``cti.hub`` module.

It reaches agents and calls through :class:`dialer.agentfirst.AgentDesk` and
:class:`dialer.agentfirst.DeskAgent`, which the hub implements. This test reads every module
of the ``dialer`` package (imports inside functions and ``TYPE_CHECKING`` blocks included).
"""

from __future__ import annotations

import ast
from pathlib import Path

import dialer

ROOT = Path(dialer.__file__).parent


def hub_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found += [n for n in names if n == "cti.hub" or n.startswith("cti.hub.")]
    return found


def test_the_dialer_imports_no_hub_module() -> None:
    files = sorted(ROOT.rglob("*.py"))
    assert len(files) > 20  # the whole package was read
    offenders = {str(p.relative_to(ROOT)): hub_imports(p) for p in files}
    assert {p: n for p, n in offenders.items() if n} == {}


def test_the_check_sees_hub_imports(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text(
        "from cti.hub.sessions import AgentInfo\nimport cti.hub\nfrom cti import hub\n"
        "from cti.hubproto.messages import ErrorCode\n"
    )
    assert hub_imports(sample) == [
        "cti.hub.sessions",
        "cti.hub.sessions.AgentInfo",
        "cti.hub",
        "cti.hub",
    ]
