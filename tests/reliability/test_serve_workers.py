"""`certdesk serve --workers 2` as a user runs it, on SQLite and on PostgreSQL: two processes
serve one port, one of them runs the scheduler, the setup link is printed once, a setup race and
sign-ins with writes under concurrent load all succeed, a killed worker is replaced, and SIGTERM
stops everything and gives the scheduler lease up."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from tests import pg
from tests.live import csrf_token, free_port, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a long enough password"


def _as_at_a_terminal():
    """Ctrl-C stops a command started at a terminal: SIGINT is at its default, even when these
    tests run in the background (where the shell starts them with SIGINT ignored, which
    `certdesk serve` respects)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Served:
    def __init__(self, instance: Path, database_url: str | None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url or f"sqlite:///{instance / 'certdesk.db'}"
        self.env = dict(
            os.environ,
            CERTDESK_INSTANCE=str(instance),
            CERTDESK_SECRET_KEY="workers-secret-of-at-least-32-characters",
            CERTDESK_SCHEDULER_TICK_SECONDS="1",
            CERTDESK_SCHEDULER_LEASE_SECONDS="4",
            PYTHONUNBUFFERED="1",
        )
        if database_url:
            self.env["DATABASE_URL"] = database_url
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "webapp", "serve", "--port", str(self.port), "--workers", "2"],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=_as_at_a_terminal,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        try:
            wait_healthy(self.url, self.proc, 60, lambda: list(self.lines))
        except AssertionError:
            with contextlib.suppress(ProcessLookupError):  # the workers too; nobody calls stop()
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
            raise
        self.engine = create_engine(self.database_url)

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def workers(self) -> set[int]:
        """The parent's children, from /proc."""
        found = set()
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            children = (task / "children").read_text().split()
            found.update(int(p) for p in children)
        return found

    def wait_for_workers(self, count: int, timeout: float = 60) -> set[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.workers()
            if len(pids) == count:
                return pids
            time.sleep(0.2)
        raise AssertionError(f"expected {count} workers, found {self.workers()}: {self.lines}")

    def lease(self) -> tuple[str, datetime] | None:
        with self.engine.connect() as conn:
            row = conn.execute(text("select holder, expires_at from scheduler_lease")).first()
        if row is None:
            return None
        expires = row[1] if isinstance(row[1], datetime) else datetime.fromisoformat(row[1])
        return row[0], expires if expires.tzinfo else expires.replace(tzinfo=UTC)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        self.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request, tmp_path):
    database_url = None
    if request.param == "postgresql":
        database_url = pg.create_database(request.getfixturevalue("postgres_url"))
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o700)
    server = Served(instance, database_url)
    try:
        yield server
    finally:
        server.stop()
        if database_url:
            pg.drop_database(database_url)


def _holder_pid(holder: str) -> int:
    return int(holder.split(":")[1])


def _one_leader(server: Served, seconds: float) -> str:
    seen = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lease = server.lease()
        if lease:
            seen.add(lease[0])
        time.sleep(0.2)
    assert len(seen) == 1, f"several schedulers led at once: {seen}"
    return seen.pop()


def _fresh_get(server: Served, path: str) -> int:
    """A GET on a new connection (so that whichever worker accepts it answers)."""
    return requests.get(server.url + path, headers={"Connection": "close"}, timeout=30).status_code


