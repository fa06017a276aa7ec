"""Admin > Settings: what an operator tunes at run time (applied without a restart, audited)."""

from __future__ import annotations

import json

from flask import Blueprint, flash, render_template, request, url_for
from flask_login import current_user

from webapp import htmx
from webapp.security import rbac
from webapp.settings import service

bp = Blueprint("settings", __name__, url_prefix="/admin/settings")


def _render(values, errors=None, status=200, opened=None):
    return (
        render_template(
            "settings/index.html",
            tunables=list(service.REGISTRY.values()),
            values=values,
            opened=opened or {k: json.dumps(v) for k, v in values.items()},
            errors=errors or {},
        ),
        status,
    )


@bp.get("/")
@rbac.require(rbac.SETTINGS_MANAGE)
def index():
    return _render(service.current())


@bp.post("/")
@rbac.require(rbac.SETTINGS_MANAGE)
def save():
    try:
        changes = service.save(current_user, request.form)
    except service.SettingsError as exc:
        values, opened = service.shown_again(request.form, exc)
        return _render(values, exc.errors, 409 if exc.meanwhile else 422, opened)
    flash(
        f"Settings saved ({len(changes)} changed); they apply at once."
        if changes
        else "No setting changed.",
        "success",
    )
    return htmx.redirect(url_for("settings.index"))
