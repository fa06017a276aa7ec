"""Error pages for normal requests, and a banner fragment for htmx requests."""

from __future__ import annotations

import logging
import sqlite3

from flask import current_app, g, has_request_context, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import (
    Forbidden,
    HTTPException,
    InternalServerError,
    MethodNotAllowed,
    NotFound,
)

from webapp.extensions import db, login_manager
from webapp.htmx import is_htmx
from webapp.security import rbac
from webapp.validation import FieldTooLong

log = logging.getLogger(__name__)

TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Changed meanwhile",
    413: "File too large",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Busy",
}

# Said instead of Werkzeug's stock texts ("...read-protected or not readable by the server",
# "If you entered the URL manually please check your spelling"), which speak of a web server.
PLAIN = {
    Forbidden.description: (
        "Your role does not allow this page. An administrator can change your role under "
        "Admin › Users."
    ),
    NotFound.description: (
        "There is no such page: the address is wrong, or what it showed has been deleted."
    ),
    MethodNotAllowed.description: (
        "This address is where a button or a form sends its work; it is not a page to open. "
        "Go back to the page the button is on, or start from the menu."
    ),
}


def plain(description: str | None) -> str:
    """What a refusal or an error says to the person: CertDesk's words for Werkzeug's stock ones."""
    return PLAIN.get(description, description or "")


# PostgreSQL's codes for a lock not had: serialization failure, deadlock, lock not available.
_BUSY_SQLSTATES = {"40001", "40P01", "55P03"}
BUSY_RETRY_SECONDS = 5


def _respond(code: int, message: str, headers: dict | None = None, title: str = ""):
    title = title or TITLES.get(code, "Error")
    if is_htmx():
        body = render_template("_banner.html", level="error", title=title, message=message)
        return body, code, {"HX-Retarget": "#banner", "HX-Reswap": "innerHTML", **(headers or {})}
    return render_template("error.html", code=code, title=title, message=message), code, headers


def handle_http(exc: HTTPException):
    code = exc.code or 500
    if code == 413 and not isinstance(exc, FieldTooLong):
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        size = request.content_length
        if size is not None and limit and size <= limit:  # within the limit: too many parts
            parts = request.max_form_parts
            return _respond(
                413,
                f"The form sent more than {parts:,} fields and files; CertDesk takes at most "
                f"{parts:,} at once. Send fewer files at a time.",
                title="Too many files",
            )
        limit_mb = limit // (1024 * 1024)
        return _respond(413, f"The upload is larger than the {limit_mb} MiB limit.")
    if isinstance(exc, FieldTooLong):  # a search or a form field, not a file
        return _respond(413, exc.description, title="Too long")
    return _respond(code, plain(exc.description) or TITLES.get(code, ""))


def handle_csrf(exc: CSRFError):
    if _signed_out_of(request.endpoint):
        # Signed out meanwhile (in another tab, idle, ended by an administrator): the form's
        # token went with the session. The sign-in page says so, rather than "expired".
        return login_manager.unauthorized()
    if is_htmx():  # the page's token is stale: a new page has the session's
        return _respond(
            400,
            "The form had expired or was not sent from CertDesk. Reload the page and try again.",
        )
    # A form sent from a page opened before the session changed (signed in again in another tab):
    # reloading this answer sends the same token again, whereas going back opens the form anew,
    # with the browser's own copy of what was typed in it.
    return _respond(
        400,
        "The form had expired or was not sent from CertDesk, and nothing was changed. Go back to "
        "the form: what you typed in it is still there (passwords and files excepted); send it "
        "again from there.",
    )


def _signed_out_of(endpoint: str | None) -> bool:
    """Whether the request is for a page that needs a signed-in user, and none is."""
    view = current_app.view_functions.get(endpoint) if endpoint else None
    if view is None or getattr(view, "access", None) in (None, rbac.PUBLIC):
        return False
    return not current_user.is_authenticated


def handle_500(exc):
    db.session.rollback()
    original = getattr(exc, "original_exception", None)
    # Flask logged an exception it caught itself (with the request's method and path) before
    # handing it here wrapped; one passed on by another handler of ours is logged here.
    if original is None and not isinstance(exc, HTTPException):
        where = f"{request.method} {request.path}" if has_request_context() else "no request"
        log.exception("unhandled error: %s", where, exc_info=exc)
    reference = g.get("request_id") if has_request_context() else ""
    said = f" (reference {reference}, which ends its lines in the log)" if reference else ""
    return _respond(500, f"The error was logged{said}. Try again, or tell your administrator.")


def database_busy(exc: OperationalError) -> bool:
    """Whether the database refused for a lock held elsewhere (SQLite's write lock past the busy
    timeout, or a PostgreSQL deadlock, serialization failure or lock timeout): trying again a
    moment later succeeds, unlike a broken connection or a bad statement."""
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        primary = (getattr(orig, "sqlite_errorcode", None) or 0) & 0xFF  # extended codes too
        return primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return getattr(orig, "sqlstate", None) in _BUSY_SQLSTATES


def _lost_to_another(exc, code: int, what: str, message: str, headers=None):
    """A request that lost to another's write: rolled back, one line in the log (no trace), and
    told in words (503 busy, 409 conflict)."""
    db.session.rollback()
    log.warning("%s: %s %s (%s)", what, request.method, request.path, type(exc.orig).__name__)
    return _respond(code, message, headers)


def handle_database_error(exc: OperationalError):
    if not database_busy(exc):
        return handle_500(exc)
    return _lost_to_another(
        exc,
        503,
        "database busy, gave up waiting for a lock",
        "CertDesk's database was busy with other work, and this request did not complete. "
        "Try again in a moment.",
        {"Retry-After": str(BUSY_RETRY_SECONDS)},
    )


def handle_conflict(exc: IntegrityError):
    """Two requests wrote the same unique thing at once (two users created under one name, say):
    the one that came second is rolled back and told so, rather than shown a 500. Any other
    broken constraint is a fault of CertDesk's: a logged 500."""
    orig = exc.orig
    unique = (
        "UNIQUE constraint failed" in str(orig)
        if isinstance(orig, sqlite3.IntegrityError)
        else getattr(orig, "sqlstate", None) == "23505"
    )
    if not unique:
        return handle_500(exc)
    return _lost_to_another(
        exc,
        409,
        "conflict, lost to a write made meanwhile",
        "Someone else saved the same thing at the same moment, so this request changed nothing. "
        "Reload the page to see what is there now.",
    )


def init_app(app) -> None:
    app.register_error_handler(IntegrityError, handle_conflict)
    app.register_error_handler(OperationalError, handle_database_error)
    app.register_error_handler(CSRFError, handle_csrf)
    app.register_error_handler(InternalServerError, handle_500)
    app.register_error_handler(HTTPException, handle_http)
