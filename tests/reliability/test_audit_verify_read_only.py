"""`certdesk audit verify` run by a database user that may only read (an auditor's login, a
read-only replica): the check's result is reported and its exit code is the check's; the record of
a check that passed, which the database refuses, is said in one line on stderr. `--no-record`
checks without recording."""

from __future__ import annotations

import sqlite3
import uuid

from tests.live import run_certdesk

INTACT = "Audit trail intact: 1 events verified.\n"
NOT_RECORDED = "The check was not recorded in the audit trail: "


def _instance_with_a_trail(instance, **env):
    """A migrated instance whose trail holds one event (its first administrator's creation)."""
    done = run_certdesk(instance, "db", "upgrade", timeout=120, **env)
    assert done.returncode == 0, done.stderr
    made = run_certdesk(
        instance, "create-admin", "ann", CERTDESK_ADMIN_PASSWORD="ann's long password", **env
    )
    assert made.returncode == 0, made.stderr
    return instance


def _sqlite_events(database) -> list[str]:
    with sqlite3.connect(database) as conn:
        return [a for (a,) in conn.execute("SELECT action FROM audit_event ORDER BY seq")]


def test_a_read_only_sqlite_database_is_verified_and_the_record_it_refuses_is_said(tmp_path):
    instance = _instance_with_a_trail(tmp_path / "instance")
    database = instance / "certdesk.db"
    read_only = f"sqlite:///file:{database}?mode=ro&uri=true"

    ran = run_certdesk(instance, "audit", "verify", DATABASE_URL=read_only)
    assert ran.returncode == 0, ran
    assert ran.stdout == INTACT
    assert "Traceback" not in ran.stderr, ran.stderr
    assert ran.stderr.count("\n") == 1, ran.stderr
    assert ran.stderr.startswith(NOT_RECORDED + "attempt to write a readonly database"), ran.stderr
    assert "--no-record" in ran.stderr

    quiet = run_certdesk(instance, "audit", "verify", "--no-record", DATABASE_URL=read_only)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, INTACT, ""), quiet
    assert _sqlite_events(database) == ["user.create"]

    # Writable, --no-record still records nothing; without it the pass is recorded.
    quiet = run_certdesk(instance, "audit", "verify", "--no-record")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, INTACT, ""), quiet
    assert _sqlite_events(database) == ["user.create"]
    ran = run_certdesk(instance, "audit", "verify")
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, INTACT, ""), ran
    assert _sqlite_events(database) == ["user.create", "audit.verify_passed"]


def test_a_broken_trail_on_a_read_only_database_exits_1_as_ever(tmp_path):
    instance = _instance_with_a_trail(tmp_path / "instance")
    database = instance / "certdesk.db"
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE audit_event SET detail = '{}' WHERE seq = 1")
    read_only = f"sqlite:///file:{database}?mode=ro&uri=true"
    for options in ([], ["--no-record"]):
        ran = run_certdesk(instance, "audit", "verify", *options, DATABASE_URL=read_only)
        assert ran.returncode == 1, ran
        assert ran.stdout == ""
        assert ran.stderr == "Audit trail broken: row 1 was altered.\n", ran.stderr


def test_a_postgresql_role_that_may_only_select_verifies(tmp_path, postgres_url):
    from tests import pg

    target = pg.create_database(postgres_url)
    role = "reader_" + uuid.uuid4().hex[:12]
    database = target.rsplit("/", 1)[1]
    try:
        instance = _instance_with_a_trail(tmp_path / "instance", DATABASE_URL=target)
        pg.execute(postgres_url, f"CREATE ROLE {role} LOGIN")
        pg.execute(postgres_url, f'GRANT CONNECT ON DATABASE "{database}" TO {role}')
        for grant in ("USAGE ON SCHEMA public", "SELECT ON ALL TABLES IN SCHEMA public"):
            pg.execute(target, f"GRANT {grant} TO {role}", database=database)
        reader = target.replace("://certdesk@", f"://{role}@")

        ran = run_certdesk(instance, "audit", "verify", DATABASE_URL=reader)
        assert ran.returncode == 0, ran
        assert ran.stdout == INTACT
        assert "Traceback" not in ran.stderr, ran.stderr
        assert ran.stderr.count("\n") == 1, ran.stderr
        assert ran.stderr.startswith(NOT_RECORDED + "permission denied for table"), ran.stderr

        quiet = run_certdesk(instance, "audit", "verify", "--no-record", DATABASE_URL=reader)
        assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, INTACT, ""), quiet

        # The owner's check records its pass, and the trail (read-only runs left nothing) holds.
        ran = run_certdesk(instance, "audit", "verify", DATABASE_URL=target)
        assert (ran.returncode, ran.stdout, ran.stderr) == (0, INTACT, ""), ran
        again = run_certdesk(instance, "audit", "verify", "--no-record", DATABASE_URL=reader)
        assert again.stdout == "Audit trail intact: 2 events verified.\n", again
    finally:
        pg.drop_database(target)
        pg.execute(postgres_url, f"DROP ROLE IF EXISTS {role}")
