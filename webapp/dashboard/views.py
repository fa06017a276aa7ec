"""The dashboard: certificate states, the expiry timeline, what is urgent, recent activity."""

from __future__ import annotations

from flask import Blueprint
from flask_login import current_user

from webapp import htmx
from webapp.certificates import service as certificates
from webapp.dashboard import service
from webapp.dbtypes import utcnow
from webapp.jobs import service as jobs
from webapp.orders import queries as orders
from webapp.security import rbac
from webapp.trailcheck import service as chaincheck

bp = Blueprint("dashboard", __name__)


@bp.get("/")
@rbac.require(rbac.READ)
def index():
    now = utcnow()
    weeks = service.expiry_timeline(now)
    reads_audit = rbac.has_permission(current_user, rbac.AUDIT_READ)
    return htmx.render(
        "dashboard/index.html",
        counts=service.state_counts(now),
        chart=service.timeline_chart(weeks),
        urgent=service.urgent(10, now),
        # The latest events of the audit trail: for those who may read it.
        activity=service.recent_activity(10) if reads_audit else None,
        # Whether the audit trail verified at its last check: for the same readers.
        chain=chaincheck.last() if reads_audit else None,
        jobs=jobs.recent(5),
        pending_orders=orders.pending(10),
        state_of=lambda c: certificates.state_of(c, now),
    )
