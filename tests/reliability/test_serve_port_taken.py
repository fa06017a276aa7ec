"""`certdesk serve` on a port another program holds says so in one line, and nothing else: no
traceback, no "serving on" or setup link for a server that never served."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_is_named_without_a_traceback(tmp_path, workers):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ran = subprocess.run(
            [sys.executable, "-m", "webapp", "serve", "--port", str(port), "--workers", workers],
            env=dict(os.environ, CERTDESK_INSTANCE=str(tmp_path / "instance")),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert ran.returncode == 1, ran
    assert "Traceback" not in ran.stderr, ran.stderr
    assert (
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use; stop what uses it, "
        "or choose another --port"
    ) in ran.stderr
    assert "serving on" not in ran.stdout.lower(), ran.stdout
    assert "setup?token=" not in ran.stdout, ran.stdout
