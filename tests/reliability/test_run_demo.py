"""`make run` (scripts/run_demo.py): both servers up, one final block that says what to open,
the sandbox key kept off command lines, private state files, and a quiet Ctrl-C."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shlex
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.live import csrf_token, free_port

REPO = Path(__file__).resolve().parents[2]
BLOCK_START = "=== CertDesk is running ==="
BLOCK_END = "Press Ctrl-C to stop CertDesk and the sandbox."


class Output:
    def __init__(self, proc: subprocess.Popen):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        self._thread.start()

    def _pump(self, proc):
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, needle: str, proc: subprocess.Popen, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            assert proc.poll() is None, f"run_demo.py exited:\n{self.text}"
            assert time.monotonic() < deadline, f"no {needle!r} within {timeout} s:\n{self.text}"
            time.sleep(0.2)

    def finish(self, timeout: float) -> None:
        self._thread.join(timeout)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat_line = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat_line.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _gone(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def _demo_env(tmp_path):
    """(port, sandbox port, instance folder, environment) for a `make run` of its own: free
    ports, an instance under ``tmp_path``, and none of the variables that would change it."""
    port, sandbox_port = free_port(), free_port()
    instance = tmp_path / "instance"
    env = dict(
        os.environ,
        PORT=str(port),
        SANDBOX_PORT=str(sandbox_port),
        CERTDESK_INSTANCE=str(instance),
        PYTHONUNBUFFERED="1",
    )
    for name in ("HOST", "SANDBOX", "SANDBOX_API_KEY"):
        env.pop(name, None)
    return port, sandbox_port, instance, env


def _start(env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "scripts/run_demo.py"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a process group of its own, as `make run` has in a terminal
    )


def _run_demo_module():
    spec = importlib.util.spec_from_file_location("run_demo", REPO / "scripts" / "run_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("state", [None, "moved from http://127.0.0.1:8443/ in the credential S"])
def test_the_blocks_api_key_file_can_be_copied_into_a_shell_from_a_folder_with_a_space(state):
    """A clone in a folder whose name holds a space: the block names the API key's file quoted,
    so that `cat` and the file's path copied from the block open it."""
    key_file = Path("/home/ann/My projects/certdesk/instance/sandbox/api-key")
    sandbox = {"url": "http://127.0.0.1:8445/enterprise/v2/", "user": "u", "key_file": key_file}
    lines = _run_demo_module()._sandbox_lines(state, sandbox)
    (line,) = [line for line in lines if "API Key" in line]
    shown = re.search(r"the line in (.+) \(", line).group(1)
    assert shlex.split(shown) == [str(key_file)]


