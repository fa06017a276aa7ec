"""The ``certdesk`` command (also ``flask --app webapp ...``)."""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import shutil
import signal
import sys
from errno import EADDRINUSE
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from webapp import create_app


def _upgrade_database() -> None:
    from flask_migrate import upgrade
    from sqlalchemy.exc import DBAPIError

    from webapp import _init_secretbox, paths

    _refuse_a_newer_database(paths.MIGRATIONS_DIR)
    _refuse_to_migrate_under_a_running_certdesk(paths.MIGRATIONS_DIR)
    try:
        upgrade(directory=str(paths.MIGRATIONS_DIR))
    except DBAPIError as exc:
        # A step the database refused: the schema is not the one that step expects (changed by
        # hand, or left part-way by an upgrade an older CertDesk ran outside a transaction).
        raise click.ClickException(
            f"the database could not be migrated to this version: {exc.orig} (in: "
            f"{' '.join(str(exc.statement).split())[:200]}). Nothing of this upgrade was kept; "
            "restore the backup made before the upgrade (see Upgrading in the README) and "
            "start again on it."
        ) from exc
    _init_secretbox(current_app)  # writes the master-key check on a fresh database


def _refuse_a_newer_database(migrations: Path) -> None:
    """A database a newer CertDesk migrated (this version put back after an upgrade) is named,
    with what to do, instead of Alembic's "Can't locate revision"."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from webapp.extensions import db

    with db.engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    known = {script.revision for script in ScriptDirectory(str(migrations)).walk_revisions()}
    newer = sorted(set(heads) - known)
    if newer:
        raise click.ClickException(
            f"the database is at migration {newer[0]}, which this version of CertDesk does not "
            "know: a newer version migrated it. Run that version, or stop, restore the backup "
            "made before the upgrade (see Upgrading in the README) and start this one on it."
        )


def _refuse_to_migrate_under_a_running_certdesk(migrations: Path) -> None:
    """Migrations pending while another CertDesk holds the scheduler's lease are not applied: it
    runs on the schema it knows. A port held stops a new version started on the old one's port;
    one started on another port, or on another host, meets the lease. With nothing to migrate (a
    second serve on the same database) the lease is shared as ever."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import inspect

    from webapp.extensions import db
    from webapp.scheduler import SchedulerLease, live_lease

    with db.engine.connect() as conn:
        heads = set(MigrationContext.configure(conn).get_current_heads())
        has_lease = inspect(conn).has_table(SchedulerLease.__tablename__)
    if not has_lease or heads == set(ScriptDirectory(str(migrations)).get_heads()):
        return
    lease = live_lease()
    db.session.remove()  # no read left open while the upgrade writes
    # This process's own scheduler (serve's, or its workers') starts after the upgrade.
    if lease is None or lease.holder == current_app.extensions["certdesk_scheduler"].holder:
        return
    raise click.ClickException(
        f"CertDesk is running on this database (its scheduler is held by {lease.holder}) and "
        "this version has migrations to apply: stop the running CertDesk first, on every host, "
        "then start this one. If it is stopped already (it was killed or crashed), its hold "
        f"ends at {lease.expires_at:%H:%M:%S} UTC: start this one again then"
    )


def _require_current_schema() -> None:
    """For the commands that read the tables without migrating them first: a database with no
    CertDesk tables (a mistyped CERTDESK_INSTANCE or DATABASE_URL names a new, empty one), or one
    at another migration, is said in a line instead of a traceback."""
    from alembic.script import ScriptDirectory

    from webapp import paths
    from webapp.extensions import db

    heads = _require_tables()
    _refuse_a_newer_database(paths.MIGRATIONS_DIR)
    shown = _shown_url(db.engine.url)
    wanted = set(ScriptDirectory(str(paths.MIGRATIONS_DIR)).get_heads())
    if heads != wanted:
        raise click.ClickException(
            f"the database {shown} is at migration {', '.join(sorted(heads))}, not this "
            f"version's {', '.join(sorted(wanted))}: run {certdesk_command()} db upgrade first"
        )


