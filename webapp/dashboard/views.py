"""The dashboard: certificate states, the expiry timeline, what is urgent, recent activity."""

from __future__ import annotations

from flask import Blueprint
from flask_login import current_user

from webapp import htmx
from webapp.certificates import service as certificates
from webapp.credentials import service as credentials
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
    counts = service.state_counts(now)
    return htmx.render(
        "dashboard/index.html",
        counts=counts,
        # With no certificate yet: whether an Entrust account is linked, the first step if not.
        entrust_linked=bool(counts["total"]) or bool(credentials.summaries()),
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