def test_make_run_prints_one_final_block_keeps_the_key_private_and_stops_quietly(tmp_path):
    port, sandbox_port, instance, env = _demo_env(tmp_path)
    proc = _start(env)
    out = Output(proc)
    try:
        out.wait_for(BLOCK_END, proc, timeout=180)
        text = out.text
        block = text[text.index(BLOCK_START) :]

        # The block comes last, after everything both servers printed while starting.
        assert text.index("Entrust ECS sandbox:") < text.index(BLOCK_START)
        assert text.index("CertDesk is serving on") < text.index(BLOCK_START)
        assert block.rstrip().endswith(BLOCK_END)
        # One line says how to stop, the block's: not also the sandbox's own.
        assert "Press Ctrl+C" not in text and text.count("Press Ctrl-C") == 1

        url = f"http://127.0.0.1:{port}/"
        assert f"CertDesk:  {url}" in block
        link = re.search(r"(http://\S+/setup\?token=\S+)", block).group(1)
        assert link.startswith(url + "setup?token=")
        assert text.count("/setup?token=") == 1  # held back from the portal's lines, shown once
        assert requests.get(link, timeout=10).status_code == 200
        # Served on loopback, CertDesk answers no other name (a web page's DNS rebinding).
        rebound = {"Host": f"rebind.attacker.example:{port}"}
        assert requests.get(url + "login", headers=rebound, timeout=10).status_code == 400
        by_name = {"Host": f"localhost:{port}"}
        assert requests.get(url + "login", headers=by_name, timeout=10).status_code == 200

        key_file = instance / "sandbox" / "api-key"
        key = key_file.read_text().strip()
        base = f"http://127.0.0.1:{sandbox_port}/enterprise/v2/"
        # A first start: the empty Credentials tab offers the sandbox in one click.
        assert "click\n'Add the sandbox credential'" in block
        assert "linked as the credential" not in block
        assert re.search(r"Credential Name\s+Entrust sandbox", block)
        assert re.search(r"User Name\s+certdesk-demo", block)
        # The key is named by its file, never printed (such output ends up in logs).
        assert re.search(rf"API Key\s+the line in {re.escape(str(key_file))} ", block)
        assert key not in text
        assert re.search(rf"Base URL\s+{re.escape(base)}$", block, re.M)
        for _ in range(3):
            got = requests.get(
                base + "application/version", auth=("certdesk-demo", key), timeout=10
            )
            assert got.status_code == 200

        # Neither child has the key on its command line (`ps` shows it to every user).
        children = _children(proc.pid)
        commands = {pid: _cmdline(pid) for pid in children}
        assert any(" sandbox " in c for c in commands.values()), commands
        assert any(" serve " in c for c in commands.values()), commands
        for command in [*commands.values(), _cmdline(proc.pid)]:
            assert key not in command

        # The instance folder is made owner-only, so CertDesk's first start has nothing to close.
        assert _mode(instance) == 0o700
        assert "readable by other users" not in text, text
        # The sandbox's state is readable by its owner only.
        folder = instance / "sandbox"
        assert _mode(folder) == 0o700
        assert _mode(key_file) == 0o600
        state_files = [folder / n for n in ("state.db", "state.db-wal", "state.db-shm")]
        assert state_files[0].exists()
        for path in state_files:
            if path.exists():
                assert _mode(path) == 0o600, path

        # The create-admin hint works from where `make run` was started (the repository).
        hint = re.search(r"\(or run: (.+ create-admin USERNAME)\)", block).group(1)
        assert hint.startswith(f"CERTDESK_INSTANCE={shlex.quote(str(instance))} ")
        if (Path(sys.executable).parent / "certdesk").is_file():
            made = subprocess.run(
                ["bash", "-c", hint.replace("USERNAME", "hintadmin")],
                cwd=REPO,
                env=dict(os.environ, CERTDESK_ADMIN_PASSWORD="hint admin password"),
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert made.returncode == 0, made.stderr
            assert "Administrator hintadmin created." in made.stdout

        time.sleep(1)  # let any request log line arrive
        assert not re.search(r'"(GET|POST) /', out.text), out.text  # no per-request logging

        # Ctrl-C at the terminal: SIGINT to the whole process group.
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        deadline = time.monotonic() + 10
        while not all(_gone(pid) for pid in children):
            assert time.monotonic() < deadline, "a child outlived run_demo.py"
            time.sleep(0.1)
        out.finish(10)
        after = out.text.split(BLOCK_END, 1)[1]
        assert "Traceback" not in out.text, out.text
        assert "KeyboardInterrupt" not in out.text
        assert "stopped (exit code" not in out.text
        assert after.strip() == "", after  # nothing printed on the way out
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _admin_with_the_sandbox(url: str, output: str) -> requests.Session:
    """A session of the first administrator, made through the setup link in ``output`` (what
    `make run` printed), who then clicked "Add the sandbox credential"."""
    link = re.search(r"(http://\S+/setup\?token=\S+)", output).group(1)
    http = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', http.get(link).text).group(1)
    setup = {"token": link.split("token=")[1], "csrf_token": token, "username": "demo"}
    setup.update(password="a long enough password", password2="a long enough password")
    assert http.post(url + "/setup", data=setup, timeout=30).ok
    http.headers["X-CSRFToken"] = csrf_token(http, url + "/entrust/manage/")
    assert http.post(url + "/entrust/manage/credentials/sandbox", timeout=30).ok
    return http


def _linked_then_stopped(env: dict, url: str) -> None:
    """A first `make run`: the first administrator adds the sandbox credential, then Ctrl-C."""
    proc = _start(env)
    try:
        out = Output(proc)
        out.wait_for(BLOCK_END, proc, timeout=180)
        _admin_with_the_sandbox(url, out.text)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_a_restart_with_the_sandbox_credential_linked_says_so_instead_of_adding_it(tmp_path):
    """Once the sandbox is a credential, the next `make run` says so and points at the orders;
    it no longer tells to click "Add the sandbox credential", which the page no longer offers."""
    port, sandbox_port, instance, env = _demo_env(tmp_path)
    url = f"http://127.0.0.1:{port}"
    _linked_then_stopped(env, url)
    proc = _start(env)
    try:
        out = Output(proc)
        out.wait_for(BLOCK_END, proc, timeout=180)
        block = out.text[out.text.index(BLOCK_START) :]
        assert "Sign in with your CertDesk account." in block
        assert "linked as the credential 'Entrust sandbox'" in block
        assert "open SSL > Entrust for its orders" in block
        assert "Add the sandbox credential" not in block
        assert "Add Credential" not in block
        assert "Demo sandbox:" not in out.text  # the portal's line is held back, as the link
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_ctrl_c_during_an_import_pauses_it_and_stops_both_in_time(tmp_path):
    """Ctrl-C while the sandbox's orders come in: CertDesk stops first, its import paused while
    the sandbox still answers, then the sandbox; nothing is killed."""
    port, sandbox_port, instance, env = _demo_env(tmp_path)
    proc = _start(env)
    out = Output(proc)
    try:
        out.wait_for(BLOCK_END, proc, timeout=180)
        url = f"http://127.0.0.1:{port}"
        http = _admin_with_the_sandbox(url, out.text)
        started = http.post(url + "/entrust/import", data={"credential_id": 1}, timeout=30)
        assert started.ok, started.text
        out.wait_for("ECS GET /certificates/", proc, timeout=120)  # its certificates come in
        time.sleep(3)

        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        out.finish(10)
        assert "did not stop" not in out.text, out.text
        assert "Traceback" not in out.text, out.text
        with contextlib.closing(sqlite3.connect(instance / "certdesk.db")) as conn:
            state = conn.execute("select state, runner from job where kind = 'orders.import'")
            assert state.fetchall() == [("queued", "")]  # paused, for the next start
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_a_restart_on_another_sandbox_port_says_to_change_the_credential_not_add_one(tmp_path):
    """`SANDBOX_PORT=... make run` after the sandbox credential was added: the block names that
    credential and its old address, and says to give it the new Base URL and the API key again
    (adding a credential of the same name, as it said before, was refused); doing so links it."""
    port, sandbox_port, instance, env = _demo_env(tmp_path)
    url = f"http://127.0.0.1:{port}"
    _linked_then_stopped(env, url)
    env["SANDBOX_PORT"] = str(free_port())
    proc = _start(env)
    try:
        out = Output(proc)
        out.wait_for(BLOCK_END, proc, timeout=180)
        block = out.text[out.text.index(BLOCK_START) :]
        before = f"http://127.0.0.1:{sandbox_port}/enterprise/v2/"
        now = f"http://127.0.0.1:{env['SANDBOX_PORT']}/enterprise/v2/"
        words = " ".join(block.split())
        assert f"the credential 'Entrust sandbox' has ({before})" in words
        assert "click 'Entrust sandbox'" in words
        assert re.search(rf"Base URL\s+{re.escape(now)}$", block, re.M)
        key_file = instance / "sandbox" / "api-key"
        assert re.search(rf"API Key\s+the line in {re.escape(str(key_file))} ", block)
        assert "Add Credential" not in block and "Credential Name" not in block

        # As the block says: the credential gets the new address and the key again.
        http = requests.Session()
        page = http.get(url + "/login", timeout=30).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        login = {"csrf_token": token, "username": "demo", "password": "a long enough password"}
        assert http.post(url + "/login", data=login, timeout=30).ok
        edit = url + "/entrust/manage/credentials/1"
        form = {
            "csrf_token": csrf_token(http, edit),
            "name": "Entrust sandbox",
            "api_user": "certdesk-demo",
            "api_key": key_file.read_text().strip(),
            "base_url": now,
            "is_admin": "1",
        }
        saved = http.post(edit, data=form, timeout=30)
        assert "Credential Entrust sandbox saved." in saved.text, saved.text
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0

        proc = _start(env)
        out = Output(proc)
        out.wait_for(BLOCK_END, proc, timeout=180)
        assert "linked as the credential 'Entrust sandbox'" in out.text
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_a_port_in_use_stops_make_run_before_it_says_it_is_running(tmp_path):
    """Another server on PORT answers /healthz: it was taken for CertDesk, and the block sent
    the user to it while the real CertDesk failed to start. A port in use is refused first,
    naming the setting to change; a SANDBOX_PORT in use likewise."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Answers(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    other = HTTPServer(("127.0.0.1", 0), Answers)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        port = other.server_port
        for setting in ("PORT", "SANDBOX_PORT"):
            _p, _s, _instance, env = _demo_env(tmp_path / setting)
            env[setting] = str(port)
            if setting == "PORT":
                env["SANDBOX"] = "0"
            proc = _start(env)
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == 1, out
            assert BLOCK_START not in out and "CertDesk is serving on" not in out
            assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in out
            assert f"{setting}={port + 10} make run" in out
    finally:
        other.shutdown()
        other.server_close()
