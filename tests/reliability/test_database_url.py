"""A DATABASE_URL CertDesk cannot use (no URL, a driver this install lacks, a server that does not
answer) is named in one line with what to do, its password hidden, instead of a traceback."""

from __future__ import annotations

import pytest

from tests.live import free_port, run_certdesk


@pytest.mark.parametrize(
    "url, said",
    [
        ("certdesk.db", "CertDesk cannot start: DATABASE_URL is not a database URL; "),
        (
            "postgresql+nodriver://certdesk:pw-4711@db.example/certdesk",
            "CertDesk cannot start: DATABASE_URL "
            "postgresql+nodriver://certdesk:***@db.example/certdesk needs what this install lacks",
        ),
        (
            "postgresql+psycopg://certdesk:pw-4711@127.0.0.1:{port}/certdesk",
            "CertDesk cannot use its database "
            "postgresql+psycopg://certdesk:***@127.0.0.1:{port}/certdesk: connection failed",
        ),
    ],
)
@pytest.mark.parametrize("command", [["audit", "verify"], ["serve"]])
def test_a_database_url_it_cannot_use_is_named_without_a_traceback(tmp_path, url, said, command):
    pytest.importorskip("psycopg")
    port = free_port()  # nothing listens there
    ran = run_certdesk(tmp_path / "instance", *command, DATABASE_URL=url.format(port=port))
    assert ran.returncode == 2, ran
    assert "Traceback" not in ran.stderr, ran.stderr
    assert said.format(port=port) in ran.stderr, ran.stderr
    assert "pw-4711" not in ran.stdout + ran.stderr


@pytest.mark.parametrize("command", [["audit", "verify"], ["serve"]])
def test_an_sqlite_file_that_is_no_database_is_named_without_a_traceback(tmp_path, command):
    """A restore that put something else in place of certdesk.db (a truncated or compressed
    copy) is said in one line naming the file, as a server that does not answer is."""
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o700)
    database = instance / "certdesk.db"
    database.write_bytes(b"not a database, a gzip perhaps " * 200)
    database.chmod(0o600)
    ran = run_certdesk(instance, *command)
    assert ran.returncode == 2, ran
    assert "Traceback" not in ran.stderr, ran.stderr
    assert f"CertDesk cannot use its database {database}: file is not a database" in ran.stderr


@pytest.mark.parametrize("command", [["audit", "verify"], ["serve"], ["create-admin", "ann"]])
def test_an_instance_folder_it_cannot_make_is_named_without_a_traceback(tmp_path, command):
    """CERTDESK_INSTANCE naming a file (or a place this user cannot write) is said in one line."""
    not_a_folder = tmp_path / "instance"
    not_a_folder.write_text("a file\n")
    ran = run_certdesk(not_a_folder, *command)
    assert ran.returncode == 2, ran
    assert "Traceback" not in ran.stderr, ran.stderr
    assert (
        f"CertDesk cannot start: cannot use the instance folder {not_a_folder}: it is a file, "
        "not a folder; set CERTDESK_INSTANCE to a folder this user owns"
    ) in ran.stderr
    assert not_a_folder.read_text() == "a file\n"


@pytest.mark.parametrize("command", [["audit", "verify"], ["rotate-master-key"]])
def test_a_database_with_no_certdesk_tables_is_said_so(tmp_path, command):
    """A mistyped CERTDESK_INSTANCE names a new, empty instance: the commands that read the
    tables say so, rather than "no such table"."""
    ran = run_certdesk(tmp_path / "typo", *command)
    assert ran.returncode == 1, ran
    assert "Traceback" not in ran.stderr, ran.stderr
    assert "holds no CertDesk tables: check CERTDESK_INSTANCE and DATABASE_URL" in ran.stderr


@pytest.mark.parametrize("command", [["audit", "verify"], ["rotate-master-key"]])
def test_an_empty_postgresql_database_is_said_so_without_a_traceback(
    tmp_path, postgres_url, command
):
    from tests import pg

    target = pg.create_database(postgres_url)
    try:
        ran = run_certdesk(tmp_path / "instance", *command, DATABASE_URL=target)
    finally:
        pg.drop_database(target)
    assert ran.returncode == 1, ran
    assert "Traceback" not in ran.stderr, ran.stderr
    assert "holds no CertDesk tables" in ran.stderr, ran.stderr


