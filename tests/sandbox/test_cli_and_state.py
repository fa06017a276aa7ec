"""The `sandbox` click command and state kept in a SQLite file across restarts."""

from __future__ import annotations

import os
import socket
import stat
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


def test_help_shows_request_logging_and_the_key_options():
    result = CliRunner().invoke(sandbox, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    for text in ("--log-requests", "--api-key-file", "SANDBOX_API_KEY"):
        assert text in result.output
    both = ["--api-user", "u", "--api-key", "k", "--api-key-file", __file__]
    assert CliRunner().invoke(sandbox, both).exit_code != 0


def test_a_state_file_that_cannot_be_opened_is_named_without_a_traceback(tmp_path):
    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("not an SQLite file, but long enough to be read as one\n" * 20)
    for state in (tmp_path / "no-such-folder" / "state.db", not_a_database):
        result = CliRunner().invoke(sandbox, ["--http", "--port", "0", "--state", str(state)])
        assert result.exit_code == 1, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert f"Error: cannot open the state file {state}: " in result.output


def _start(args, stderr=subprocess.DEVNULL, env=None):
    proc = subprocess.Popen(
        [sys.executable, "-m", "entrust_sandbox.cli", *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=env,
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


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_key_from_a_file_quiet_by_default_private_files_and_a_quiet_sigterm(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("file-key-1\n")
    state = str(tmp_path / "s.db")
    args = ["--port", "0", "--api-user", "u1", "--api-key-file", str(key_file), "--state", state]
    env = dict(os.environ, SANDBOX_API_KEY="not-this-one")  # the file wins over the variable
    proc, out = _start(args, stderr=subprocess.STDOUT, env=env)
    try:
        assert "file-key-1" not in out  # not echoed either: it names the file instead
        assert f"API key:  (from {key_file})" in out
        base = _value(out, "Entrust ECS sandbox:")
        ca = _value(out, "Root CA (verify with it):")
        for _ in range(3):
            response = requests.get(
                base + "application/version", auth=("u1", "file-key-1"), verify=ca
            )
            assert response.status_code == 200
        # Owner-only: the database, its WAL files and the CA beside it.
        for path in (state, state + "-wal", state + "-shm", state + ".ca.pem"):
            assert _mode(path) == 0o600, path
    finally:
        proc.terminate()  # SIGTERM stops it like Ctrl-C does
        rest, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "Traceback" not in rest
    assert "GET /enterprise" not in rest  # no request log by default


def test_key_from_the_environment_and_requests_logged_on_request(tmp_path):
    env = dict(os.environ, SANDBOX_API_KEY="env-key-2")
    args = ["--http", "--port", "0", "--api-user", "u2", "--log-requests"]
    proc, out = _start(args, stderr=subprocess.STDOUT, env=env)
    try:
        assert "env-key-2" not in out
        assert "API key:  (from SANDBOX_API_KEY)" in out
        base = _value(out, "Entrust ECS sandbox:")
        response = requests.get(base + "application/version", auth=("u2", "env-key-2"))
        assert response.status_code == 200
    finally:
        proc.terminate()
        rest, _ = proc.communicate(timeout=20)
    assert '"GET /enterprise/v2/application/version HTTP/1.1" 200' in rest


def test_an_api_user_that_must_present_a_client_certificate(tmp_path):
    """--client-cert makes the API user one of mutual TLS, as Ansible's modules and Entrust's Go
    client need: without the certificate written to the file the call is refused, with it the
    call goes through; the file is its owner's alone. Plain HTTP cannot carry one."""
    cert_file = tmp_path / "client.pem"
    args = ["--port", "0", "--api-user", "u1", "--api-key", "k1", "--client-cert", str(cert_file)]
    proc, out = _start(args)
    try:
        base = _value(out, "Entrust ECS sandbox:")
        ca = _value(out, "Root CA (verify with it):")
        assert _value(out, "Client certificate and key (required):") == str(cert_file)
        assert _mode(cert_file) == 0o600
        text = cert_file.read_text()
        assert "BEGIN CERTIFICATE" in text and "PRIVATE KEY" in text
        url = base + "application/version"
        refused = requests.get(url, auth=("u1", "k1"), verify=ca, timeout=10)
        assert refused.status_code == 401
        assert "client certificate" in refused.json()["errors"][0]["message"]
        taken = requests.get(url, auth=("u1", "k1"), verify=ca, cert=str(cert_file), timeout=10)
        assert taken.status_code == 200, taken.text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    result = CliRunner().invoke(sandbox, ["--http", "--client-cert", str(tmp_path / "x.pem")])
    assert result.exit_code == 2 and "--client-cert needs HTTPS" in result.output
    assert not (tmp_path / "x.pem").exists()


def test_https_on_another_address_is_verified_there_and_after_a_restart(tmp_path):
    """`--host` goes into the server certificate, at each start, with or without a state file:
    a peer verifies the address it connects to with the printed root."""
    state = str(tmp_path / "s.db")
    for host in ("127.0.0.2", "127.0.0.3"):
        args = ["--host", host, "--port", "0", "--api-user", "u1", "--api-key", "k1"]
        proc, out = _start([*args, "--state", state])
        try:
            base = _value(out, "Entrust ECS sandbox:")
            assert base.startswith(f"https://{host}:")
            ca = _value(out, "Root CA (verify with it):")
            response = requests.get(base + "application/version", auth=("u1", "k1"), verify=ca)
            assert response.status_code == 200
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_a_port_out_of_range_and_a_negative_seed_count_are_refused_before_starting(tmp_path):
    """--port 99999 listened on 34463 (the port modulo 65536) and --seed -5 seeded nothing
    without a word; each is refused, naming the option and its range, and nothing starts."""
    state = tmp_path / "s.db"
    for args, message in (
        (["--port", "99999"], "Invalid value for '--port': 99999 is not in the range 0<=x<=65535"),
        (["--port", "-1"], "Invalid value for '--port': -1 is not in the range 0<=x<=65535"),
        (["--port", "0", "--seed", "-5"], "Invalid value for '--seed': -5 is not in the range"),
    ):
        try:
            done = subprocess.run(
                [sys.executable, "-m", "entrust_sandbox.cli", "--http", "--state", str(state)]
                + args,
                capture_output=True,
                text=True,
                timeout=20,
            )
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"{args} started the sandbox: {exc.stdout}") from None
        assert done.returncode == 2, done.stdout + done.stderr
        assert message in done.stderr
        assert "Traceback" not in done.stderr and "Press Ctrl+C" not in done.stdout
    assert not state.exists()


def test_a_wildcard_host_prints_an_address_a_client_can_use(tmp_path):
    """`--host 0.0.0.0` serves every address; the address printed is this machine's name (which
    the certificate names), not 0.0.0.0, which a client cannot connect to."""
    state = str(tmp_path / "s.db")
    proc, out = _start(["--http", "--host", "0.0.0.0", "--port", "0", "--state", state])  # noqa: S104
    try:
        base = _value(out, "Entrust ECS sandbox:")
        assert "0.0.0.0" not in base  # noqa: S104
        assert base.startswith(f"http://{socket.gethostname()}:")
        assert "Listening on every address" in out
        port = base.split(":")[2].split("/")[0]
        user, key = _value(out, "API user:"), _value(out, "API key:")
        local = f"http://127.0.0.1:{port}/enterprise/v2/certificates"
        assert requests.get(local, auth=(user, key), timeout=10).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
