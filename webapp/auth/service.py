"""Users, sign-in, throttling and first-run setup. Every change is audited in its transaction."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, func, select

from webapp.audit import service as audit
from webapp.auth.models import LoginAttempt, User
from webapp.dbtypes import utcnow
from webapp.extensions import db
from webapp.security import rbac
from webapp.settings import service as settings

MIN_PASSWORD_LENGTH = 10
SETUP_TOKEN_KEY = "first_run_token_sha256"  # noqa: S105 (a setting name)


class UserError(ValueError):
    """Input that cannot be accepted; ``field`` names the form field it belongs to."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class LoginRefused(Exception):
    pass


def normalise_username(username: str) -> str:
    return (username or "").strip().lower()


def validate_username(username: str) -> str:
    name = normalise_username(username)
    if not name or len(name) > 64 or not all(c.isalnum() or c in "._-@" for c in name):
        raise UserError("Use 1-64 letters, digits, dots, dashes, underscores or @.", "username")
    return name


def validate_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise UserError(f"Use at least {MIN_PASSWORD_LENGTH} characters.", "password")


def by_username(username: str) -> User | None:
    return db.session.execute(
        select(User).where(User.username == normalise_username(username))
    ).scalar()


def any_users() -> bool:
    return db.session.execute(select(User.id).limit(1)).first() is not None


# -- sign-in -----------------------------------------------------------------------------------


def _recent_failures(column, value) -> int:
    window = timedelta(minutes=current_app.config["LOGIN_LOCKOUT_MINUTES"])
    return db.session.execute(
        select(func.count())
        .select_from(LoginAttempt)
        .where(
            column == value, LoginAttempt.success.is_(False), LoginAttempt.at >= utcnow() - window
        )
    ).scalar_one()


def authenticate(username: str, password: str, address: str) -> User:
    """Check a sign-in; raise LoginRefused with the message to show. Records and audits the try."""
    name = normalise_username(username)
    cfg = current_app.config
    minutes = cfg["LOGIN_LOCKOUT_MINUTES"]
    if (
        _recent_failures(LoginAttempt.username, name) >= cfg["LOGIN_MAX_FAILURES_PER_USER"]
        or _recent_failures(LoginAttempt.address, address) >= cfg["LOGIN_MAX_FAILURES_PER_ADDRESS"]
    ):
        audit.record(
            "auth.login_throttled",
            object_type="user",
            object_id=name,
            outcome="refused",
            actor=name or "-",
        )
        db.session.commit()
        raise LoginRefused(
            f"Too many failed sign-in attempts. Wait {minutes} minutes and try again."
        )
    user = by_username(name)
    ok = user is not None and user.check_password(password or "") and user.active
    db.session.add(LoginAttempt(username=name, address=address, success=ok))
    if not ok:
        audit.record(
            "auth.login_failed",
            object_type="user",
            object_id=name,
            outcome="failure",
            actor=name or "-",
            detail={"reason": "disabled" if user and not user.active else "bad credentials"},
        )
        db.session.commit()
        raise LoginRefused("Wrong user name or password.")
    user.last_login_at = utcnow()
    audit.record("auth.login", object_type="user", object_id=user.id, actor=user)
    db.session.commit()
    return user


def record_logout(user) -> None:
    audit.record("auth.logout", object_type="user", object_id=user.id, actor=user)
    db.session.commit()


def prune_login_attempts() -> int:
    res = db.session.execute(
        delete(LoginAttempt).where(LoginAttempt.at < utcnow() - timedelta(days=2))
    )
    db.session.commit()
    return res.rowcount


# -- user management ---------------------------------------------------------------------------


def _active_admins() -> int:
    return db.session.execute(
        select(func.count()).select_from(User).where(User.role == "admin", User.active.is_(True))
    ).scalar_one()


def _guard_last_admin(user: User, new_role: str | None = None, new_active: bool | None = None):
    loses_admin = (new_role is not None and new_role != "admin") or new_active is False
    if user.role == "admin" and user.active and loses_admin and _active_admins() <= 1:
        raise UserError("This is the last active administrator; make another one first.")


def _check_role(role: str) -> None:
    if role not in rbac.ROLES:
        raise UserError("Choose a role.", "role")


def create_user(actor, username, password, role, full_name="", email="") -> User:
    """Create a user (admin only). Raises UserError on bad or duplicate input."""
    if actor is not None:
        rbac.check(actor, rbac.USERS_MANAGE)
    name = validate_username(username)
    validate_password(password)
    _check_role(role)
    if by_username(name):
        raise UserError("That user name is taken.", "username")
    user = User(
        username=name,
        role=role,
        full_name=(full_name or "").strip()[:120],
        email=(email or "").strip()[:254],
        active=True,
    )
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    audit.record(
        "user.create",
        object_type="user",
        object_id=user.id,
        actor=actor or "cli",
        detail={"username": name, "role": role},
    )
    db.session.commit()
    return user


def get_user(user_id: int) -> User | None:
    return db.session.get(User, user_id)


def change_role(actor, user: User, role: str) -> None:
    rbac.check(actor, rbac.USERS_MANAGE)
    _check_role(role)
    if role == user.role:
        return
    _guard_last_admin(user, new_role=role)
    old, user.role = user.role, role
    user.session_version += 1
    audit.record(
        "user.role_change",
        object_type="user",
        object_id=user.id,
        actor=actor,
        detail={"username": user.username, "from": old, "to": role},
    )
    db.session.commit()


def set_active(actor, user: User, active: bool) -> None:
    rbac.check(actor, rbac.USERS_MANAGE)
    if user.active == active:
        return
    _guard_last_admin(user, new_active=active)
    user.active = active
    user.session_version += 1
    audit.record(
        "user.enable" if active else "user.disable",
        object_type="user",
        object_id=user.id,
        actor=actor,
        detail={"username": user.username},
    )
    db.session.commit()


def reset_password(actor, user: User, password: str) -> None:
    rbac.check(actor, rbac.USERS_MANAGE)
    validate_password(password)
    user.set_password(password)
    user.session_version += 1
    audit.record(
        "user.password_reset",
        object_type="user",
        object_id=user.id,
        actor=actor,
        detail={"username": user.username},
    )
    db.session.commit()


def users_query():
    """Every user by user name (the unique index on it serves the order and the pages)."""
    return select(User).order_by(User.username)


# -- first-run setup ---------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_setup_token() -> str | None:
    """While no user exists, make a fresh one-time setup token (only its hash is stored)."""
    if any_users():
        return None
    token = secrets.token_urlsafe(24)
    settings.put(SETUP_TOKEN_KEY, _digest(token))
    db.session.commit()
    return token


def setup_token_valid(token: str) -> bool:
    stored = settings.get(SETUP_TOKEN_KEY)
    return bool(token and stored) and hmac.compare_digest(stored, _digest(token))


def complete_setup(token: str, username: str, password: str, full_name: str = "") -> User:
    """Create the first administrator with the console token; the token then stops working."""
    if any_users() or not setup_token_valid(token):
        raise UserError("This setup link is no longer valid.")
    name = validate_username(username)
    validate_password(password)
    user = User(username=name, role="admin", full_name=full_name.strip()[:120], active=True)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    settings.delete(SETUP_TOKEN_KEY)
    audit.record(
        "user.create",
        object_type="user",
        object_id=user.id,
        actor=user,
        detail={"username": name, "role": "admin", "via": "first-run setup"},
    )
    db.session.commit()
    return user
