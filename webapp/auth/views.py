from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf.csrf import generate_csrf

from webapp import urls
from webapp.audit import service as audit
from webapp.auth import service
from webapp.security import rbac
from webapp.validation import InputError

bp = Blueprint("auth", __name__)


@bp.before_app_request
def _client_address():
    """The client's address for this request (through trusted reverse proxies: Admin >
    Settings), for sign-in throttling and the audit trail; and whether the browser reached such
    a proxy over HTTPS (the session cookie is then Secure: webapp.security.headers)."""
    if request.endpoint == "static":
        remote = request.remote_addr or ""
        g.client_address = service.canonical_address(remote) or remote
        return
    headers = request.headers
    g.client_address = service.client_address(request.remote_addr, headers.get("X-Forwarded-For"))
    proto = headers.get("X-Forwarded-Proto")
    g.https_at_proxy = bool(proto) and service.https_at_proxy(request.remote_addr, proto)


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths, so a crafted link cannot send the user elsewhere."""
    return urls.local_path(target, url_for("dashboard.index"))


@bp.route("/login", methods=["GET", "POST"])
@rbac.public
def login():
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    error, username, retry_after = None, "", None
    if request.method == "POST":
        username = request.form.get("username", "")
        try:
            user, token = service.authenticate(
                username,
                request.form.get("password", ""),
                g.client_address,
                request.user_agent.string,
            )
        except service.LoginRefused as exc:
            error, retry_after = str(exc), exc.retry_after
        else:
            _start(user, token)
            return redirect(_safe_next(request.args.get("next")))
    page = render_template(
        "auth/login.html", error=error, username=username, needs_setup=not service.any_users()
    )
    if retry_after:  # held back by the throttles: Too Many Requests, and when to try again
        return page, 429, {"Retry-After": str(retry_after)}
    return page, 401 if error else 200


@bp.get("/session")
@rbac.public
def session_state():
    """How long the browser's session has left, for a page's warning before it ends and its
    keeping the session open while the user types (static/js/app.js). Asked with
    ``X-Session-Peek``, the asking is not activity. The form token goes with it: a page kept
    open while its user signs in again in another tab takes the new session's token, so that
    what was typed in it can still be sent."""
    if not current_user.is_authenticated:
        return {"signed_in": False, "said": "You are signed out."}, 401
    ends_in, how = service.session_ends_in(session.get(service.SESSION_TOKEN_KEY))
    return {"signed_in": True, "ends_in": ends_in, "how": how, "csrf": generate_csrf()}


def _start(user, token: str) -> None:
    """A new cookie session at sign-in, carrying the server-side session's token."""
    session.clear()
    login_user(user)
    session.permanent = True
    session[service.SESSION_TOKEN_KEY] = token


def _with_new_password(errors: dict, begin, done_words: str):
    """A form's new password, typed twice, given to ``begin(password, again)``, which returns the
    user and the token of their new server-side session: the browser goes on in it, at the
    dashboard (the response). None when the form has errors (noted in ``errors``)."""
    try:
        user, token = begin(request.form.get("password", ""), request.form.get("password2", ""))
    except InputError as exc:
        errors.update(exc.as_errors())
        return None
    _start(user, token)
    flash(done_words, "success")
    return redirect(url_for("dashboard.index"))


@bp.post("/logout")
@rbac.signed_in
def logout():
    service.sign_out(current_user, session.get(service.SESSION_TOKEN_KEY))
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/setup", methods=["GET", "POST"])
@rbac.public
def setup():
    """First-run page: create the first administrator with the token printed on the console."""
    if service.any_users():
        return redirect(url_for("auth.login"))
    token = request.values.get("token", "")
    if not service.setup_token_valid(token):
        if request.method == "POST":  # an attempt to make an administrator without the token
            audit.record_refusal(
                "anonymous",
                request.endpoint,
                request.method,
                request.path,
                "This setup link is missing its token or is no longer valid.",
            )
        return render_template("auth/setup.html", token_ok=False), 403
    errors, form = {}, {"username": "", "full_name": "", "email": ""}
    if request.method == "POST":
        form = {k: request.form.get(k, "") for k in form}
        done = _with_new_password(
            errors,
            lambda password, again: service.complete_setup(
                token,
                form["username"],
                password,
                again,
                form["full_name"],
                g.client_address,
                request.user_agent.string,
                form["email"],
            ),
            "Welcome to CertDesk. Your administrator account is ready.",
        )
        if done is not None:
            return done
    return render_template(
        "auth/setup.html", token_ok=True, token=token, errors=errors, form=form
    ), (422 if errors else 200)


@bp.route("/account/password", methods=["GET", "POST"])
@rbac.signed_in
def change_password():
    """Change your own password (the current one first)."""
    errors: dict[str, str] = {}
    if request.method == "POST":
        user = current_user._get_current_object()
        done = _with_new_password(
            errors,
            lambda password, again: (
                user,
                service.change_own_password(
                    user,
                    request.form.get("current_password", ""),
                    password,
                    again,
                    g.client_address,
                    request.user_agent.string,
                ),
            ),
            "Your password is changed; your other sessions have ended.",
        )
        if done is not None:
            return done
    return render_template("auth/password.html", errors=errors), (422 if errors else 200)
