"""SSL > Certificates: the repository list, detail, downloads, import and delete."""

from __future__ import annotations

from flask import Blueprint, abort, flash, request, url_for
from flask_login import current_user
from markupsafe import Markup

from webapp import htmx, pki, uploads
from webapp.certificates import service
from webapp.certificates.models import SOURCES
from webapp.dbtypes import utcnow
from webapp.downloads import attachment
from webapp.keys import service as keys
from webapp.paging import page_args
from webapp.security import csrf, rbac
from webapp.validation import InputError, long_fields

bp = Blueprint("certificates", __name__, url_prefix="/certificates")

_BADGES = {
    "revoked": ("bad", "Revoked"),
    "expired": ("bad", "Expired {}d ago"),
    "suspended": ("warn", "Suspended"),
    "not_yet_valid": ("warn", "Not valid yet"),
    "critical": ("bad", "{}d left"),
    "warning": ("warn", "{}d left"),
    "soon": ("info", "{}d left"),
    "valid": ("ok", "{}d left"),
}


@bp.app_template_filter()
def expiry_html(cert, now=None, state=None) -> Markup:
    """The not-after cell: the date, and the days left as a badge coloured as expiry nears
    (``state``: ``service.state_of(cert)``, worked out here when not given). Built in Python, as
    a list shows one per row; nothing in it comes from a person (a state, a date, a number)."""
    st, days = state or service.state_of(cert, now)
    tone, text = _BADGES[st]
    text = text.format(-days if st == "expired" else days)
    date = cert.not_after.strftime("%Y-%m-%d")
    return Markup(  # noqa: S704
        f'<span class="expiry expiry-{st}">{date}</span>\n<span class="badge {tone}">{text}</span>'
    )


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
        now=now,
        partial=htmx.is_htmx(),
    )


@bp.get("/export.csv")
@rbac.require(rbac.READ)
@csrf.asked_here("Export CSV of certificates")
def export():
    return attachment(
        service.export_csv(current_user, _filter()), "text/csv", "certdesk-certificates.csv"
    )


@bp.route("/import", methods=["GET", "POST"])
@long_fields(pem_text=pki.MAX_FILE_BYTES)  # pasted certificates: as long as an uploaded file
@rbac.require(rbac.CERTIFICATES_MANAGE)
def import_files():
    errors: dict[str, str] = {}
    result = None
    pasted = ""
    if request.method == "POST":
        pasted = request.form.get("pem_text", "")
        try:
            files = uploads.read_all("files")
            if pasted.strip():
                files.append((service.PASTED, pasted.encode()))
            result = service.import_files(current_user, files, request.form.get("password", ""))
        except InputError as exc:
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
    # The pasted text comes back after an error, unless it holds a private key (never sent back).
    shown = pki.shown_again(pasted)
    return htmx.render(
        "certificates/import.html", errors=errors, pem_text=shown, key_dropped=shown != pasted
    ), 422 if errors else 200


def _detail(row, errors=None, status=200):
    leaf = pki.load_pem_list(row.pem)[0]
    chain = pki.load_pem_list(row.chain_pem)
    return htmx.render(
        "certificates/detail.html",
        cert=row,
        info=pki.describe_certificate(leaf),
        extensions=pki.describe_extensions(leaf),
        chain=[pki.describe_certificate(c) for c in chain],
        # A suspended certificate, or one whose validity has not begun (its own notBefore),
        # says so: it is not valid, whatever its expiry.
        state=service.state_of(row),
        errors=errors or {},
        can_key=keys.can_download(current_user, row.private_key),
        sources=SOURCES,
        order_label=service.order_label(row),
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
    f = service.export(row, fmt)
    if f is None:
        abort(
            404,
            description="No chain certificates are stored with this certificate, so there is no "
            "chain file to download. The certificate alone is its PEM download.",
        )
    return attachment(*f)


@bp.post("/<int:cert_id>/pkcs12")
@rbac.require(rbac.KEYS_DOWNLOAD)
def pkcs12(cert_id: int):
    row = _cert_or_404(cert_id)
    if row.private_key is None:
        abort(404)
    form = request.form  # the service refuses (403) a user who may not download this key
    fmt = "pkcs8" if form.get("format") == "pkcs8" else "pkcs12"
    try:
        f = service.download_key(
            current_user, row, fmt, form.get("password", ""), form.get("password2")
        )
    except InputError as exc:
        return _detail(row, exc.as_errors(), 422)
    return attachment(f.data, f.mimetype, f.filename)


@bp.post("/<int:cert_id>/delete")
@rbac.require(rbac.CERTIFICATES_MANAGE)
def delete(cert_id: int):
    row = _cert_or_404(cert_id)
    name = row.common_name or f"#{row.id}"
    try:
        detail = service.delete_certificate(current_user, row)
    except InputError as exc:
        flash(str(exc), "error")
        return htmx.redirect(url_for("certificates.detail", cert_id=cert_id))
    gone = " Its private key was deleted with it." if detail.get("key_deleted") else ""
    flash(f"Certificate {name} deleted.{gone}", "success")
    return htmx.redirect(url_for("certificates.index"))
