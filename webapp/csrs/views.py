"""SSL > CSRs: list, generate, import, detail, downloads, delete."""

from __future__ import annotations

from flask import Blueprint, abort, flash, request, url_for
from flask_login import current_user

from webapp import htmx, pki, uploads
from webapp.csrs import service
from webapp.downloads import attachment, safe_name
from webapp.keys import service as keys
from webapp.paging import page_args, paginate
from webapp.security import rbac
from webapp.validation import InputError

bp = Blueprint("csrs", __name__, url_prefix="/csrs")

SUBJECT_KEYS = [f[0] for f in pki.SUBJECT_FIELDS]
FILTER_KEYS = ("q", "sort", "dir", "per_page")


def _csr_or_404(csr_id: int):
    row = service.get_csr(csr_id)
    if row is None:
        abort(404)
    return row


@bp.get("/")
@rbac.require(rbac.READ)
def index():
    args = request.args
    page, per_page = page_args(50)
    stmt = service.list_query(
        args.get("q", ""), args.get("sort", "created"), args.get("dir", "desc")
    )
    return htmx.render(
        "csrs/index.html",
        block="results",
        page=paginate(stmt, page, per_page),
        args={k: v for k, v in args.items() if k in FILTER_KEYS and v},
    )


def _new_form():
    form = {k: request.form.get(k, "").strip() for k in SUBJECT_KEYS}
    form.update(
        key_type=request.form.get("key_type", "rsa2048"),
        hash=request.form.get("hash", "sha256"),
        sans=request.form.get("sans", ""),
    )
    return form


@bp.route("/new", methods=["GET", "POST"])
@rbac.require(rbac.CSRS_MANAGE)
def new():
    errors: dict[str, str] = {}
    form = {k: "" for k in SUBJECT_KEYS} | {"key_type": "rsa2048", "hash": "sha256", "sans": ""}
    if request.method == "POST":
        form = _new_form()
        try:
            row = service.create_csr(
                current_user,
                form["key_type"],
                {k: form[k] for k in SUBJECT_KEYS},
                form["sans"],
                form["hash"],
            )
        except InputError as exc:
            errors[exc.field or "form"] = str(exc)
        else:
            flash(f"Key pair and CSR for {row.common_name} created.", "success")
            return htmx.redirect(url_for("csrs.detail", csr_id=row.id))
    check = service.check_names(form.get("CN", ""), form.get("sans", ""))
    body = htmx.render(
        "csrs/new.html",
        form=form,
        errors=errors,
        check=check,
        key_types=pki.KEY_TYPE_LABELS,
        fields=pki.SUBJECT_FIELDS,
    )
    return body, 422 if errors else 200


@bp.get("/check-names")
@rbac.require(rbac.CSRS_MANAGE)
def check_names():
    """htmx: feedback on the CN and SANs as they are typed."""
    check = service.check_names(request.args.get("CN", ""), request.args.get("sans", ""))
    return htmx.render_block("csrs/new.html", "name_check", check=check, form=request.args)


@bp.route("/import", methods=["GET", "POST"])
@rbac.require(rbac.CSRS_MANAGE)
def import_csr():
    errors: dict[str, str] = {}
    form = {"csr_text": "", "key_text": ""}
    if request.method == "POST":
        form = {k: request.form.get(k, "") for k in form}
        try:
            csr_data = uploads.read("csr_file") or form["csr_text"].encode()
            key_data = uploads.read("key_file") or form["key_text"].encode()
            row = service.import_csr(
                current_user,
                csr_data,
                key_data if key_data.strip() else None,
                request.form.get("key_password", ""),
            )
        except InputError as exc:
            errors[exc.field or "form"] = str(exc)
        else:
            flash(f"CSR for {row.common_name or 'the subject'} imported.", "success")
            return htmx.redirect(url_for("csrs.detail", csr_id=row.id))
    form["key_text"] = ""  # a key is never sent back to the browser
    pki.drop_pasted_key(form, errors, "csr_text", "csr")  # nor one pasted in the CSR's place
    return htmx.render("csrs/import.html", form=form, errors=errors), 422 if errors else 200


def _detail(row, errors=None, status=200):
    info = pki.parse_csr(row.pem, stored=True)
    return htmx.render(
        "csrs/detail.html",
        csr=row,
        info=info,
        errors=errors or {},
        can_key=keys.can_download(current_user, row.private_key),
    ), status


@bp.get("/<int:csr_id>")
@rbac.require(rbac.READ)
def detail(csr_id: int):
    return _detail(_csr_or_404(csr_id))


@bp.get("/<int:csr_id>/csr.pem")
@rbac.require(rbac.READ)
def download(csr_id: int):
    row = _csr_or_404(csr_id)
    return attachment(row.pem, "application/pkcs10", f"{safe_name(row.common_name, 'request')}.csr")


@bp.post("/<int:csr_id>/key")
@rbac.require(rbac.KEYS_DOWNLOAD)
def download_key(csr_id: int):
    row = _csr_or_404(csr_id)
    if row.private_key is None:
        abort(404)
    form = request.form  # the service refuses (403) a user who may not download this key
    try:
        f = keys.download(
            current_user,
            row.private_key,
            fmt=form.get("format", "pkcs8"),
            password=form.get("password", ""),
            repeated=form.get("password2"),
            name=row.common_name,
            about={"csr_id": row.id},
        )
    except InputError as exc:
        return _detail(row, exc.as_errors(), 422)
    return attachment(f.data, f.mimetype, f.filename)


@bp.post("/<int:csr_id>/delete")
@rbac.require(rbac.CSRS_MANAGE)
def delete(csr_id: int):
    row = _csr_or_404(csr_id)
    name = row.common_name
    try:
        detail = service.delete_csr(current_user, row)
    except InputError as exc:
        flash(str(exc), "error")
        return htmx.redirect(url_for("csrs.detail", csr_id=csr_id))
    kept = (
        " Its private key was kept: a certificate or an order uses it."
        if detail.get("key_kept")
        else ""
    )
    flash(f"CSR for {name} deleted.{kept}", "success")
    return htmx.redirect(url_for("csrs.index"))
