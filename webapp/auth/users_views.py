"""Admin > Users."""

from __future__ import annotations

import functools

from flask import Blueprint, abort, flash, render_template, request, session, url_for
from flask_login import current_user

from webapp import htmx
from webapp.auth import service
from webapp.paging import page_args, paginate
from webapp.security import rbac
from webapp.validation import InputError

bp = Blueprint("users", __name__, url_prefix="/admin/users")


def _user_or_404(user_id: int):
    user = service.get_user(user_id)
    if user is None:
        abort(404)
    return user


@bp.get("/")
@rbac.require(rbac.USERS_MANAGE)
def index():
    page, per_page = page_args(50)
    result = paginate(service.users_query(), page, per_page)
    args = {k: v for k, v in request.args.items() if k == "per_page"}
    return htmx.render(
        "users/index.html",
        block="results",
        page=result,
        args=args,
        roles=rbac.ROLE_LABELS,
        slowed=service.slowed_sign_ins(),
        slowed_beyond=service.more_failures_than_looked_at(),
        slowed_looked_at=service.SLOWED_LOOKED_AT,
    )


@bp.post("/throttle/clear")
@rbac.require(rbac.USERS_MANAGE)
def clear_throttle():
    """Let a user name sign in again at once from an address where failures made it wait."""
    name, address = request.form.get("username", ""), request.form.get("address", "")
    cleared = service.clear_slowed(current_user, name, address)
    where = f"from {address}" if address != service.ANY_NEW_ADDRESS else "from every address"
    flash(f"{cleared} failed sign-in(s) of {name} {where} forgotten.", "success")
    return htmx.redirect(url_for("users.index"))


@bp.route("/new", methods=["GET", "POST"])
@rbac.require(rbac.USERS_MANAGE)
def new():
    errors, form = {}, {"username": "", "full_name": "", "email": "", "role": "operator"}
    if request.method == "POST":
        form = {k: request.form.get(k, "") for k in form}
        try:
            user = service.create_user(
                current_user,
                form["username"],
                request.form.get("password", ""),
                form["role"],
                form["full_name"],
                form["email"],
            )
        except InputError as exc:
            errors.update(exc.as_errors())
            service.record_refused_create(current_user, form["username"], form["role"], exc)
        else:
            flash(f"User {user.username} created.", "success")
            return htmx.redirect(url_for("users.index"))
    return render_template("users/new.html", form=form, errors=errors, roles=rbac.ROLE_LABELS), (
        422 if errors else 200
    )


def _detail(user, errors=None, status=200):
    return render_template(
        "users/detail.html",
        user=user,
        roles=rbac.ROLE_LABELS,
        errors=errors or {},
        sessions=service.sessions_of(user),
        idle_before=service.idle_before(),
        expired_before=service.expired_before(),
        end_reasons=service.END_REASONS,
        this_session=functools.partial(
            service.is_this_session, token=session.get(service.SESSION_TOKEN_KEY)
        ),
    ), status


@bp.get("/<int:user_id>")
@rbac.require(rbac.USERS_MANAGE)
def detail(user_id: int):
    return _detail(_user_or_404(user_id))


def _apply(user_id: int, action: str, change):
    """Make ``change`` to the user; a refused one is shown on the user's page and recorded in
    the audit trail as ``action`` (outcome refused)."""
    user = _user_or_404(user_id)
    errors, status = {}, 422
    try:
        message = change(user)
    except InputError as exc:
        errors[exc.field or "form"] = str(exc)
        if isinstance(exc, service.ChangedMeanwhile):
            status = 409
        service.record_refused(current_user, action, exc, user)
    else:
        flash(message, "success")
        if user.id == current_user.id and user.role != "admin":
            # One's own role changed: the session has ended, and the page of users is no longer
            # open to the new role; sign in again at the dashboard, not at a refusal.
            return htmx.redirect(url_for("dashboard.index"))
        return htmx.redirect(url_for("users.detail", user_id=user.id))
    return _detail(user, errors, status)


@bp.post("/<int:user_id>/role")
@rbac.require(rbac.USERS_MANAGE)
def role(user_id: int):
    def change(user):
        opened = request.form.get("opened_role")
        service.change_role(current_user, user, request.form.get("role", ""), opened)
        return f"{user.username} is now {rbac.ROLE_LABELS[user.role]}."

    return _apply(user_id, "user.role_change", change)


@bp.post("/<int:user_id>/profile")
@rbac.require(rbac.USERS_MANAGE)
def profile(user_id: int):
    def change(user):
        f = request.form
        opened = {k: f[f"opened_{k}"][:1000] for k in ("full_name", "email") if f"opened_{k}" in f}
        changed = service.change_profile(
            current_user, user, f.get("full_name", "")[:1000], f.get("email", "")[:1000], opened
        )
        return f"Saved the name and e-mail of {user.username}." if changed else "Nothing changed."

    return _apply(user_id, "user.profile_change", change)


@bp.post("/<int:user_id>/active")
@rbac.require(rbac.USERS_MANAGE)
def active(user_id: int):
    enable = request.form.get("active") == "1"

    def change(user):
        service.set_active(current_user, user, enable)
        return f"{user.username} is {'enabled' if enable else 'disabled'}."

    return _apply(user_id, "user.enable" if enable else "user.disable", change)


@bp.post("/<int:user_id>/password")
@rbac.require(rbac.USERS_MANAGE)
def password(user_id: int):
    def change(user):
        service.typed_alike(request.form.get("password", ""), request.form.get("password2", ""))
        service.reset_password(current_user, user, request.form.get("password", ""))
        return f"Password of {user.username} reset; their open sessions have ended."

    return _apply(user_id, "user.password_reset", change)


@bp.post("/<int:user_id>/sessions/end")
@rbac.require(rbac.USERS_MANAGE)
def end_sessions(user_id: int):
    def change(user):
        ended = service.end_sessions(current_user, user)
        return f"{ended} open session{'s' if ended != 1 else ''} of {user.username} ended."

    return _apply(user_id, "user.sessions_ended", change)
