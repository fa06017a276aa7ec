"""Settings: defaults here, then instance/config.py, then CERTDESK_* environment variables.

The instance folder defaults to ./instance and is set with CERTDESK_INSTANCE. DATABASE_URL selects
the database (SQLite file in the instance folder by default).
"""

import contextlib
import errno
import json
import logging
import os
import secrets
import shlex
import stat
from pathlib import Path

from webapp import privatefile

ENV_PREFIX = "CERTDESK_"
POOL_SIZE = 16  # connections kept open: request threads, job workers, the scheduler


class Defaults:
    SQLALCHEMY_DATABASE_URI = None  # filled from DATABASE_URL or the instance folder
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    MAX_CONTENT_LENGTH = 5 * 1024 * 1024
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_NAME = "certdesk_session"
    # The cookie is sent again when the session changes, which the idle timeout does once a
    # minute while the user is active (webapp.SEEN_EVERY_SECONDS); not at every request.
    SESSION_REFRESH_EACH_REQUEST = False
    IDLE_TIMEOUT_MINUTES = 30
    # However active, a session ends this long after its sign-in (a copied cookie kept alive by
    # a script does not last for ever).
    SESSION_MAX_HOURS = 12
    # Sign-in throttling: after this many failures for one user name from one address, each new
    # try from there waits (1 s, then doubling, up to LOGIN_MAX_WAIT_MINUTES); from one address
    # whatever the names, after LOGIN_FREE_FAILURES_PER_ADDRESS; for one user name from all the
    # addresses it has not signed in from within LOGIN_KNOWN_ADDRESS_DAYS, after
    # LOGIN_FREE_FAILURES_PER_NAME (guesses spread over many addresses). The owner's own
    # addresses never wait for others' failures.
    LOGIN_FREE_FAILURES = 5
    LOGIN_FREE_FAILURES_PER_ADDRESS = 20
    LOGIN_FREE_FAILURES_PER_NAME = 20
    LOGIN_KNOWN_ADDRESS_DAYS = 30
    LOGIN_MAX_WAIT_MINUTES = 15
    LOGIN_FAILURE_WINDOW_HOURS = 24
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    SCHEDULER_ENABLED = True
    ACCESS_LOG = False  # a line at INFO for each request (webapp.accesslog)
    SCHEDULER_TICK_SECONDS = 15
    SCHEDULER_LEASE_SECONDS = 60
    JOBS_RUN_INLINE = False  # tests run background jobs in the request for determinism
    JOBS_STALE_SECONDS = 120  # a job without a heartbeat this long lost its process
    MASTER_KEY = None  # base64; otherwise instance/master.key


def instance_path(overrides: dict | None = None) -> str:
    """CERTDESK_INSTANCE, or ./instance; tests pass INSTANCE_PATH in the config overrides."""
    chosen = (overrides or {}).get("INSTANCE_PATH") or os.environ.get(f"{ENV_PREFIX}INSTANCE")
    return str(Path(chosen or "instance").resolve())


