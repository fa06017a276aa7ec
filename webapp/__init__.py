"""CertDesk: the portal's application factory."""

from __future__ import annotations

import importlib
import logging
import time
from datetime import timedelta
from functools import lru_cache
from urllib.parse import urlsplit

from flask import Flask, flash, g, redirect, request, session, url_for
from flask_login import current_user, logout_user
from jinja2 import pass_context
from markupsafe import Markup, escape
from sqlalchemy import inspect

from webapp import (
    accesslog,
    badges,
    columns,
    errors,
    kdfcost,
    logsafe,
    paths,
    pki,
    turns,
    urls,
    validation,
)
from webapp import config as config_module
from webapp.extensions import csrf, db, login_manager, migrate
from webapp.scheduler import scheduler
from webapp.security import csrf as csrf_tokens
from webapp.security import headers, hosts, rbac, secretbox

# Each feature's blueprint module; a module defines ``bp`` at its top.
BLUEPRINTS = [
    "webapp.health",
    "webapp.auth.views",
    "webapp.auth.users_views",
    "webapp.audit.views",
    "webapp.trailcheck.views",
    "webapp.jobs.views",
    "webapp.dashboard.views",
    "webapp.csrs.views",
    "webapp.certificates.views",
    "webapp.credentials.views",
    "webapp.catalog.views",
    "webapp.settings.views",
    "webapp.orders.views",
]

# Feature services: importing them registers their settings, job kinds and hook handlers (the
# blueprints import most of them too; this list makes it explicit and complete).
SERVICES = [
    "webapp.jobs.service",
    "webapp.credentials.clients",
    "webapp.credentials.service",
    "webapp.catalog.service",
    "webapp.keys.service",
    "webapp.csrs.service",
    "webapp.certificates.service",
    "webapp.cas.registry",
    "webapp.orders.service",
    "webapp.orders.importing",
    "webapp.orders.polling",
    "webapp.orders.lifecycle",
    "webapp.trailcheck.service",
]

# How often a signed-in session notes the time of its latest request (for the idle timeout).
SEEN_EVERY_SECONDS = 60

# Modules that register periodic tasks with ``register_periodic(scheduler, app)``.
PERIODIC = [
    "webapp.housekeeping",
    "webapp.catalog.periodic",
    "webapp.orders.periodic",
    "webapp.trailcheck.service",
]


def create_app(config: dict | None = None, *, prepare: bool = True) -> Flask:
    """The application. With ``prepare`` its instance is made ready too (see prepare_instance);
    without, nothing is written until the caller runs prepare_instance."""
    app = Flask(
        __name__,
        instance_path=config_module.instance_path(config),
        instance_relative_config=True,
        template_folder=str(paths.TEMPLATES_DIR),
        static_folder=str(paths.STATIC_DIR),
    )
    app.request_class = validation.Request
    app.url_map.converters["int"] = validation.IdConverter  # before any route is added
    config_module.load(app, config)
    logsafe.install(app.config.get("LOG_LEVEL", "INFO"))

    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    import webapp.models  # noqa: F401  (the whole schema, for Alembic and relationships)

    db.init_app(app)
    is_sqlite = app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    migrate.init_app(app, db, directory=str(paths.MIGRATIONS_DIR), render_as_batch=is_sqlite)
    csrf.init_app(app)
    csrf_tokens.init_app(app)  # the templates' csrf_token(), signed once a session
    _init_login(app)
    app.session_interface = headers.SessionInterface()
    # The browser keeps the cookie as long as a session may last at all; CertDesk ends it sooner
    # on the server (idle, signed out, changed), and can then say why, where a cookie the browser
    # dropped at the idle timeout would leave it only "You are signed out."
    app.permanent_session_lifetime = max(
        timedelta(minutes=app.config["IDLE_TIMEOUT_MINUTES"]),
        timedelta(hours=app.config["SESSION_MAX_HOURS"]),
    )

    for name in SERVICES:
        importlib.import_module(name)
    for name in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(name).bp)
    errors.init_app(app)
    _init_templates(app)
    # One budget of password hashing for all the files a request sends (see webapp.kdfcost).
    app.before_request(kdfcost.start_budget)
    app.teardown_request(kdfcost.end_budget)
    app.before_request(_check_input)
    app.before_request(_check_session)
    app.after_request(_after_request)
    accesslog.init_app(app)  # each request's id, from the first hook on; its line at the end
    hosts.init_app(app)  # TRUSTED_HOSTS: another host's name gets a 400 before Flask sees it

    scheduler.init_app(app)
    for name in PERIODIC:
        importlib.import_module(name).register_periodic(scheduler, app)

    from webapp import cli as cli_module

    for command in cli_module.COMMANDS:
        app.cli.add_command(command)

    app.wsgi_app = turns.wsgi(app.wsgi_app)  # one request of a worker runs at a time
    if prepare:
        prepare_instance(app)
    return app


