"""Three gunicorn workers on one PostgreSQL database: exactly one runs the scheduler's periodic
work at a time, and when its worker is killed another takes over within a minute."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests import pg
from tests.live import free_port, wait_healthy

BIN = Path(sys.executable).parent


def _holder(engine) -> tuple[str, float] | None:
    with engine.connect() as conn:
        row = conn.execute(
            text("select holder, extract(epoch from expires_at) from scheduler_lease")
        ).first()
    return (row[0], float(row[1])) if row else None


def _pid(holder: str) -> int:
    return int(holder.split(":")[1])


@pytest.fixture
def workers(tmp_path, postgres_url):
    if not (BIN / "gunicorn").exists():
        pytest.fail("gunicorn is part of the dev extra; run make install")
    url = pg.create_database(postgres_url)
    instance = tmp_path / "instance"
    env = dict(
        os.environ,
        CERTDESK_INSTANCE=str(instance),
        DATABASE_URL=url,
        CERTDESK_SCHEDULER_TICK_SECONDS="1",
        CERTDESK_SCHEDULER_LEASE_SECONDS="4",
    )
    subprocess.run(
        [str(BIN / "certdesk"), "db", "upgrade"], env=env, check=True, capture_output=True
    )
    port = free_port()
    log = tmp_path / "gunicorn.log"  # printed at teardown: pytest shows it if the test failed
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(BIN / "gunicorn"), "--workers", "3", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
            env=env,
            cwd=Path(__file__).resolve().parents[2],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    engine = create_engine(url)
    try:
        wait_healthy(base, proc, 60, log.read_text, name="gunicorn")
        yield proc, engine, base
    finally:
        engine.dispose()
        with contextlib.suppress(ProcessLookupError):  # gone already if it failed to start
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        pg.drop_database(url)
        print(log.read_text())


def _worker_pids(master: int) -> set[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True
    ).stdout
    return {int(p) for p in out.split()}


def _one_holder_for(engine, seconds: float) -> str:
    """Sample the lease; every sample names the same live holder."""
    seen = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        row = _holder(engine)
        if row:
            seen.add(row[0])
        time.sleep(0.25)
    assert len(seen) == 1, f"several schedulers led at once: {seen}"
    return seen.pop()


def test_one_scheduler_among_three_workers_and_a_takeover(workers):
    proc, engine, _base = workers
    deadline = time.monotonic() + 60
    while _holder(engine) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    pids = _worker_pids(proc.pid)
    assert len(pids) == 3
    leader = _one_holder_for(engine, 6)
    assert _pid(leader) in pids

    try:
        os.kill(_pid(leader), signal.SIGKILL)
    except ProcessLookupError:  # it ended by itself (see gunicorn's log); the same takeover is due
        print(f"the leading worker {_pid(leader)} had already ended")
    killed_at = time.monotonic()
    new = None
    while time.monotonic() - killed_at < 60:
        row = _holder(engine)
        if row and row[0] != leader:
            new = row[0]
            break
        time.sleep(0.2)
    assert new is not None, "no worker took the scheduler over within a minute"
    assert _pid(new) in _worker_pids(proc.pid)  # a live worker (maybe gunicorn's replacement)
    assert _one_holder_for(engine, 5) == new


def test_a_worker_stopped_in_order_gives_the_lease_up_and_leaves_everything_in_the_file(tmp_path):
    """`gunicorn wsgi:app` reads the repository's gunicorn.conf.py: SIGTERM stops a worker as it
    stops `certdesk serve` (jobs paused, lease given up, connections closed)."""
    if not (BIN / "gunicorn").exists():
        pytest.fail("gunicorn is part of the dev extra; run make install")
    instance = tmp_path / "instance"
    env = dict(os.environ, CERTDESK_INSTANCE=str(instance), CERTDESK_SCHEDULER_TICK_SECONDS="1")
    env.pop("DATABASE_URL", None)
    subprocess.run(
        [str(BIN / "certdesk"), "db", "upgrade"], env=env, check=True, capture_output=True
    )
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "--workers", "1", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    engine = create_engine(f"sqlite:///{instance / 'certdesk.db'}")
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, 60, name="gunicorn")
        deadline = time.monotonic() + 30
        while _sqlite_holder(engine) is None:
            assert time.monotonic() < deadline, "no worker took the scheduler's lease"
            time.sleep(0.2)
        engine.dispose()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        assert not (instance / "certdesk.db-wal").exists()
        holder, expires_at = _sqlite_holder(engine)
        assert expires_at < time.time(), holder  # given up: the next start leads at once
    finally:
        engine.dispose()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _sqlite_holder(engine) -> tuple[str, float] | None:
    with engine.connect() as conn:
        row = conn.execute(
            text("select holder, unixepoch(expires_at) from scheduler_lease")
        ).first()
    return (row[0], float(row[1])) if row else None