def _coerce(raw: str):
    """Environment values are strings; accept JSON literals (numbers, true/false) too."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def load(app, overrides: dict | None) -> None:
    """Fill app.config from defaults, instance/config.py, the environment, then overrides."""
    app.config.from_object(Defaults)
    app.config.from_pyfile("config.py", silent=True)
    for name in FROM_ENVIRONMENT:
        raw = os.environ.get(f"{ENV_PREFIX}{name}")
        if raw is not None:
            # Numbers and the hosts' list are JSON; the rest is text whatever it looks like (a
            # key of digits alone is not a number).
            app.config[name] = _coerce(raw) if name in NUMBERS or name in JSON_TEXTS else raw
    if os.environ.get("DATABASE_URL"):
        app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    _check_given_secret(app.config.get("SECRET_KEY"))
    if overrides:
        app.config.update(overrides)
    check(app.config)
    # A field of a multipart form (one with a file input) may be as long as the body taken:
    # validation.check_request then refuses one over its own bound, naming it. Flask's 500 kB
    # would refuse a long pasted bundle as an upload over the whole body's limit.
    app.config["MAX_FORM_MEMORY_SIZE"] = app.config["MAX_CONTENT_LENGTH"]

    # Read only: the instance folder and its files are made by make_instance, once the start
    # has found nothing that stops it.
    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        default = Path(app.instance_path) / "certdesk.db"
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{default}"
    _pool_options(app.config)


def make_instance(app) -> None:
    """Make what the instance folder lacks (the folder, the session key, the SQLite file), and
    close what is open to others (see secure_instance)."""
    instance = Path(app.instance_path)
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(instance / "secret_key")
    secure_instance(app)


def read_instance(app) -> None:
    """For a command that reads an instance there already: its session key, if it has one, with
    nothing made (a mistyped CERTDESK_INSTANCE is not made into a new instance)."""
    instance = Path(app.instance_path)
    if instance.exists() and not instance.is_dir():
        raise FileExistsError(errno.EEXIST, "it is a file, not a folder", str(instance))
    path = instance / "secret_key"
    if not app.config.get("SECRET_KEY") and path.exists():
        app.config["SECRET_KEY"] = _instance_secret(path)


class ConfigError(RuntimeError):
    """A setting of the wrong kind; the message names its variable and what it takes."""


# The numeric settings, by kind: (least value, most value, whole numbers only). From the
# environment each is text; one of the wrong kind, or out of its range (NaN and Infinity are
# numbers to JSON), stops the start here, naming it, rather than failing later (a traceback at the
# first sign-in, every order refused, a scheduler whose every tick fails), or being read as
# something else ("False" is a non-empty text, which Python counts as true).
DAY_SECONDS = 24 * 3600
NUMBERS = {
    "IDLE_TIMEOUT_MINUTES": (1, 7 * 24 * 60, True),
    "SESSION_MAX_HOURS": (1, 366 * 24, True),
    "MAX_CONTENT_LENGTH": (1, 1 << 30, True),
    "ORDERS_SETTLE_MARGIN_SECONDS": (0, DAY_SECONDS, False),
    "ECS_RATE_WAIT_MAX_SECONDS": (0, DAY_SECONDS, False),
    "SCHEDULER_LEASE_SECONDS": (1, DAY_SECONDS, False),
    "SCHEDULER_TICK_SECONDS": (0.1, DAY_SECONDS, False),
    "JOBS_STALE_SECONDS": (1, DAY_SECONDS, False),
    "LOGIN_FREE_FAILURES": (1, 10**6, True),
    "LOGIN_FREE_FAILURES_PER_ADDRESS": (1, 10**6, True),
    "LOGIN_FREE_FAILURES_PER_NAME": (1, 10**6, True),
    "LOGIN_KNOWN_ADDRESS_DAYS": (1, 3660, True),
    "LOGIN_MAX_WAIT_MINUTES": (1, 7 * 24 * 60, True),
    "LOGIN_FAILURE_WINDOW_HOURS": (1, 366 * 24, True),
}
YES_NO = ("SCHEDULER_ENABLED", "SESSION_COOKIE_SECURE", "JOBS_RUN_INLINE", "ACCESS_LOG")
# What the environment may set besides those (CERTDESK_<NAME>); any other CERTDESK_ variable
# (CERTDESK_ADMIN_PASSWORD, read by create-admin, or one of another tool) is not a setting, and
# not copied into the app's configuration, where it could have changed Flask's own.
TEXTS = (
    "LOG_LEVEL",
    "TRUSTED_HOSTS",
    "SECRET_KEY",
    "MASTER_KEY",
    "SQLALCHEMY_DATABASE_URI",
    "DEMO_SANDBOX_URL",
    "DEMO_SANDBOX_USER",
    "DEMO_SANDBOX_KEY",
    "DEMO_SANDBOX_KEY_FILE",
)
JSON_TEXTS = ("TRUSTED_HOSTS",)
FROM_ENVIRONMENT = frozenset(NUMBERS) | frozenset(YES_NO) | frozenset(TEXTS)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_YES, _NO = ("true", "yes", "on", "1"), ("false", "no", "off", "0", "")


def check(config) -> None:
    """Check the settings of ``NUMBERS``, ``YES_NO``, LOG_LEVEL and TRUSTED_HOSTS; a yes/no given
    as text becomes True or False, a log level its upper case, one host name given as text a list
    of it. Raises ConfigError."""
    for name, (least, most, whole) in NUMBERS.items():
        value = config.get(name)
        kinds = (int,) if whole else (int, float)
        if value is None:
            continue
        # (NaN is neither within a range nor out of it: "not within" refuses it.)
        if isinstance(value, bool) or not isinstance(value, kinds) or not least <= value <= most:
            what = "a whole number" if whole else "a number"
            raise ConfigError(
                f"{ENV_PREFIX}{name} must be {what} from {least:,} to {most:,}, not {value!r}"
            )
    for name in YES_NO:
        value = config.get(name)
        if value is None or isinstance(value, bool):
            continue
        said = str(value).strip().lower()
        if said not in _YES + _NO:
            raise ConfigError(f"{ENV_PREFIX}{name} must be true or false, not {value!r}")
        config[name] = said in _YES
    level = config.get("LOG_LEVEL")
    if level is not None:
        if not isinstance(level, str) or level.strip().upper() not in LOG_LEVELS:
            raise ConfigError(
                f"{ENV_PREFIX}LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {level!r}"
            )
        config["LOG_LEVEL"] = level.strip().upper()
    given = config.get("TRUSTED_HOSTS")
    hosts = [given.strip()] if isinstance(given, str) and given.strip() else given
    if hosts and not (
        isinstance(hosts, list | tuple)
        and all(isinstance(h, str) and h and not any(c in h for c in ", ") for h in hosts)
    ):
        raise ConfigError(
            f"{ENV_PREFIX}TRUSTED_HOSTS must be a JSON list of host names, such as "
            f'\'["certdesk.example.com", "localhost"]\', not {given!r}'
        )
    if hosts:
        config["TRUSTED_HOSTS"] = list(hosts)


# The fewest characters a session key file may hold (CertDesk makes one of 64). A shorter one (a
# file emptied by a full disk, or cut short by a bad restore) would sign every session and CSRF
# token and key the fingerprints of mistyped sign-in names with next to no secret, or, empty,
# fail every page; it stops the start instead.
SECRET_KEY_LEAST = 32


def _check_given_secret(key) -> None:
    """A session key given in the environment or instance/config.py holds as much secret as the
    one CertDesk makes itself, or the start stops."""
    if key in (None, ""):
        return  # none given: the instance's key file is used
    where = (
        f"{ENV_PREFIX}SECRET_KEY"
        if os.environ.get(f"{ENV_PREFIX}SECRET_KEY")
        else "SECRET_KEY in instance/config.py"
    )
    if not isinstance(key, str | bytes) or len(key) < SECRET_KEY_LEAST:
        size = f"{len(key)} characters" if isinstance(key, str | bytes) else "no text"
        raise ConfigError(
            f"{where} holds {size}, not a key of at least {SECRET_KEY_LEAST}: give a longer "
            "random one (python3 -c 'import secrets; print(secrets.token_urlsafe(48))'), or "
            "leave it unset to use the key CertDesk keeps in instance/secret_key"
        )


def _instance_secret(path: Path) -> str:
    """The session-signing key, made once per install and kept in the instance folder (0600)."""
    if not path.exists():
        privatefile.create_once(path, secrets.token_urlsafe(48))  # the first of several workers
    try:
        key = path.read_text().strip()
    except UnicodeDecodeError:
        key = None
    if key is None or len(key) < SECRET_KEY_LEAST:
        what = "is no text" if key is None else f"holds {len(key)} characters"
        raise ConfigError(
            f"the session key {path} {what}, not a key of at least {SECRET_KEY_LEAST}: restore "
            "it from a backup, or remove it to have a new one made (everyone signs in again)"
        )
    return key


# Files of the instance folder that hold secrets or what protects them. The master key is not
# here: found readable by others it stops the start (it may have been copied; see secretbox).
PRIVATE_FILES = ("secret_key",)
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def sqlite_file(uri: str) -> Path | None:
    """The file of a ``sqlite:///...`` database URI (None for memory, another database, or a
    SQLite URI filename such as ``sqlite:///file:PATH?mode=ro&uri=true``, opened as given)."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri[len(prefix) :] in ("", ":memory:"):
        return None
    if uri[len(prefix) :].startswith("file:"):
        return None
    return Path(uri[len(prefix) :].split("?", 1)[0])