def test_rotating_on_a_database_not_yet_upgraded_is_refused(tmp_path):
    """rotate-master-key reads and writes every sealed column: on a database an older version
    left (not yet migrated by this one) it says to upgrade first, and changes nothing."""
    import sqlite3

    instance = tmp_path / "instance"
    done = run_certdesk(instance, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(instance / "certdesk.db") as conn:
        conn.execute("update alembic_version set version_num = '0015_credential_name_any_case'")
    key = (instance / "master.key").read_bytes()
    ran = run_certdesk(instance, "rotate-master-key")
    assert ran.returncode == 1, ran
    assert "is at migration 0015_credential_name_any_case, not this version's" in ran.stderr
    assert "db upgrade first" in ran.stderr
    assert (instance / "master.key").read_bytes() == key
    assert not (instance / "master.key.next").exists()


def test_upgrading_by_hand_a_database_a_newer_version_migrated_says_what_to_do(tmp_path):
    """`certdesk db upgrade` (the README's way to migrate by hand) on a database a newer CertDesk
    migrated says what serve says, with what to do, not Alembic's "Can't locate revision"."""
    import sqlite3

    instance = tmp_path / "instance"
    done = run_certdesk(instance, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(instance / "certdesk.db") as conn:
        conn.execute("update alembic_version set version_num = '0099_from_the_future'")
    ran = run_certdesk(instance, "db", "upgrade")
    assert ran.returncode == 1, ran
    assert "Traceback" not in ran.stderr and "Can't locate" not in ran.stderr, ran.stderr
    assert ran.stderr.strip().splitlines()[-1] == (
        "Error: the database is at migration 0099_from_the_future, which this version of "
        "CertDesk does not know: a newer version migrated it. Run that version, or stop, restore "
        "the backup made before the upgrade (see Upgrading in the README) and start this one on it."
    )
    with sqlite3.connect(instance / "certdesk.db") as conn:
        assert conn.execute("select version_num from alembic_version").fetchall() == [
            ("0099_from_the_future",)
        ]


@pytest.mark.parametrize("command", [["serve"], ["create-admin", "ops-lead"]])
def test_a_migration_step_the_database_refuses_is_said_in_a_line_and_kept_nothing(
    tmp_path, command
):
    """A database whose schema is not the one a migration expects (a column there already, as an
    upgrade an older CertDesk ran part-way outside a transaction left it): the start stops with a
    line saying what to do, nothing of the upgrade kept, instead of a traceback or a bare
    "duplicate column name"."""
    import sqlite3

    instance = tmp_path / "instance"
    done = run_certdesk(instance, "db", "upgrade", "0020_no_pickup_links", timeout=120)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(instance / "certdesk.db") as conn:  # 0021's third step, done already
        conn.execute("ALTER TABLE ecs_credential ADD COLUMN last_sync_failed_kinds TEXT")
    ran = run_certdesk(instance, *command, CERTDESK_ADMIN_PASSWORD="a long enough password")
    assert ran.returncode == 1, ran
    assert "Traceback" not in ran.stderr, ran.stderr
    last = ran.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "Error: the database could not be migrated to this version: duplicate column name: "
        "last_sync_failed_kinds (in: ALTER TABLE ecs_credential ADD COLUMN "
    ), last
    assert last.endswith(
        "Nothing of this upgrade was kept; restore the backup made before the upgrade (see "
        "Upgrading in the README) and start again on it."
    ), last
    assert "serving on" not in ran.stdout.lower(), ran.stdout
    with sqlite3.connect(instance / "certdesk.db") as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(ecs_credential)")}
        assert "login_changed_at" not in columns
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            ("0020_no_pickup_links",)
        ]
        assert conn.execute('SELECT count(*) FROM "user"').fetchone() == (0,)