def _setup_race(server: Served, browsers: int = 6) -> None:
    line = next(x for x in server.lines if "/setup?token=" in x)
    token = re.search(r"/setup\?token=(\S+)", line).group(1)
    sessions = []
    for _ in range(browsers):
        http = requests.Session()
        sessions.append((http, csrf_token(http, f"{server.url}/setup?token={token}")))
    barrier = threading.Barrier(browsers)
    answers: list = [None] * browsers

    def post(i):
        http, csrf = sessions[i]
        barrier.wait()
        answers[i] = http.post(
            server.url + "/setup",
            data={
                "csrf_token": csrf,
                "token": token,
                "username": "admin",
                "password": PASSWORD,
                "password2": PASSWORD,
            },
            allow_redirects=False,
            timeout=120,
        )

    threads = [threading.Thread(target=post, args=(i,)) for i in range(browsers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(150)
    winners = [a for a in answers if a is not None and a.status_code == 302]
    winners = [a for a in winners if a.headers["Location"] == "/"]
    assert len(winners) == 1, [a.status_code if a is not None else None for a in answers]


def _load_with_writes(server: Served, clients: int = 8) -> list[str]:
    """Each client signs in as the administrator, reads pages and creates a user; the failures."""
    failures: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def client(i):
        http = requests.Session()
        try:
            token = csrf_token(http, server.url + "/login")
            barrier.wait()
            for attempt in range(3):
                signed = http.post(
                    server.url + "/login",
                    data={"username": "admin", "password": PASSWORD, "csrf_token": token},
                    allow_redirects=False,
                    timeout=120,
                )
                check = [(f"sign-in {attempt}", signed.status_code, 302)]
                for path in ("/", "/certificates/", "/admin/audit/", "/admin/users/"):
                    check.append((path, http.get(server.url + path, timeout=120).status_code, 200))
                form = csrf_token(http, server.url + "/admin/users/new")
                created = http.post(
                    server.url + "/admin/users/new",
                    data={
                        "csrf_token": form,
                        "username": f"user{i}x{attempt}",
                        "password": PASSWORD,
                        "role": "operator",
                    },
                    headers={"X-CSRFToken": form},
                    allow_redirects=False,
                    timeout=120,
                )
                check.append(("create user", created.status_code, 303))
                http.post(
                    server.url + "/logout",
                    data={"csrf_token": form},
                    allow_redirects=False,
                    timeout=120,
                )
                token = csrf_token(http, server.url + "/login")
                for what, got, wanted in check:
                    if got != wanted:
                        with lock:
                            failures.append(f"client {i}: {what} answered {got}")
        except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
            with lock:
                failures.append(f"client {i}: {exc!r}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return failures


def test_two_workers_one_scheduler_setup_once_and_writes_under_load(served):
    workers = served.wait_for_workers(2)
    assert sum("/setup?token=" in line for line in served.lines) == 1, served.lines
    assert sum("CertDesk is serving on" in line for line in served.lines) == 1, served.lines

    # Exactly one worker holds the scheduler lease, and keeps it.
    leader = _one_leader(served, 6)
    assert _holder_pid(leader) in workers

    # Each worker serves the shared port alone while the other is stopped.
    for paused in workers:
        os.kill(paused, signal.SIGSTOP)
        try:
            assert [_fresh_get(served, "/healthz") for _ in range(3)] == [200] * 3
        finally:
            os.kill(paused, signal.SIGCONT)

    _setup_race(served)
    failures = _load_with_writes(served)
    assert not failures, failures[:12]
    with served.engine.connect() as conn:
        users = conn.execute(text('select count(*) from "user"')).scalar()
    assert users == 1 + 8 * 3

    verify = subprocess.run(
        [sys.executable, "-m", "webapp", "audit", "verify"],
        env=served.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "Audit trail intact" in verify.stdout


def test_a_killed_worker_is_replaced_and_sigterm_stops_them_all(served):
    workers = served.wait_for_workers(2)
    leader = _one_leader(served, 3)
    victim = _holder_pid(leader)

    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = served.workers()
        if len(now) == 2 and victim not in now:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"the killed worker was not replaced: {served.workers()}")
    assert any(
        f"(pid {victim}) was ended by signal SIGKILL; starting another" in line
        for line in served.lines
    ), served.lines
    assert _fresh_get(served, "/healthz") == 200
    # Another worker takes the scheduler over once the dead one's lease runs out.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        lease = served.lease()
        if lease and lease[0] != leader:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("no worker took the scheduler over")
    all_workers = workers | served.workers()

    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(60) == 0, served.lines
    for pid in all_workers:
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} outlived the server"
    holder, expires = served.lease()
    assert expires < datetime.now(UTC), f"{holder} kept the lease after stopping"


def test_ctrl_c_at_the_terminal_stops_every_worker(served):
    workers = served.wait_for_workers(2)
    os.killpg(served.proc.pid, signal.SIGINT)  # the terminal signals the whole process group
    assert served.proc.wait(60) == 0, served.lines
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} outlived the server"
