"""`certdesk serve` for real: a LiveServer on a free loopback port, and a signed-in HTTP client;
`wait_healthy`, the wait for /healthz of any server a test starts itself (workers, gunicorn);
`wait_until`, the wait for what a server does in the background.

The Flask test client runs each request inside an app context of its own and reads a streamed
body before that context ends, which hides failures of streamed responses, app-context lifetimes
and threads. Whatever streams, polls or runs in the background is also tried through this harness
(browser tests drive it with Chromium; other tests with ``requests``).
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.helpers import PASSWORD

ROOT = Path(__file__).resolve().parents[1]


def run_certdesk(
    instance: Path, *command: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess:
    """`certdesk COMMAND` run to its end as a user would, on ``instance``: its output captured,
    with ``env`` (CERTDESK_* settings, say) over this process's environment; on SQLite unless
    ``env`` names a DATABASE_URL."""
    environ = dict(os.environ, CERTDESK_INSTANCE=str(instance))
    environ.pop("DATABASE_URL", None)
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "webapp", *command],
        env=environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    instance: Path
    process: subprocess.Popen
    lines: list[str] = field(default_factory=list)

    def wait_for_line(self, needle: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if needle in line:
                    return line
            time.sleep(0.05)
        raise AssertionError(f"server never printed {needle!r}; output: {self.lines}")

    @property
    def database(self) -> Path:
        return self.instance / "certdesk.db"


def start_server(instance: Path, extra_env: dict | None = None) -> LiveServer:
    """Run `certdesk serve` as a user would, on a free loopback port, until it answers."""
    port = free_port()
    env = dict(
        os.environ,
        CERTDESK_INSTANCE=str(instance),
        CERTDESK_SECRET_KEY="e2e-secret-of-at-least-32-characters",
        PYTHONUNBUFFERED="1",
        **(extra_env or {}),
    )
    marker = Path(instance) / "database_url"  # the instance's database is on PostgreSQL
    if marker.exists() and "DATABASE_URL" not in (extra_env or {}):
        env["DATABASE_URL"] = marker.read_text().strip()
    proc = subprocess.Popen(
        [sys.executable, "-m", "webapp", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = LiveServer(f"http://127.0.0.1:{port}", instance, proc)
    lines: queue.SimpleQueue = queue.SimpleQueue()

    def pump():
        for line in proc.stdout:
            server.lines.append(line.rstrip())
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        wait_healthy(server.url, proc, 30, lambda: list(server.lines), request_timeout=1)
    except AssertionError:
        proc.kill()
        raise
    return server


def wait_healthy(
    url: str,
    proc: subprocess.Popen,
    timeout: float,
    output: Callable[[], str | list[str]] = lambda: "",
    *,
    name: str = "certdesk serve",
    request_timeout: float = 2,
) -> None:
    """Wait until ``url + "/healthz"`` answers 200 while ``proc`` runs.

    Raises AssertionError with what ``output`` gives (the process's lines or log) and the last
    answer seen if the process exits first or no 200 came within ``timeout`` seconds. Stopping the
    process is the caller's part (a single process, or a process group with its workers).
    """
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        code = proc.poll()
        if code is not None:
            time.sleep(0.5)  # the output's last lines are still being read from the pipe
            raise AssertionError(
                f"{name} exited with code {code} before /healthz answered; "
                f"its output:\n{_text(output())}"
            )
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"{name} did not start: no 200 from /healthz within {timeout:g} s "
                f"(last: {last}); its output:\n{_text(output())}"
            )
        try:
            status = requests.get(url + "/healthz", timeout=request_timeout).status_code
        except requests.RequestException as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if status == 200:
                return
            last = f"HTTP {status}"
        time.sleep(0.1)


def _text(output: str | list[str]) -> str:
    return "\n".join(output) if isinstance(output, list) else output


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def csrf_token(http: requests.Session, url: str) -> str:
    """The CSRF token of the form on the page at ``url`` (this client's session)."""
    page = http.get(url, timeout=30).text
    m = _CSRF_RE.search(page)
    assert m, f"no CSRF token on {url}"
    return m.group(1)


def signed_in(server: LiveServer, username: str, password: str = PASSWORD) -> requests.Session:
    """A ``requests`` session signed in to ``server`` as ``username``; it sends the page's CSRF
    token as the X-CSRFToken header, as htmx does."""
    http = requests.Session()
    token = csrf_token(http, server.url + "/login")
    resp = http.post(
        server.url + "/login",
        data={"username": username, "password": password, "csrf_token": token},
        allow_redirects=False,
        timeout=30,
    )
    assert resp.status_code == 302, resp.text
    http.headers["X-CSRFToken"] = csrf_token(http, server.url + "/")
    return http


def add_credential(http: requests.Session, server: LiveServer, sandbox, name: str) -> None:
    """Save a credential for ``sandbox`` through the form (its first sync starts)."""
    resp = http.post(
        server.url + "/entrust/manage/credentials/new",
        data={
            "name": name,
            "api_user": sandbox.api_user,
            "api_key": sandbox.api_key,
            "base_url": sandbox.base_url,
            "is_admin": "y",
        },
        allow_redirects=False,
        timeout=30,
    )
    assert resp.status_code == 303, resp.text


def wait_until(what: str, check: Callable[[], object], seconds: float, every: float = 0.2) -> None:
    """Ask ``check`` every ``every`` seconds until it answers true; fail naming ``what`` after
    ``seconds``."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(every)


@contextlib.contextmanager
def served(instance: Path, sandbox, prepare: Callable | None = None):
    """(app, server): ``certdesk serve`` on ``instance``'s database, and an app on the same
    database to read it with (``prepare(app)`` runs before the server starts). At the end: the
    sandbox's faults cleared, the server stopped, the app's connections closed."""
    from tests.conftest import make_app
    from webapp.extensions import db

    app = make_app(instance, instance / "certdesk.db")
    if prepare is not None:
        prepare(app)
    server = start_server(instance)
    try:
        yield app, server
    finally:
        sandbox.clear_faults()
        stop_server(server)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
