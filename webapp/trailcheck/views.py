"""The audit chain's check on Admin › Audit: its last outcome (the page's section, and the
fragment a running check polls) and Verify now."""

from __future__ import annotations

from flask import Blueprint, flash, render_template, request, url_for
from flask_login import current_user

from webapp import htmx
from webapp.jobs import service as jobs
from webapp.security import rbac
from webapp.trailcheck import service as chaincheck

bp = Blueprint("trailcheck", __name__, url_prefix="/admin/audit")


def _check_job():
    """The check a Verify now started (``?job=``), to show its progress."""
    job = jobs.get(request.args.get("job", type=int) or 0)
    return job if job is not None and job.kind == chaincheck.JOB_KIND else None


@bp.app_template_global("chain_check")
def chain_check() -> tuple:
    """(the last check's outcome, the check this page asked for): for Admin › Audit's section,
    which the audit package renders without importing this one."""
    return chaincheck.last(), _check_job()


@bp.get("/check")
@rbac.require(rbac.AUDIT_READ)
def check():
    """The chain's last check (the fragment a running Verify now polls until it has ended)."""
    return render_template("audit/_chain.html", chain=chaincheck.last(), job=_check_job())


@bp.post("/verify")
@rbac.require(rbac.AUDIT_VERIFY)
def verify_now():
    """Verify now: check the chain in a background job (recorded as asked for)."""
    notice = ""
    try:
        job = chaincheck.start(current_user)
    except chaincheck.CheckRunning as exc:
        job, notice = exc.job, str(exc)  # not a failure: the check asked for is under way
    if htmx.is_htmx():
        return render_template("audit/_chain.html", chain=chaincheck.last(), job=job, notice=notice)
    if notice:
        flash(notice, "info")
    return htmx.redirect(url_for("audit.index", job=job.id))