def secure_instance(app) -> None:
    """The instance folder owner-only (0700), the SQLite database (with its -wal and -shm) and
    the session key 0600. A database file is made 0600 before SQLite creates it (SQLite gives its
    -wal and -shm files the database file's mode). Anything found open to others is closed, with
    a warning in the log."""
    instance = Path(app.instance_path)
    _owner_only(instance, 0o700)
    paths = [instance / name for name in PRIVATE_FILES]
    database = sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"])
    if database is not None:
        if not database.exists() and database.parent.is_dir():
            with contextlib.suppress(FileExistsError):  # another worker's start made it
                os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        paths += [database] + [Path(f"{database}{side}") for side in SQLITE_SIDE_FILES]
    for path in paths:
        _owner_only(path, 0o600)


def _owner_only(path: Path, mode: int) -> None:
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if not current & 0o077:
        return
    log = logging.getLogger(__name__)
    try:
        os.chmod(path, mode)
    except OSError as exc:
        log.warning(
            "%s is readable by other users (mode %o) and could not be changed (%s); "
            "make it owner-only: chmod %o %s",
            path,
            current,
            exc.strerror,
            mode,
            shlex.quote(str(path)),
        )
    else:
        log.warning(
            "%s was readable by other users (mode %o); it is now owner-only (mode %o)",
            path,
            current,
            mode,
        )


def _pool_options(config) -> None:
    """Keep a connection open for each request thread (waitress serves 8 at once), the job
    workers and the scheduler: with fewer, connections beyond the pool are opened and closed
    again at every request under load (a new PostgreSQL connection costs milliseconds). Options
    given in SQLALCHEMY_ENGINE_OPTIONS win."""
    uri = config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite") and (":memory:" in uri or uri.rstrip("/") == "sqlite:"):
        return
    options = dict(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    options.setdefault("pool_size", POOL_SIZE)
    options.setdefault("max_overflow", 10)
    # The connection used last is handed out next: with one request of a worker running at a
    # time (webapp.turns) that is mostly the same one, whose SQLite page cache is warm.
    options.setdefault("pool_use_lifo", True)
    config["SQLALCHEMY_ENGINE_OPTIONS"] = options
