"""`tests.live.wait_healthy`, the one wait for a server a test starts: it returns at the first 200
from /healthz, and fails with the last answer and the process's output when the process exits
first or the deadline passes (the only clue when a server does not start on a CI run)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.live import free_port, wait_healthy


def test_returns_at_the_first_200_then_says_what_it_got_when_there_is_none(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "healthz").write_text("ok")
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            cwd=served,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc, 60, log.read_text, name="http.server")
        (served / "healthz").unlink()
        with pytest.raises(AssertionError) as failed:
            wait_healthy(url, proc, 1, log.read_text, name="http.server")
        message = str(failed.value)
        assert "http.server did not start: no 200 from /healthz within 1 s" in message
        assert "(last: HTTP 404)" in message
        assert '"GET /healthz HTTP/1.1" 404' in message  # the server's own log
    finally:
        proc.kill()
        proc.wait(10)


def test_a_process_that_exits_fails_at_once_with_its_code_and_lines():
    proc = subprocess.Popen(
        [sys.executable, "-c", "print('cannot open the database'); raise SystemExit(3)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines = []

    def output():
        lines.extend(proc.stdout.read().splitlines())
        return lines

    with pytest.raises(AssertionError) as failed:
        wait_healthy(f"http://127.0.0.1:{free_port()}", proc, 600, output)
    assert "certdesk serve exited with code 3 before /healthz answered" in str(failed.value)
    assert "cannot open the database" in str(failed.value)
