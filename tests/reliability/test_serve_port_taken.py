"""`certdesk serve` on a port another program holds, or an address or option it cannot serve with,
says so in one line, and nothing else: no traceback, no "serving on" or setup link for a server
that never served."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
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


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_leaves_the_database_unmigrated(tmp_path, workers):
    """An upgraded CertDesk started while the old one still serves on its port is refused before
    it migrates: the old one goes on with the schema it knows."""
    from alembic.script import ScriptDirectory

    from webapp import paths

    older = ScriptDirectory(str(paths.MIGRATIONS_DIR)).get_current_head()
    older = ScriptDirectory(str(paths.MIGRATIONS_DIR)).get_revision(older).down_revision
    env = dict(os.environ, CERTDESK_INSTANCE=str(tmp_path / "instance"))
    made = subprocess.run(
        [sys.executable, "-m", "webapp", "db", "upgrade", older],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ran = subprocess.run(
            [sys.executable, "-m", "webapp", "serve", "--port", str(port), "--workers", workers],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert ran.returncode == 1, ran
    assert "Address already in use" in ran.stderr, ran.stderr
    assert "Running upgrade" not in ran.stderr, ran.stderr
    with sqlite3.connect(tmp_path / "instance" / "certdesk.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(older,)]


@pytest.mark.parametrize(
    "args, said",
    [
        (["--host", "no-such-host.invalid"], "Error: cannot listen on no-such-host.invalid:8080: "),
        (["--port", "99999"], "Invalid value for '--port': 99999 is not in the range 1<=x<=65535"),
        (["--threads", "0"], "Invalid value for '--threads': 0 is not in the range 1<=x<=256"),
    ],
)
def test_an_address_or_option_it_cannot_serve_with_is_refused_in_a_line(tmp_path, args, said):
    """(A port above 65535 was served on another port, the one it wraps around to, while CertDesk
    printed the one asked for.)"""
    ran = subprocess.run(
        [sys.executable, "-m", "webapp", "serve", *args],
        env=dict(os.environ, CERTDESK_INSTANCE=str(tmp_path / "instance")),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode in (1, 2), ran
    assert "Traceback" not in ran.stderr, ran.stderr
    assert said in ran.stderr, ran.stderr
    assert "serving on" not in ran.stdout.lower(), ran.stdout


def _serve(tmp_path, args: list[str], **env) -> subprocess.Popen:
    """`certdesk serve` with ``args`` on an instance of its own (no scheduler), in a process
    group of its own, its output in one stream."""
    return subprocess.Popen(
        [sys.executable, "-m", "webapp", "serve", *args],
        env=dict(
            os.environ,
            CERTDESK_INSTANCE=str(tmp_path / "instance"),
            CERTDESK_SCHEDULER_ENABLED="false",
            PYTHONUNBUFFERED="1",
            **env,
        ),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _lines_until(proc: subprocess.Popen, marker: str) -> list[str]:
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            break
    return seen


def test_the_setup_link_names_a_host_certdesk_answers_to(tmp_path):
    """With CERTDESK_TRUSTED_HOSTS leaving out the address served on, the printed links use the
    first name it lists: the loopback address would be answered 400."""
    import re

    import requests

    from tests.live import free_port

    port = free_port()
    proc = _serve(
        tmp_path,
        ["--port", str(port)],
        CERTDESK_TRUSTED_HOSTS='["certdesk.example.test", ".example.test"]',
    )
    try:
        seen = _lines_until(proc, "setup?token=")
        link = re.search(r"http://(\S+?)/setup\?token=(\S+)", "".join(seen))
        assert link, "".join(seen)
        assert link.group(1) == f"certdesk.example.test:{port}", "".join(seen)
        assert f"serving on http://certdesk.example.test:{port}/" in "".join(seen)
        url = f"http://127.0.0.1:{port}/setup?token={link.group(2)}"
        named = requests.get(url, headers={"Host": link.group(1)}, timeout=10)
        assert named.status_code == 200 and "administrator" in named.text.lower()
        assert requests.get(url, timeout=10).status_code == 400  # the loopback name is refused
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_on_every_ipv6_address_prints_a_link_that_answers(tmp_path, workers):
    """`serve --host ::` prints the IPv6 loopback (127.0.0.1 is no address it serves), which
    answers, with one worker or several: both take IPv6 only."""
    import requests

    from tests.live import free_port, wait_healthy

    port = free_port()
    proc = _serve(tmp_path, ["--host", "::", "--port", str(port), "--workers", workers])
    try:
        seen = _lines_until(proc, "serving on")
        assert f"serving on http://[::1]:{port}/" in "".join(seen), "".join(seen)
        wait_healthy(f"http://[::1]:{port}", proc, 30, lambda: "".join(seen))
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
