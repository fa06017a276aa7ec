"""A throwaway PostgreSQL cluster (Debian's binaries, initdb/pg_ctl on a temp dir, free port),
and databases made in it from templates, for the tests that run on PostgreSQL."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests.live import free_port

# The clusters' default collation: ICU's English with punctuation ignorable ("shifted"), as glibc's
# en_US.UTF-8 compares.
COLLATION = "en-US-u-ka-shifted"


class Unavailable(RuntimeError):
    """PostgreSQL's binaries are not installed."""


def _pg_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


def _as_owner(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root: use the postgres system account then.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@contextlib.contextmanager
def cluster() -> Iterator[str]:
    """Start a cluster with a database ``certdesk``; yield its SQLAlchemy URL; remove it all."""
    bindir = _pg_bin()
    if bindir is None:
        raise Unavailable("PostgreSQL binaries not installed")
    # Not under pytest's 0700 temp tree: the postgres account must be able to reach it.
    root = Path(tempfile.mkdtemp(prefix="certdesk-pg-"))
    data = root / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
    port = free_port()
    # The cluster compares text as most installs do (en_US.UTF-8): letters first, punctuation and
    # accents only to break ties. An ICU locale gives that on any machine; "C" would hide what
    # depends on it (a prefix range over such an order misses "www.example.com" for "www.").
    initdb = [f"{bindir}/initdb", "-D", str(data), "-A", "trust", "-U", "certdesk", "-E", "UTF8"]
    initdb += ["--locale=C.UTF-8", "--locale-provider=icu", f"--icu-locale={COLLATION}"]
    subprocess.run(_as_owner([*initdb, "--no-sync"]), check=True, capture_output=True)
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    opts += " -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
    pg_ctl = [f"{bindir}/pg_ctl", "-D", str(data), "-o", opts, "-l", str(root / "log")]
    subprocess.run(_as_owner([*pg_ctl, "-w", "start"]), check=True, capture_output=True)
    try:
        url = f"postgresql+psycopg://certdesk@127.0.0.1:{port}/certdesk"
        deadline = time.monotonic() + 20
        while True:
            try:
                execute(url, "CREATE DATABASE certdesk", database="postgres")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        subprocess.run(
            _as_owner([f"{bindir}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def _dsn(url: str, database: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + "/" + database


def execute(url: str, sql: str, database: str = "postgres") -> None:
    import psycopg

    with psycopg.connect(_dsn(url, database), autocommit=True) as conn:
        conn.execute(sql)


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database of the same cluster."""
    return url.rsplit("/", 1)[0] + "/" + database


def create_database(url: str, template: str | None = None) -> str:
    """A new database (a copy of ``template`` when given); returns its URL."""
    name = "t_" + uuid.uuid4().hex[:16]
    sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    execute(url, sql)
    return with_database(url, name)


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    execute(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
