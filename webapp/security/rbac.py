"""Roles and permissions: one check used by views and services alike.

admin: everything. operator: day-to-day certificate work. auditor: read-only, every page but keys.
"""

from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user
from werkzeug.exceptions import Forbidden

ROLES = ("admin", "operator", "auditor")
ROLE_LABELS = {"admin": "Administrator", "operator": "Operator", "auditor": "Auditor"}

READ = "read"
AUDIT_READ = "audit.read"
USERS_MANAGE = "users.manage"
SETTINGS_MANAGE = "settings.manage"
CREDENTIALS_MANAGE = "credentials.manage"
CATALOG_SYNC = "catalog.sync"
ORDERS_MANAGE = "orders.manage"
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


def has_permission(user, permission: str) -> bool:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    allowed = PERMISSIONS.get(user.role, frozenset())
    return allowed is None or permission in allowed


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
