"""Background jobs: the list and the self-polling status fragment."""

from __future__ import annotations

from flask import Blueprint, abort

from webapp import htmx
from webapp.jobs import service
from webapp.security import rbac

bp = Blueprint("jobs", __name__, url_prefix="/jobs")


@bp.get("/")
@rbac.require(rbac.JOBS_VIEW)
def index():
    return htmx.render("jobs/index.html", block="rows", jobs=service.recent(50))


@bp.get("/<int:job_id>")
@rbac.require(rbac.JOBS_VIEW)
def detail(job_id: int):
    job = service.get(job_id)
    if job is None:
        abort(404)
    body = htmx.render("jobs/detail.html", block="job", job=job, result=service.result_of(job))
    headers = {"HX-Trigger": "job-finished"} if job.finished and htmx.is_htmx() else {}
    return body, 200, headers
