"""The `sandbox` click command and state kept in a SQLite file across restarts."""

from __future__ import annotations

import subprocess
import sys
import time

import requests
from click.testing import CliRunner

from entrust_sandbox.app import Sandbox
from entrust_sandbox.cli import sandbox
from entrust_sandbox.seed import seed_account


def test_command_options():
    names = {p.name for p in sandbox.params}
    assert names >= {"host", "port", "plain_http", "seed_count", "seed_value", "state_path"}
    assert {"api_user", "api_key"} <= names
    result = CliRunner().invoke(sandbox, ["--help"])
    for flag in ("--host", "--port", "--http", "--seed", "--seed-value", "--state", "--api-user"):
        assert flag in result.output
    assert CliRunner().invoke(sandbox, ["--api-user", "only"]).exit_code != 0


def _start(args):
    proc = subprocess.Popen(
        [sys.executable, "-m", "entrust_sandbox.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "Press Ctrl+C" in line:
            return proc, "".join(lines)
    proc.kill()
    raise AssertionError("".join(lines))


def _value(output, label):
    return next(line.split(label, 1)[1].strip() for line in output.splitlines() if label in line)


def test_cli_serves_and_prints_credentials(tmp_path):
    state = str(tmp_path / "sandbox.db")
    proc, out = _start(["--http", "--port", "0", "--seed", "30", "--state", state])
    try:
        base = _value(out, "Entrust ECS sandbox:")
        user, key = _value(out, "API user:"), _value(out, "API key:")
        assert base.startswith("http://127.0.0.1:") and base.endswith("/enterprise/v2/")
        body = requests.get(base + "certificates", auth=(user, key), timeout=10).json()
        assert body["summary"]["total"] > 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # The default key is kept in the state file, so a restart prints the same credentials.
    proc, again = _start(["--http", "--port", "0", "--state", state])
    try:
        assert _value(again, "API key:") == key
        base = _value(again, "Entrust ECS sandbox:")
        body = requests.get(base + "certificates", auth=(user, key), timeout=10).json()
        assert body["summary"]["total"] > 0  # the seeded data survived the restart
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_https_with_given_user(tmp_path):
    state = str(tmp_path / "s.db")
    proc, out = _start(["--port", "0", "--api-user", "u1", "--api-key", "k1", "--state", state])
    try:
        base = _value(out, "Entrust ECS sandbox:")
        ca = _value(out, "Root CA (verify with it):")
        assert base.startswith("https://")
        response = requests.get(base + "application/version", auth=("u1", "k1"), verify=ca)
        assert response.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_state_file_keeps_ca_certificates_and_clock(tmp_path):
    path = str(tmp_path / "state.db")
    first = Sandbox(path)
    seed_account(first.store, 50, 9)
    first.store.advance_clock(3)
    root = first.store.ca.root_pem
    first.store.close()
    second = Sandbox(path)
    assert second.store.ca.root_pem == root
    assert second.store.clock.offset_days == 3
    count = second.store.query_one("SELECT COUNT(*) AS n FROM certificates")["n"]
    assert count == 50
    second.store.close()
