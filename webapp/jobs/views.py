"""Background jobs: the list and the self-polling status fragment."""

from __future__ import annotations

from flask import Blueprint, abort, request

from webapp import htmx
from webapp.jobs import service
from webapp.paging import CURSOR_ARGS, page_args, paginate
from webapp.security import rbac
from webapp.urls import url_for

bp = Blueprint("jobs", __name__, url_prefix="/jobs")
# What says which page of the list is shown: the refresh of a running job's page keeps these,
# and nothing else of the query string (url_for's own keywords, endpoint or _external, would
# otherwise build another address, or none).
PLACE_KEYS = ("page", "per_page", *CURSOR_ARGS)


@bp.get("/")
@rbac.require(rbac.JOBS_VIEW)
def index():
    page, per_page = page_args(50)
    result = paginate(service.query(), page, per_page)
    args = {k: v for k, v in request.args.items() if k == "per_page"}
    place = {k: v for k, v in request.args.items() if k in PLACE_KEYS and v}
    return htmx.render(
        "jobs/index.html",
        block="rows",
        page=result,
        args=args,
        here=url_for("jobs.index", **place),
        kept=service.JOBS_KEPT.days,
    )


@bp.get("/<int:job_id>")
@rbac.require(rbac.JOBS_VIEW)
def detail(job_id: int):
    job = service.get(job_id)
    if job is None:
        abort(404)
    body = htmx.render("jobs/detail.html", block="job", job=job, result=service.result_of(job))
    headers = {"HX-Trigger": "job-finished"} if job.finished and htmx.is_htmx() else {}
    return body, 200, headers