def prepare_instance(app: Flask, *, database_required: bool = False, make: bool = True) -> None:
    """Make the instance folder and what it lacks (session key, SQLite file, master key), then
    check the master key opens this database's data.

    With ``database_required`` the database is reached first, and one that cannot be (a server
    that does not answer, a file that is no database, a folder that is not there) raises
    SQLAlchemy's error with nothing written: a start that fails there leaves no instance behind.
    Without, an unreachable database is left for /healthz to report. The keys are checked before
    anything is made too (a master key refused, or missing for a database that has sealed data),
    so that a start refused there leaves no instance either. Without ``make``, for a command that
    reads an instance there already, nothing is made at all: its keys are read, and a master key
    it lacks is not made. Done once per app."""
    if app.extensions.get("certdesk_instance_ready"):
        return
    with app.app_context():
        if database_required:
            _reach_database(app)
        box = _check_secretbox(app)
        if make:
            config_module.make_instance(app)
            _init_secretbox(app)
        else:
            config_module.read_instance(app)
            if box is not None:
                app.extensions["secretbox"] = box
    app.extensions["certdesk_instance_ready"] = True


def _reach_database(app: Flask) -> None:
    """Open the database and read its list of tables. A SQLite file still to be made in the
    instance folder (or a folder that exists) is not opened: opening would make it."""
    from pathlib import Path

    database = config_module.sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"])
    to_be_made = database is not None and not database.exists()
    if to_be_made and (database.parent == Path(app.instance_path) or database.parent.is_dir()):
        return
    try:
        with db.engine.connect() as conn:
            inspect(conn).get_table_names()
    finally:
        db.engine.dispose()


def _init_login(app: Flask) -> None:
    from webapp.auth.models import User

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Sign in to continue."
    login_manager.login_message_category = "info"

    @login_manager.user_loader
    def load_user(ident: str):
        user_id, _, version = ident.partition(":")
        if not user_id.isdigit() or not version.isdigit():
            return None
        user = db.session.get(User, int(user_id))
        if user is None or not user.active or user.session_version != int(version):
            return None
        return user

    @login_manager.unauthorized_handler
    def unauthorized():
        from webapp.auth.service import any_users
        from webapp.htmx import is_htmx

        back = _page_to_return_to()
        target = url_for("auth.login", next=back) if back else url_for("auth.login")
        if any_users():  # before setup the sign-in page says how to make the first administrator
            flash("Sign in to continue.", "info")
        if is_htmx():  # the whole page goes to the sign-in page, not a part of it
            return "", 401, {"HX-Redirect": target}
        return redirect(target)


def _page_to_return_to() -> str | None:
    """The page to come back to after signing in: the one asked for, or for a part of a page
    (htmx: a list sorted, a progress bar polled, a button's answer) or a form sent, the page the
    browser shows (which a GET opens again, unlike the address of the part or the form's POST),
    as sorted, paged or filtered by the request when it asks for that page itself; None when
    that page is not one of CertDesk's."""
    from webapp.htmx import is_htmx

    if request.method in ("GET", "HEAD") and not is_htmx():
        return request.full_path.rstrip("?")
    shown = request.headers.get("HX-Current-URL") if is_htmx() else request.referrer
    parts = urlsplit(shown or "")
    if parts.scheme not in ("http", "https") or parts.netloc != request.host:
        return None
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if request.method == "GET" and request.path == parts.path:
        path = request.full_path.rstrip("?")  # the same page sorted, paged or filtered
    return urls.local_path(path, "") or None


