"""SSL > Entrust > Manage > Organizations, Domains, Products, and their Sync buttons."""

from __future__ import annotations

from flask import Blueprint, flash, render_template, request, url_for
from flask_login import current_user

from webapp import htmx, validation
from webapp.catalog import service
from webapp.dbtypes import utcnow
from webapp.jobs import service as jobs
from webapp.paging import page_args
from webapp.security import rbac

bp = Blueprint("catalog", __name__, url_prefix="/entrust/manage")
# "expired", "expiring" or "" for a domain row (a filter: the list asks it of every row).
bp.add_app_template_filter(service.domain_expiry, "domain_expiry")

ARG_NAMES = ("q", "credential", "status", "show", "sort", "dir", "kind", "per_page")


def _filter(kind: str) -> service.TabFilter:
    a = request.args
    sorts, default_sort = service.TAB_SORTS[kind]
    return service.TabFilter(
        q=a.get("q", "").strip()[:200],
        credential_id=a.get("credential", type=int),
        status=a.get("status", "").strip(),
        show=a.get("show", "current") if a.get("show") in ("current", "gone", "all") else "current",
        sort=a["sort"] if a.get("sort") in sorts else default_sort,
        direction="desc" if a.get("dir") == "desc" else "asc",
        kind=a.get("kind", ""),
    )


def _tab(kind: str, template: str, **extra):
    f = _filter(kind)
    page, per_page = page_args(50)
    shown = service.tab(kind, f, page, per_page)
    job_id = request.args.get("job", type=int)
    job = jobs.get(job_id) if job_id else None
    args = {k: v for k, v in request.args.items() if k in ARG_NAMES and v}
    return htmx.render(
        template,
        block="results",
        tab=kind,
        endpoint=f"catalog.{kind}",
        page=shown.page,
        f=f,
        args=args,
        credentials=shown.credentials,
        credential_names=shown.credential_names,
        last_synced=shown.last_synced,
        sync_failed=shown.failed,
        statuses=shown.statuses,
        job=job,
        result=jobs.result_of(job) if job else {},
        now=utcnow(),
        **extra,
    )


@bp.get("/organizations")
@rbac.require(rbac.READ)
def organizations():
    return _tab("organizations", "catalog/organizations.html")


@bp.get("/domains")
@rbac.require(rbac.READ)
def domains():
    return _tab(
        "domains",
        "catalog/domains.html",
        expiry_filters=service.EXPIRY_FILTERS,
    )


@bp.get("/products")
@rbac.require(rbac.READ)
def products():
    return _tab("products", "catalog/products.html")


@bp.post("/sync")
@rbac.require(rbac.CATALOG_SYNC)
def sync():
    """Start a sync of one kind (or all) for one credential (or all enabled ones)."""
    kind = request.form.get("kind", "all")
    kinds = service.KINDS if kind == "all" else [kind]
    back = request.form.get("next", "")
    target = {
        "organizations": "catalog.organizations",
        "domains": "catalog.domains",
        "products": "catalog.products",
    }.get(back, "credentials.index")
    # No credential given: every enabled one. One given that is not an id: not any of them.
    raw = request.form.get("credential", "").strip()
    cred_ids = None if not raw else (validation.ids([raw]) or [0])
    try:
        job = service.start_sync(current_user, cred_ids, kinds)
    except service.SyncRunning as exc:
        # Not a failure: what was asked for is under way; its progress is shown instead.
        job = exc.job
        if htmx.is_htmx():
            return render_template("_flash.html", category="info", message=str(exc)) + (
                render_template("jobs/_job.html", job=job, result=jobs.result_of(job))
            )
        flash(str(exc), "info")
        return htmx.redirect(url_for(target, job=job.id))
    except service.SyncError as exc:
        if htmx.is_htmx():
            return render_template("credentials/_test_result.html", error=str(exc), test=None)
        flash(str(exc), "error")
        return htmx.redirect(url_for(target))
    if htmx.is_htmx():
        return render_template("jobs/_job.html", job=job, result=jobs.result_of(job))
    return htmx.redirect(url_for(target, job=job.id))
