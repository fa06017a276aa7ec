"""Roles and permissions: one check used by views and services alike.

admin: everything. operator: day-to-day certificate work. auditor: read-only: every page but keys,
users and settings.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import abort
from flask_login import current_user
from werkzeug.exceptions import Forbidden

ROLES = ("admin", "operator", "auditor")
ROLE_LABELS = {"admin": "Administrator", "operator": "Operator", "auditor": "Auditor"}

READ = "read"
AUDIT_READ = "audit.read"
AUDIT_VERIFY = "audit.verify"  # check the audit chain now (administrators)
USERS_MANAGE = "users.manage"
SETTINGS_MANAGE = "settings.manage"
CREDENTIALS_MANAGE = "credentials.manage"
CATALOG_SYNC = "catalog.sync"
ORDERS_MANAGE = "orders.manage"  # order, reissue, renew, check status, import
ORDERS_APPROVE = "orders.approve"  # approve, decline, suspend, resume
ORDERS_REVOKE = "orders.revoke"
ORDERS_DELETE = "orders.delete"  # from CertDesk only
CERTIFICATES_MANAGE = "certificates.manage"
CSRS_MANAGE = "csrs.manage"
KEYS_DOWNLOAD = "keys.download"  # operators: only keys they made (checked in the service)
JOBS_VIEW = "jobs.view"

_OPERATOR = {
    READ,
    JOBS_VIEW,
    CATALOG_SYNC,
    ORDERS_MANAGE,
    CERTIFICATES_MANAGE,
    CSRS_MANAGE,
    KEYS_DOWNLOAD,
}
_AUDITOR = {READ, JOBS_VIEW, AUDIT_READ}

PERMISSIONS: dict[str, frozenset[str] | None] = {
    "admin": None,  # None: every permission
    "operator": frozenset(_OPERATOR),
    "auditor": frozenset(_AUDITOR),
}


class PermissionDenied(Forbidden):
    description = "Your role does not allow this."


# Permissions a role holds only while a run-time setting says so: (role, permission) -> a
# function answering yes or no. Features register them (``grant_when``) from their service, which
# may read settings; this module imports nothing of theirs.
_CONDITIONAL: dict[tuple[str, str], Callable[[], bool]] = {}


def grant_when(role: str, permission: str, condition: Callable[[], bool]) -> None:
    """Give ``role`` the ``permission`` whenever ``condition()`` is true (e.g. a yes/no setting
    of Admin > Settings)."""
    if role not in PERMISSIONS:
        raise KeyError(f"unknown role {role!r}")
    _CONDITIONAL[(role, permission)] = condition


def has_permission(user, permission: str) -> bool:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    allowed = PERMISSIONS.get(user.role, frozenset())
    if allowed is None or permission in allowed:
        return True
    condition = _CONDITIONAL.get((user.role, permission))
    return bool(condition is not None and condition())


def check(user, permission: str) -> None:
    """Raise PermissionDenied (a 403) unless ``user`` holds ``permission``."""
    if not has_permission(user, permission):
        raise PermissionDenied()


# Every view declares who may call it, in its ``access`` attribute (the access-matrix test reads
# it for every route, so a route without a rule fails the test): a permission, or one of these.
PUBLIC = "public"  # anyone, signed in or not (sign-in, first-run setup, health)
SIGNED_IN = "signed-in"  # any signed-in user, whatever the role (sign out)


def require(permission: str):
    """View decorator: login required, then the permission (403 otherwise)."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                from webapp.extensions import login_manager

                return login_manager.unauthorized()
            if permission != SIGNED_IN and not has_permission(current_user, permission):
                abort(403)
            return view(*args, **kwargs)

        wrapped.access = permission
        return wrapped

    return decorator


signed_in = require(SIGNED_IN)


def public(view):
    """Mark a view open to everyone (it checks what it needs itself)."""
    view.access = PUBLIC
    return view