def _check_input():
    """The bounds every route's input stays within (see webapp.validation)."""
    from flask import current_app

    validation.check_request(request, current_app.view_functions.get(request.endpoint))
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        validation.refuse_pasted_keys(request.form, pki.holds_private_key)


SESSION_ENDED = {
    "idle": "You were signed out after a period of inactivity.",
    "expired": "Your session reached its time limit, which signed you out. Sign in again.",
    "ended": "Your session has ended. Sign in again.",
    "signed out": "You signed out (in another tab or window). Sign in again.",
    "role": (
        "An administrator changed your role, which signed you out. Sign in again to go on with "
        "what your new role allows."
    ),
    "own role": (
        "You changed your own role, which signed you out. Sign in again to go on with what your "
        "new role allows."
    ),
    "disabled": "An administrator disabled your account, which signed you out.",
    "administrator": "An administrator ended your session. Sign in again.",
    "own": "You ended your open sessions, this one included. Sign in again.",
    "password": "Your password was changed, which signed you out. Sign in with the new one.",
    "reset": (
        "An administrator reset your password, which signed you out. Sign in with the password "
        "they give you."
    ),
}


def _check_session():
    """A signed-in cookie must carry a server-side session that is still open and not idle
    (see auth.service.resume_session); otherwise the browser is signed out."""
    if request.endpoint in ("static", "health.healthz") or "_user_id" not in session:
        return None
    from webapp.auth import service as auth

    # A page asking how long its session has left (static/js/app.js) is not activity.
    peek = request.endpoint == "auth.session_state" and bool(request.headers.get("X-Session-Peek"))
    user, reason = auth.resume_session(
        session.get(auth.SESSION_TOKEN_KEY), session["_user_id"], touch=not peek
    )
    if user is not None:
        # Held for the rest of the request: the session's identity map holds rows only while
        # something refers to them, and Flask-Login's user loader then finds this very row
        # instead of reading the user again.
        g.session_user = user
        # The cookie's expiry moves on when the session changes: noted once a minute while the
        # user is active, not at every request (each change signs and sends a new cookie).
        now = int(time.time())
        if not peek and now - session.get("seen", 0) >= SEEN_EVERY_SECONDS:
            session["seen"] = now
        return None
    logout_user()
    session.clear()
    said = SESSION_ENDED.get(reason, SESSION_ENDED["ended"])
    if request.endpoint == "auth.session_state":  # the page says it, and keeps what was typed
        return {"signed_in": False, "said": said}, 401
    if request.method == "POST":  # a form of a page opened before: refused, and said so
        said += " What you sent was not saved or done."
    flash(said, "info")
    if request.endpoint in ("auth.login", "auth.setup"):
        return None
    return login_manager.unauthorized()


def _after_request(response):
    response.vary.add("HX-Request")
    return headers.apply(response)


