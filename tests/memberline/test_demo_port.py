"""The demo's hub port: 7070 (or --hub-port) even in TIME_WAIT, an error when really taken,
never a silent move to another port."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from memberline.cli import OperatorError
from memberline.demo_run import claim_port


def _time_wait_port() -> int:
    """A port whose last connection was closed by the server side first (TIME_WAIT there)."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = int(server.getsockname()[1])
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    conn.close()  # the server side closes first: its address goes to TIME_WAIT
    server.close()
    client.recv(1)
    client.close()
    return port


def test_a_port_in_time_wait_is_reused() -> None:
    port = _time_wait_port()
    with socket.socket() as plain:  # what the old demo did: no SO_REUSEADDR
        with pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))
    assert claim_port(port) == port


def test_a_taken_port_is_an_error_not_a_move(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(OperatorError, match=f"port {port} on 127.0.0.1 is in use"):
            claim_port(port)
        out = subprocess.run(
            [sys.executable, "-m", "memberline", "demo", "--headless", "--hub-port", str(port),
             "--demo-db", str(tmp_path / "demo.db")],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--hub-port" in lines[0], out.stderr
    assert not (tmp_path / "demo.db").exists()  # nothing seeded before the port check
    assert claim_port(0) == 0
