"""SSL > Certificates: the repository list, detail, downloads, import and delete."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, request, stream_with_context, url_for
from flask_login import current_user
from werkzeug.routing import BuildError

from webapp import htmx
from webapp.certificates import pki, service
from webapp.certificates.models import SOURCES
from webapp.certificates.pki import PkiError
from webapp.csrs import service as csrs
from webapp.dbtypes import utcnow
from webapp.paging import page_args
from webapp.security import rbac

bp = Blueprint("certificates", __name__, url_prefix="/certificates")

FILTER_KEYS = ("q", "expiry", "issuer", "source", "has_key", "sort", "dir")


def _cert_or_404(cert_id: int):
    row = service.get(cert_id)
    if row is None:
        abort(404)
    return row


def _filter() -> service.CertFilter:
    a = request.args
    return service.CertFilter(
        q=a.get("q", "")[:200],
        expiry=a.get("expiry", ""),
        issuer=a.get("issuer", ""),
        source=a.get("source", ""),
        has_key=a.get("has_key", ""),
        sort=a.get("sort", "not_after"),
        direction=a.get("dir", "asc"),
    )


@bp.get("/")
@rbac.require(rbac.READ)
def index():
    f = _filter()
    page, per_page = page_args(50)
    now = utcnow()
    result = service.page_of(f, page, per_page, now)
    args = {k: v for k, v in request.args.items() if k in FILTER_KEYS + ("per_page",) and v}
    return htmx.render(
        "certificates/index.html",
        block="results",
        page=result,
        f=f,
        args=args,
        issuers=[] if htmx.is_htmx() else service.issuers(),
        sources=SOURCES,
        state_of=lambda c: service.state_of(c, now),
    )


@bp.get("/export.csv")
@rbac.require(rbac.READ)
def export():
    return Response(
        stream_with_context(service.export_csv(_filter())),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=certdesk-certificates.csv"},
    )


@bp.route("/import", methods=["GET", "POST"])
@rbac.require(rbac.CERTIFICATES_MANAGE)
def import_files():
    errors: dict[str, str] = {}
    result = None
    if request.method == "POST":
        files = [
            (f.filename or "upload", f.read(pki.MAX_FILE_BYTES + 1))
            for f in request.files.getlist("files")
            if f and f.filename
        ]
        pasted = request.form.get("pem_text", "")
        if pasted.strip():
            files.append(("pasted text", pasted.encode()))
        try:
            result = service.import_files(current_user, files, request.form.get("password", ""))
        except PkiError as exc:
            errors[exc.field or "files"] = str(exc)
        else:
            parts = [f"{len(result.added)} added"]
            if result.duplicates:
                parts.append(f"{len(result.duplicates)} already in the repository")
            if result.keys:
                parts.append(f"{result.keys} private key(s) stored encrypted")
            flash("Import finished: " + ", ".join(parts) + ".", "success")
            rows = result.added + result.duplicates
            if len(rows) == 1:
                return htmx.redirect(url_for("certificates.detail", cert_id=rows[0].id))
            return htmx.redirect(url_for("certificates.index", sort="created", dir="desc"))
    return htmx.render("certificates/import.html", errors=errors), 422 if errors else 200


def _order_url(tracking_id: int | None) -> str | None:
    """A link to the Entrust order page, once the orders feature provides one."""
    if tracking_id is None:
        return None
    for endpoint, arg in (("orders.detail", "tracking_id"), ("orders.detail", "order_id")):
        try:
            return url_for(endpoint, **{arg: tracking_id})
        except BuildError:
            continue
    return None


def _detail(row, errors=None, status=200):
    leaf = pki.load_pem_list(row.pem)[0]
    chain = pki.load_pem_list(row.chain_pem)
    return htmx.render(
        "certificates/detail.html",
        cert=row,
        info=pki.describe_certificate(leaf),
        extensions=pki.describe_extensions(leaf),
        chain=[pki.describe_certificate(c) for c in chain],
        state=service.state_of(row),
        errors=errors or {},
        can_key=csrs.can_download_key(current_user, row.private_key),
        sources=SOURCES,
        order_url=_order_url(row.tracking_id),
    ), status


@bp.get("/<int:cert_id>")
@rbac.require(rbac.READ)
def detail(cert_id: int):
    return _detail(_cert_or_404(cert_id))


@bp.get("/<int:cert_id>/download/<fmt>")
@rbac.require(rbac.READ)
def download(cert_id: int, fmt: str):
    row = _cert_or_404(cert_id)
    if fmt not in service.FORMATS:
        abort(404)
    body, mimetype, filename = service.export(row, fmt)
    return Response(
        body, mimetype=mimetype, headers={"Content-Disposition": f"attachment; filename={filename}"}
    )


@bp.post("/<int:cert_id>/pkcs12")
@rbac.require(rbac.KEYS_DOWNLOAD)
def pkcs12(cert_id: int):
    row = _cert_or_404(cert_id)
    if row.private_key is None:
        abort(404)
    if not csrs.can_download_key(current_user, row.private_key):
        abort(403)
    password = request.form.get("password", "")
    if password != request.form.get("password2", password):
        return _detail(row, {"password2": "The passwords differ."}, 422)
    key_only = request.form.get("format") == "pkcs8"
    try:
        if key_only:
            data = csrs.export_private_key(
                current_user, row.private_key, password, "pkcs8", name=row.common_name
            )
        else:
            data = service.export_pkcs12(current_user, row, password)
    except PkiError as exc:
        return _detail(row, {"password": str(exc)}, 422)
    ext, mime = (
        ("key.pem", "application/x-pem-file") if key_only else ("p12", "application/x-pkcs12")
    )
    return Response(
        data,
        mimetype=mime,
        headers={"Content-Disposition": f"attachment; filename={service.file_stem(row)}.{ext}"},
    )


@bp.post("/<int:cert_id>/delete")
@rbac.require(rbac.CERTIFICATES_MANAGE)
def delete(cert_id: int):
    row = _cert_or_404(cert_id)
    name = row.common_name or f"#{row.id}"
    service.delete_certificate(current_user, row)
    flash(f"Certificate {name} deleted.", "success")
    return htmx.redirect(url_for("certificates.index"))
