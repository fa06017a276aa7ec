"""A throwaway PostgreSQL cluster (Debian's binaries, initdb/pg_ctl on a temp dir, free port)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.live import free_port


def _pg_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


def _as_owner(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root: use the postgres system account then.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@pytest.fixture(scope="session")
def postgres_url():
    bindir = _pg_bin()
    if bindir is None:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "PostgreSQL binaries are required under CI=true (apt-get install postgresql)"
            )
        pytest.skip("PostgreSQL binaries not installed")
    # Not under pytest's 0700 temp tree: the postgres account must be able to reach it.
    root = Path(tempfile.mkdtemp(prefix="certdesk-pg-"))
    data = root / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
    port = free_port()
    subprocess.run(
        _as_owner(
            [
                f"{bindir}/initdb",
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "certdesk",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        ),
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_owner(
            [
                f"{bindir}/pg_ctl",
                "-D",
                str(data),
                "-o",
                opts,
                "-l",
                str(root / "log"),
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        import psycopg

        deadline = time.monotonic() + 20
        while True:
            try:
                with psycopg.connect(
                    f"host=127.0.0.1 port={port} user=certdesk dbname=postgres", autocommit=True
                ) as conn:
                    conn.execute("CREATE DATABASE certdesk")
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield f"postgresql+psycopg://certdesk@127.0.0.1:{port}/certdesk"
    finally:
        subprocess.run(
            _as_owner([f"{bindir}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)