def _require_tables() -> set[str]:
    """The migrations the database is at; none (no CertDesk tables: a mistyped CERTDESK_INSTANCE
    or DATABASE_URL names a new, empty database) is said in a line. A SQLite file that is not
    there is not opened (opening would make it)."""
    from alembic.runtime.migration import MigrationContext

    from webapp import config
    from webapp.extensions import db

    database = config.sqlite_file(current_app.config["SQLALCHEMY_DATABASE_URI"])
    heads: set[str] = set()
    if database is None or database.exists():
        with db.engine.connect() as conn:
            heads = set(MigrationContext.configure(conn).get_current_heads())
    if not heads:
        raise click.ClickException(
            f"the database {_shown_url(db.engine.url)} holds no CertDesk tables: check "
            f"CERTDESK_INSTANCE and DATABASE_URL (a new instance is started with "
            f"{certdesk_command()} serve)"
        )
    return heads


def _reads_an_instance(command):
    """For the commands that read an instance there already (``with_appcontext`` otherwise): its
    app is prepared with nothing made, and a database that is not there or holds no CertDesk
    tables is refused. A mistyped CERTDESK_INSTANCE is said, not made into a new instance."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        if not current_app:  # not run inside an app made already (flask --app webapp ...)
            app = _make_app(prepare=False)
            click.get_current_context().with_resource(app.app_context())
            _prepare(app, make=False)
            _require_tables()
        return command(*args, **kwargs)

    return run


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--threads",
    default=8,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Threads per worker.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Processes serving the same port (about one per CPU core; README: Several worker "
    "processes).",
)
def serve(host: str, port: int, threads: int, workers: int) -> None:
    """Apply pending migrations, start the scheduler and serve CertDesk with waitress."""
    from flask import has_app_context

    if has_app_context():  # run through `flask --app webapp serve`: Flask made the app
        _serve(current_app._get_current_object(), host, port, threads, workers)
        return
    app = _make_app(prepare=False)
    with app.app_context():
        _serve(app, host, port, threads, workers)


def _serve(app, host: str, port: int, threads: int, workers: int) -> None:
    import waitress

    from webapp import serving
    from webapp.auth import service as auth
    from webapp.credentials import demo
    from webapp.extensions import db
    from webapp.jobs import service as jobs

    # The port first: one another program holds is said in a line, before "serving on" is,
    # before the database is migrated (a CertDesk still serving there, an older version whose
    # upgrade is under way, keeps the schema it knows), and before the instance folder, its keys
    # and its database are made: a start that fails leaves nothing behind.
    sock = server = None
    try:
        if workers > 1:
            sock = serving.bind(host, port)
        else:
            server = waitress.create_server(
                app, host=host, port=port, threads=threads, **serving.waitress_options(app)
            )
    except (OSError, ValueError) as exc:  # ValueError: waitress found no such address
        in_use = isinstance(exc, OSError) and exc.errno == EADDRINUSE
        hint = "; stop what uses it, or choose another --port" if in_use else ""
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise click.ClickException(f"cannot listen on {host}:{port}: {reason}{hint}") from exc
    try:
        _prepare(app)
        _upgrade_database()
    except BaseException:
        (server or sock).close()
        raise
    token = auth.issue_setup_token()
    shown_host = _shown_host(host, app.config.get("TRUSTED_HOSTS"))
    click.echo(f"CertDesk is serving on http://{shown_host}:{port}/")
    if token:
        click.echo("No users yet. Create the first administrator at:")
        click.echo(f"    http://{shown_host}:{port}/setup?token={token}")
        click.echo(f"(or run: {certdesk_command()} create-admin USERNAME)")
    if (line := demo.startup_line()) is not None:
        click.echo(line)
    # What the start read ends here: a transaction left open for the life of the server holds
    # PostgreSQL's VACUUM back (and locks) until it stops; the requests open their own.
    db.session.remove()
    sys.stdout.flush()
    if sock is not None:
        click.echo(f"{workers} worker processes, {threads} threads each.")
        sys.exit(serving.supervise(app, sock, workers, threads, echo=_echo_err))
    if app.config["SCHEDULER_ENABLED"]:
        app.extensions["certdesk_scheduler"].start()
    # SIGTERM (systemd, `make run` stopping) ends waitress as Ctrl-C does, then the scheduler.
    previous_sigterm = signal.signal(signal.SIGTERM, _stop_serving)
    serving.tune_gc()
    try:
        server.print_listen("Serving on http://{}:{}")
        server.run()
    finally:
        jobs.stop_pool(app)
        app.extensions["certdesk_scheduler"].shutdown()
        serving.close_connections()
        signal.signal(signal.SIGTERM, previous_sigterm)


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


def _stop_serving(_signum, _frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough; let the shutdown finish
    raise SystemExit(0)


def certdesk_command() -> str:
    """How to run this `certdesk` from the current directory (for the hints CertDesk prints).

    That is the `certdesk` script beside the running Python (a virtualenv's bin/), by the shortest
    of: its bare name when PATH finds that very script, its relative or its absolute path (quoted
    for the shell). Without such a script (run as `python -m webapp`), plain `certdesk`.
    """
    script = Path(sys.executable).parent / "certdesk"
    if not script.is_file():
        return "certdesk"
    found = shutil.which("certdesk")
    if found and Path(found).resolve() == script.resolve():
        return "certdesk"
    absolute = str(script.absolute())
    relative = os.path.relpath(absolute)
    if os.sep not in relative:
        relative = os.path.join(os.curdir, relative)  # ./certdesk: the shell does not search .
    return shlex.quote(min(relative, absolute, key=len))  # a folder may have a space in its name


@click.command("create-admin")
@click.argument("username")
@click.option("--full-name", default="", help="Their full name (optional).")
@click.option(
    "--email",
    default="",
    help="Their e-mail address (optional): Order Certificate offers it as the requester's.",
)
@click.pass_context
def create_admin(ctx: click.Context, username: str, full_name: str, email: str) -> None:
    """Create an administrator; password from CERTDESK_ADMIN_PASSWORD or a prompt."""
    from flask.cli import ScriptInfo

    from webapp.auth import service as auth

    from_env = os.environ.get("CERTDESK_ADMIN_PASSWORD") or ""

    def refused(exc: auth.UserError) -> click.ClickException:
        # The form's words name no field here: say which of the two was refused, and whence.
        whose = {
            "username": f"the user name {username!r}",
            "password": "the password of CERTDESK_ADMIN_PASSWORD" if from_env else "the password",
            "full_name": "--full-name",
            "email": f"--email {email!r}",
        }.get(exc.field)
        return click.ClickException(f"{whose}: {exc}" if whose else str(exc))

    def typed() -> str:
        try:
            return click.prompt("Password", hide_input=True, confirmation_prompt=True)
        except click.Abort:  # the input ended (no terminal) before a password came
            raise click.ClickException(
                "no password: set CERTDESK_ADMIN_PASSWORD, or run the command at a terminal to "
                "type it"
            ) from None

    # What needs no database is checked before the instance is made or its database migrated:
    # refused there, a new instance is left unmade. The name first: a password typed twice for
    # a name refused is typed for nothing; so is one for a name taken, which only the database
    # tells, unless it is still to be made (then no name is taken yet).
    password = from_env
    try:
        name = auth.validate_username(username)
        full_name, email = auth.validate_profile(full_name, email)
        if not password and not current_app and _no_instance_yet():
            password = typed()
        if password:
            auth.validate_password(password, username=name)
    except auth.UserError as exc:
        raise refused(exc) from exc
    if not current_app:  # not run inside an app made already: the command's own
        ctx.with_resource(ctx.ensure_object(ScriptInfo).load_app().app_context())
    _upgrade_database()
    if auth.by_username(username) is not None:
        raise click.ClickException(f"the user name {username!r} is taken: choose another")
    password = password or typed()
    try:
        user = auth.create_user(None, username, password, "admin", full_name, email)
    except auth.UserError as exc:
        raise refused(exc) from exc
    click.echo(f"Administrator {user.username} created.")


def _no_instance_yet() -> bool:
    """No instance folder, and no database named outside it: a new install, whose database is
    still to be made (and holds no user)."""
    from webapp import config

    named = os.environ.get("DATABASE_URL") or os.environ.get("CERTDESK_SQLALCHEMY_DATABASE_URI")
    return not named and not Path(config.instance_path()).exists()


@click.command("rotate-master-key")
@_reads_an_instance
def rotate_master_key() -> None:
    """Re-encrypt every secret under a new master key (safe to re-run if interrupted)."""
    from webapp import rotation
    from webapp.scheduler import live_lease
    from webapp.security import secretbox

    if current_app.config.get("MASTER_KEY"):
        raise click.ClickException(
            "the master key comes from CERTDESK_MASTER_KEY; rotate it by moving to a key file"
        )
    _require_current_schema()
    lease = live_lease()
    if lease is not None:
        # Its processes keep the old key: what they sealed after the rotation would be lost.
        raise click.ClickException(
            f"CertDesk is running (its scheduler is held by {lease.holder}); stop it, then "
            "rotate the key, then start it again. If it is stopped already (it was killed or "
            "crashed), its hold ends at "
            f"{lease.expires_at:%H:%M:%S} UTC: run this again then"
        )
    try:
        count = rotation.rotate(Path(current_app.instance_path), echo=click.echo)
    except (secretbox.MasterKeyError, rotation.TrailHeadMissing) as exc:
        raise click.ClickException(str(exc)) from exc
    from webapp.audit import service as audit
    from webapp.extensions import db

    audit.record(
        "security.master_key_rotated",
        object_type="install",
        actor="cli",
        detail={"resealed": count},
    )
    db.session.commit()
    click.echo(
        f"Master key rotated; {count} secrets re-encrypted. Back up the new "
        f"{Path(current_app.instance_path) / 'master.key'} now."
    )


@click.command("copy-database")
@click.argument("source_url")
@with_appcontext
def copy_database(source_url: str) -> None:
    """Copy every row of SOURCE_URL (e.g. sqlite:///instance/certdesk.db) into DATABASE_URL.

    The target is migrated first and must be empty; ids, sealed secrets and the audit chain carry
    over (keep the same instance folder and master key). Stop CertDesk while it runs."""
    from webapp import dbcopy
    from webapp.audit import service as audit
    from webapp.extensions import db

    _upgrade_database()
    try:
        shown = _shown_url(dbcopy.source(source_url))
        click.echo(f"Copying {shown} into {_shown_url(db.engine.url)} ...")
        counts = dbcopy.copy(source_url, echo=click.echo)
    except dbcopy.CopyError as exc:
        raise click.ClickException(str(exc)) from exc
    result = audit.verify()
    audit.record(
        "database.copied",
        actor="cli",
        object_type="install",
        detail={"from": _shown_url(source_url), "rows": sum(counts.values())},
    )
    db.session.commit()
    click.echo(
        f"Copied {sum(counts.values()):,} rows in {len(counts)} tables. Audit trail: "
        + ("intact." if result.ok else f"broken ({result.problem}), as it was in the source.")
    )


def _shown_url(url) -> str:
    """A database URL (text or URL) without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@click.group("audit")
def audit_group() -> None:
    """The audit trail."""


@audit_group.command("verify")
@click.option(
    "--no-record",
    is_flag=True,
    help="Check only: do not record a check that passed in the trail (audit.verify_passed), "
    "e.g. as a database user who may only read. Without it, a record the database refuses is "
    "said in a line on stderr, and the exit code is still the check's.",
)
@_reads_an_instance
def audit_verify(no_record: bool) -> None:
    """Check the audit hash chain; exit 1 at the first altered or removed row.

    A check that passed is recorded in the trail as audit.verify_passed, unless --no-record."""
    from webapp.audit import service as audit
    from webapp.trailcheck import service as chaincheck

    _require_current_schema()
    if "secretbox" not in current_app.extensions:  # the chain is keyed by the master key
        raise click.ClickException(
            f"there is no master key {Path(current_app.instance_path) / 'master.key'} (nor "
            "CERTDESK_MASTER_KEY): check CERTDESK_INSTANCE, or restore it from your backup"
        )
    result = audit.verify()
    if not result.ok:
        click.echo(f"Audit trail broken: {result.problem}.", err=True)
        sys.exit(1)
    click.echo(f"Audit trail intact: {result.checked} events verified.")
    if not no_record:
        unrecorded = chaincheck.try_record_passed("cli", result)
        if unrecorded:
            click.echo(
                f"The check was not recorded in the audit trail: {unrecorded} (--no-record "
                "skips the record).",
                err=True,
            )


from flask_migrate.cli import db as _migrations  # noqa: E402
from flask_migrate.cli import upgrade as _migrations_upgrade  # noqa: E402


@click.command("upgrade", params=_migrations_upgrade.params)
def db_upgrade(**options) -> None:
    """Upgrade to a later version (serve does it on start)."""
    from webapp import paths

    _refuse_a_newer_database(paths.MIGRATIONS_DIR)
    if not options.get("sql"):  # --sql only prints the migrations' SQL
        _refuse_to_migrate_under_a_running_certdesk(paths.MIGRATIONS_DIR)
    _migrations_upgrade.callback(**options)


# The `db` commands an operator runs: migrate, and see where the database and this version are.
OPERATOR_DB_COMMANDS = ("upgrade", "current", "heads", "history", "show")


# The `db` commands that read the database without changing it (made of nothing: a mistyped
# CERTDESK_INSTANCE is said, not made into a new instance), and those that read only this
# version's migration scripts (no instance needed).
DB_READING = ("current",)
DB_SCRIPTS_ONLY = ("heads", "history", "show", "branches", "list-templates")


def _db_group_callback(directory: str | None, x_arg: tuple) -> None:
    """Flask-Migrate's (its options go in ``g``), with the app made as the command needs: the
    instance made for those that migrate, not for DB_READING or DB_SCRIPTS_ONLY."""
    from flask import g

    if not current_app:  # not run inside an app made already (flask --app webapp db ...)
        ctx = click.get_current_context()
        app = _make_app(prepare=False)
        ctx.with_resource(app.app_context())
        if ctx.invoked_subcommand in DB_READING:
            _prepare(app, make=False)
            _require_tables()
        elif ctx.invoked_subcommand not in DB_SCRIPTS_ONLY:
            _prepare(app)
    g.directory = directory
    g.x_arg = x_arg


class _MigrationsGroup(click.Group):
    """Its help lists the commands an operator runs apart from the rest of Flask-Migrate's,
    which make migrations or move the version a database records (all still run)."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        width = formatter.width - 6 - max(len(name) for name in names)
        for title, chosen in (
            ("Commands", [n for n in names if n in OPERATOR_DB_COMMANDS]),
            ("For CertDesk's developers", [n for n in names if n not in OPERATOR_DB_COMMANDS]),
        ):
            with formatter.section(title):
                formatter.write_dl(
                    [(n, self.commands[n].get_short_help_str(width)) for n in chosen]
                )


# Flask-Migrate's `db` commands, its `upgrade` saying what to do with a database a newer CertDesk
# migrated, as serve does, instead of Alembic's "Can't locate revision".
db_group = _MigrationsGroup(
    "db",
    params=_migrations.params,
    callback=_db_group_callback,
    help="The database's migrations: `upgrade` applies those this version brings (serve does it "
    "on start), `current` names the one the database is at.",
    epilog="The commands for CertDesk's developers write migrations, or change the version a "
    "database records without migrating it. To go back to an earlier version of CertDesk, "
    "restore the backup made before the upgrade (README: Upgrading).",
    commands={**_migrations.commands, "upgrade": db_upgrade},
)

from entrust_sandbox.cli import sandbox  # noqa: E402  (the one place webapp touches the sandbox)

COMMANDS = [serve, create_admin, rotate_master_key, copy_database, audit_group, db_group, sandbox]


def _make_app(*_args, prepare: bool = True):
    """The app of a command. With ``prepare``, its instance made ready once its database has
    answered (see webapp.prepare_instance); without, nothing is written yet (serve holds its port
    first) and _prepare does it."""
    os.umask(0o077)  # whatever a command writes in the instance folder is its owner's alone
    problem = _database_url_problem(os.environ.get("DATABASE_URL"))
    if problem is not None:
        _cannot_start(problem)
    with _stops_the_start():
        app = create_app(prepare=False)
    if prepare:
        _prepare(app)
    return app


def _prepare(app, *, make: bool = True) -> None:
    from webapp import prepare_instance

    with _stops_the_start():
        prepare_instance(app, database_required=True, make=make)


@contextlib.contextmanager
def _stops_the_start():
    """A setting, the master key or the instance folder found unusable: said in a line."""
    from webapp.config import ConfigError
    from webapp.security.secretbox import MasterKeyError

    try:
        yield
        return
    except (MasterKeyError, ConfigError) as exc:
        problem = str(exc)
    except OSError as exc:  # the instance folder cannot be made or read (a file, no permission)
        from webapp import config

        where = exc.filename or config.instance_path()
        reason = exc.strerror or str(exc)
        if isinstance(exc, FileExistsError) and not Path(where).is_dir():
            reason = "it is a file, not a folder"
        problem = (
            f"cannot use the instance folder {where}: {reason}; set "
            "CERTDESK_INSTANCE to a folder this user owns"
        )
    _cannot_start(problem)


def _cannot_start(problem: str):
    click.echo(f"CertDesk cannot start: {problem}", err=True)
    sys.exit(2)


def _database_url_problem(value: str | None) -> str | None:
    """What is wrong with DATABASE_URL, when it is no URL or needs a driver this install lacks,
    said with what to do rather than met as a traceback at its first use."""
    from sqlalchemy import exc
    from sqlalchemy.engine import make_url

    if not value:
        return None
    try:
        url = make_url(value)
    except exc.ArgumentError:
        return (
            "DATABASE_URL is not a database URL; for PostgreSQL it reads "
            "postgresql+psycopg://USER:PASSWORD@HOST/DATABASE"
        )
    try:
        url.get_dialect().import_dbapi()
    except (exc.NoSuchModuleError, ImportError) as error:
        return (
            f"DATABASE_URL {_shown_url(url)} needs what this install lacks ({error}); for "
            "PostgreSQL, install the extra (pip install '.[postgres]') and start the URL with "
            "postgresql+psycopg://"
        )
    return None


def _shown_host(host: str, trusted: list | None) -> str:
    """The name the printed links use: the address served on (a local one for "every
    address"), or, when TRUSTED_HOSTS leaves that out, the first name it lists (another would
    be answered 400)."""
    from werkzeug.sansio.utils import host_is_trusted

    shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
    if trusted and not host_is_trusted(shown, trusted):
        shown = next((name for name in trusted if not name.startswith(".")), shown)
    return f"[{shown}]" if ":" in shown else shown


def _print_version(ctx: click.Context) -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        shown = version("certdesk")
    except PackageNotFoundError:  # run from a checkout that was never installed
        shown = "(not installed)"
    click.echo(f"CertDesk {shown}")
    ctx.exit()


class _Commands(FlaskGroup):
    """Flask's command group, whose commands are all its own: listing them (`certdesk --help`)
    or looking one up (a mistyped name) makes no app, so writes no instance folder."""

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return click.Group.get_command(self, ctx, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return click.Group.list_commands(self, ctx)


cli = _Commands(
    name="certdesk",
    create_app=_make_app,
    # No development server, shell or route list: `serve` is how CertDesk runs (it migrates,
    # starts the scheduler and serves with waitress); `run` would do none of that.
    add_default_commands=False,
    # Flask's own options (--app, --env-file, --debug, and --version giving Flask's) name
    # nothing of CertDesk's: it makes its own app, reads its settings from CERTDESK_* variables
    # (README), and runs no debugger. --version is CertDesk's.
    add_version_option=False,
    load_dotenv=False,
    help="CertDesk: certificates bought from Entrust, managed on-prem.",
)
cli.params = [p for p in cli.params if p.name not in ("env_file", "app", "debug")]
cli.params.append(
    click.Option(
        ["--version"],
        is_flag=True,
        expose_value=False,
        is_eager=True,
        help="Show CertDesk's version and exit.",
        callback=lambda ctx, _param, value: _print_version(ctx) if value else None,
    )
)
for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    from sqlalchemy.exc import DatabaseError, OperationalError

    try:
        cli.main(prog_name="certdesk")
    except DatabaseError as exc:
        # The database server is down, refuses us, or is not there (OperationalError); or the
        # SQLite file is no database (a bad copy restored: DatabaseError itself). Errors of a
        # statement (IntegrityError and the like) are not the database's and keep their traceback.
        if type(exc) not in (OperationalError, DatabaseError):
            raise
        where = os.environ.get("DATABASE_URL")
        shown = _shown_url(where) if where else _sqlite_file_shown()
        click.echo(f"CertDesk cannot use its database {shown}: {exc.orig}", err=True)
        sys.exit(2)


def _sqlite_file_shown() -> str:
    """The default SQLite file, as a person finds it (the instance folder's certdesk.db)."""
    from webapp import config

    return str(Path(config.instance_path()) / "certdesk.db")
