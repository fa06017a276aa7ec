"""SSL > Entrust > Manage > Credentials."""

from __future__ import annotations

from flask import Blueprint, abort, flash, render_template, request, url_for
from flask_login import current_user

from webapp import htmx, uploads
from webapp.credentials import demo, service
from webapp.jobs import service as jobs
from webapp.security import rbac
from webapp.validation import InputError, password_hidden

bp = Blueprint("credentials", __name__, url_prefix="/entrust/manage")

FORM_FIELDS = ("name", "api_user", "base_url", "proxy")
CLIENT_FILES = ("client_cert", "client_key", "pkcs12")


def _saved(cred, job, verb: str) -> str:
    """The flash after a new credential is stored: true whatever its first sync comes to (the
    job card below shows how it goes), and a sync is named only when one was started."""
    if job is None:
        return f"Credential {cred.name} {verb}."
    return (
        f"Credential {cred.name} {verb}; a first sync of its organizations, domains and products "
        "was started: its progress and outcome are shown below."
    )


def _cred_or_404(credential_id: int):
    cred = service.get(credential_id, include_deleted=request.method == "POST")
    if cred is None:
        abort(404)
    if cred.deleted_at is not None:  # a form or button of a page opened before the deletion
        abort(
            409,
            description=f"The credential {cred.name} was deleted after this page was opened; "
            "nothing was done.",
        )
    return cred


def _input() -> service.CredentialInput:
    """The form as the service takes it; raises InputError for an oversized upload."""
    form = request.form
    return service.CredentialInput(
        name=form.get("name", ""),
        api_user=form.get("api_user", ""),
        api_key=form.get("api_key", ""),
        base_url=form.get("base_url", "").strip() or service.DEFAULT_BASE_URL,
        proxy=form.get("proxy", ""),
        is_admin=form.get("is_admin") == "1",
        client_cert_pem=uploads.read("client_cert"),
        client_key_pem=uploads.read("client_key"),
        pkcs12=uploads.read("pkcs12"),
        pkcs12_password=form.get("pkcs12_password", ""),
        ca_bundle_pem=uploads.read("ca_bundle"),
        remove_client_cert=form.get("remove_client_cert") == "1",
        remove_ca_bundle=form.get("remove_ca_bundle") == "1",
    )


def _form_values(cred=None, stored: bool = False) -> dict:
    """What the form shows: never a secret, only whether one is stored. ``stored``: the
    credential as stored, not as the form sent it."""
    if request.method == "POST" and not stored:
        # As typed, but a URL's password, which is refused, is not sent back.
        values = {k: password_hidden(request.form.get(k, "")) for k in FORM_FIELDS}
        values["is_admin"] = request.form.get("is_admin") == "1"
        # What was given but is never sent back, so the form asks for it again: the API key
        # typed, and the files chosen (a browser does not send a file twice).
        values["key_again"] = bool(request.form.get("api_key"))
        values["files_again"] = any(
            f.filename for n in CLIENT_FILES if (f := request.files.get(n)) is not None
        )
        return values
    if cred is None:
        return {
            "name": "",
            "api_user": "",
            "base_url": service.DEFAULT_BASE_URL,
            "proxy": "",
            "is_admin": True,
        }
    values = {k: getattr(cred, k) for k in FORM_FIELDS}
    values["is_admin"] = cred.is_admin
    return values


def _stamp(cred, stored: bool) -> str:
    """The stamp the form goes with: the one it was opened with, while it shows what was typed
    (so a change saved elsewhere meanwhile is still caught at the next save), else the row's."""
    if cred is None:
        return ""
    if request.method == "POST" and not stored and request.form.get("stamp"):
        return request.form["stamp"]
    return service.form_stamp(cred)


def _render_form(cred=None, errors=None, test=None, status=200, stored=False):
    return (
        render_template(
            "credentials/form.html",
            cred=cred,
            form=_form_values(cred, stored),
            stamp=_stamp(cred, stored),
            errors=errors or {},
            test=test,
        ),
        status,
    )


@bp.get("/")
@rbac.require(rbac.READ)
def index():
    job = None
    job_id = request.args.get("job", type=int)
    if job_id:
        job = jobs.get(job_id)
    sandbox = demo.demo_sandbox()
    if sandbox and not rbac.has_permission(current_user, rbac.CREDENTIALS_MANAGE):
        sandbox = {"url": sandbox["url"]}  # its user name and key are for administrators
    credentials = service.list_credentials()
    return htmx.render(
        "credentials/index.html",
        block="credentials",
        credentials=credentials,
        counts=service.counts(c.id for c in credentials),
        counted_up_to=service.COUNTED_UP_TO,
        syncing=service.syncing(),
        job=job,
        result=jobs.result_of(job) if job else {},
        demo=sandbox,
    )


