"""Admin > Audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, request

from webapp import htmx
from webapp.audit import service
from webapp.downloads import attachment
from webapp.paging import page_args, paginate
from webapp.security import rbac

bp = Blueprint("audit", __name__, url_prefix="/admin/audit")


def _date(name: str) -> datetime | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None


def _filter() -> service.AuditFilter:
    until = _date("until")
    return service.AuditFilter(
        user=request.args.get("user", ""),
        action=request.args.get("action", ""),
        object=request.args.get("object", ""),
        since=_date("since"),
        until=until + timedelta(days=1) if until else None,  # the whole "until" day
    )


@bp.get("/")
@rbac.require(rbac.AUDIT_READ)
def index():
    f = _filter()
    page, per_page = page_args(50)
    result = paginate(service.query(f), page, per_page)
    return htmx.render(
        "audit/index.html",
        block="results",
        page=result,
        actions=service.actions(),
        args=request.args,
    )


@bp.get("/export.csv")
@rbac.require(rbac.AUDIT_READ)
def export():
    return attachment(service.export_csv(_filter()), "text/csv", "certdesk-audit.csv")