def _init_templates(app: Flask) -> None:
    @pass_context
    def can(context, permission: str) -> bool:
        # The user the page is rendered for (Flask-Login puts it in the context), not the proxy,
        # which looks the user up again at every read (a quarter of this call's cost); a macro
        # imported without the context reads the proxy.
        user = context.get("current_user")
        if user is None:
            user = current_user._get_current_object()
        return rbac.has_permission(user, permission)

    def pager(*args, **kwargs):
        # A global rather than an import, so that a block rendered alone (htmx) can call it.
        return app.jinja_env.get_template("_pager.html").module.pager(*args, **kwargs)

    app.jinja_env.globals.update(
        can=can,
        rbac=rbac,
        role_labels=rbac.ROLE_LABELS,
        key_type_labels=pki.KEY_TYPE_LABELS,
        pager=pager,
        sort_th=columns.sort_th,
        sort_fields=columns.sort_fields,
        url_for=urls.url_for,
    )
    # What a list shows in every row is a filter: Jinja calls a filter directly, a function
    # through its context (about 1.6 us a call, 80 us for a page of 50 rows).
    app.jinja_env.filters["status_badge"] = badges.html  # a status as a coloured badge
    app.jinja_env.filters["dt"] = _format_dt
    app.jinja_env.filters["day"] = lambda value: value.strftime("%Y-%m-%d")  # a date in a list
    app.jinja_env.filters["tone"] = badges.tone
    app.jinja_env.filters["status_label"] = badges.label
    app.jinja_env.filters["num"] = lambda n: f"{n:,}" if isinstance(n, int) else n
    # A count taken up to ``cap`` + 1 rows: beyond the cap, "more than" it.
    app.jinja_env.filters["counted"] = lambda n, cap: f"more than {cap:,}" if n > cap else f"{n:,}"


def _format_dt(value, fmt: str = "%Y-%m-%d %H:%M UTC"):
    """Server-side UTC text inside <time>; static/js/app.js shows it in the viewer's local time.

    Lists call it for every row, often with the same dates (a client's domains share their OV
    expiry): the result is kept for the last few thousand (time, format) pairs."""
    if value is None:
        return ""
    return _time_element(value, fmt)


@lru_cache(maxsize=4096)
def _time_element(value, fmt: str) -> Markup:
    # An ISO time has nothing to escape; the formatted text is escaped.
    if "%H" not in fmt:
        # A day (an OV expiry, the day a row went): shown as written, not turned into a local
        # time of day ("01/06/2028, 12:00 AM") or moved to the day before west of UTC.
        return Markup(  # noqa: S704
            f'<time datetime="{value.date().isoformat()}" data-local="day">'
            f"{escape(value.strftime(fmt))}</time>"
        )
    return Markup(  # noqa: S704
        f'<time datetime="{value.isoformat()}">{escape(value.strftime(fmt))}</time>'
    )


def _check_secretbox(app: Flask) -> secretbox.SecretBox | None:
    """What _init_secretbox refuses, found with nothing made (no key file, no SQLite file): the
    master key's box, or None while there is no key file and nothing sealed needs one."""
    from pathlib import Path

    database = config_module.sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"])
    # A SQLite file still to be made is not opened: opening it would make it.
    new_file = database is not None and not database.exists()
    check = None if new_file else _stored_key_check()[1]
    box = secretbox.find_box(
        Path(app.instance_path), app.config.get("MASTER_KEY"), sealed=check is not None
    )
    if box is not None and check is not None:
        secretbox.verify_key_check(box, check)
    db.session.remove()
    return box


def _stored_key_check() -> tuple[bool, str | None]:
    """Whether the database has its settings table yet, and the master-key check kept there."""
    from webapp.settings import service as settings
    from webapp.settings.models import Setting

    try:
        has_table = inspect(db.engine).has_table(Setting.__tablename__)
    except Exception:  # database unreachable: serve reports it on /healthz
        has_table = False
    return has_table, settings.get(secretbox.KEY_CHECK_SETTING) if has_table else None


def _init_secretbox(app: Flask) -> None:
    """Load the master key and check it opens this database's data; refuse to start otherwise."""
    from pathlib import Path

    from webapp.settings import service as settings

    instance = Path(app.instance_path)
    env_key = app.config.get("MASTER_KEY")
    has_table, check = _stored_key_check()
    box = secretbox.load_box(instance, env_key, may_create=check is None)
    if check is None and has_table:
        # Workers starting together on a new database: the first check stored is the one all
        # of them verify.
        settings.put_new(secretbox.KEY_CHECK_SETTING, secretbox.key_check(box))
        db.session.commit()
        check = settings.get(secretbox.KEY_CHECK_SETTING)
    if check is not None:
        secretbox.verify_key_check(box, check)
    app.extensions["secretbox"] = box
    db.session.remove()