@bp.route("/credentials/new", methods=["GET", "POST"])
@rbac.require(rbac.CREDENTIALS_MANAGE)
def new():
    if request.method == "GET":
        return _render_form()
    try:
        cred, job = service.create(current_user, _input())
    except InputError as exc:
        return _render_form(errors=exc.as_errors(), status=422)
    flash(_saved(cred, job, "saved"), "success")
    return htmx.redirect(url_for("credentials.index", job=job.id if job else None))


@bp.route("/credentials/<int:credential_id>", methods=["GET", "POST"])
@rbac.require(rbac.CREDENTIALS_MANAGE)
def edit(credential_id: int):
    cred = _cred_or_404(credential_id)
    if request.method == "GET":
        return _render_form(cred)
    try:
        changed = service.update(current_user, cred, _input(), stamp=request.form.get("stamp"))
    except service.ChangedMeanwhile as exc:
        return _render_form(cred, errors={"form": str(exc)}, status=409, stored=True)
    except InputError as exc:
        return _render_form(cred, errors=exc.as_errors(), status=422)
    flash(f"Credential {cred.name} {'saved' if changed else 'unchanged'}.", "success")
    return htmx.redirect(url_for("credentials.index"))


@bp.post("/credentials/test")
@rbac.require(rbac.CREDENTIALS_MANAGE)
def test_form():
    """Test Login with the values on the form (new or edited credential), nothing saved."""
    existing = None
    cred_id = request.form.get("credential_id", type=int)
    if cred_id:
        existing = _cred_or_404(cred_id)
    errors, result = {}, None
    try:
        result = service.test_login_input(current_user, _input(), existing)
    except InputError as exc:
        errors = exc.as_errors()
    if htmx.is_htmx():
        return render_template(
            "credentials/_test_result.html",
            test=result,
            error=next(iter(errors.values()), None),
        )
    return _render_form(existing, errors=errors, test=result, status=422 if errors else 200)


@bp.post("/credentials/<int:credential_id>/test")
@rbac.require(rbac.CATALOG_SYNC)
def test(credential_id: int):
    cred = _cred_or_404(credential_id)
    result = service.test_login(current_user, cred)
    if htmx.is_htmx():
        return render_template("credentials/_row_status.html", c=cred)
    flash(f"{cred.name}: {result.message}", "success" if result.ok else "error")
    return htmx.redirect(url_for("credentials.index"))


@bp.route("/credentials/<int:credential_id>/delete", methods=["GET", "POST"])
@rbac.require(rbac.CREDENTIALS_MANAGE)
def delete(credential_id: int):
    cred = _cred_or_404(credential_id)
    errors = {}
    if request.method == "POST":
        try:
            detail = service.delete(
                current_user, cred, confirmed=request.form.get("confirm") == "1"
            )
        except InputError as exc:
            errors[exc.field or "form"] = str(exc)
        else:
            flash(
                f"Credential {detail['name']} deleted; its "
                f"{detail.get('catalog_rows_marked_gone', 0)} synced items are kept, marked gone.",
                "success",
            )
            return htmx.redirect(url_for("credentials.index"))
    counts = service.counts([cred.id]).get(cred.id, {})
    return render_template(
        "credentials/delete.html",
        cred=cred,
        counts=counts,
        counted_up_to=service.COUNTED_UP_TO,
        refs=service.references(cred),
        unfinished_jobs=service.unfinished_jobs(cred),
        errors=errors,
    ), (422 if errors else 200)


@bp.post("/credentials/<int:credential_id>/enabled")
@rbac.require(rbac.CREDENTIALS_MANAGE)
def enabled(credential_id: int):
    cred = _cred_or_404(credential_id)
    enable = request.form.get("enabled") == "1"
    service.set_enabled(current_user, cred, enable)
    flash(f"Credential {cred.name} {'enabled' if enable else 'disabled'}.", "success")
    return htmx.redirect(url_for("credentials.index"))


@bp.post("/credentials/sandbox")
@rbac.require(rbac.CREDENTIALS_MANAGE)
def add_sandbox():
    """The demo's one-click "Add the sandbox credential"."""
    try:
        cred, job = demo.add_demo_credential(current_user)
    except demo.LinkedAlready as exc:
        flash(str(exc), "info")
        return htmx.redirect(url_for("credentials.index"))
    except InputError as exc:
        flash(str(exc), "error")
        return htmx.redirect(url_for("credentials.index"))
    flash(_saved(cred, job, "added"), "success")
    return htmx.redirect(url_for("credentials.index", job=job.id if job else None))
