"""SSL > Entrust: the orders table, an order's page, Order Certificate, Check Order Status,
Import Existing Orders, settling lost answers, the notices of status changes, and the actions on
orders: Update Certificate Status, Reissue Certificate, Renew Certificate, Revoke Certificate and
Delete."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qsl, urlencode

from flask import Blueprint, abort, flash, request, url_for
from flask_login import current_user

from webapp import htmx, pki, uploads, urls, validation
from webapp.dbtypes import utcnow
from webapp.jobs import service as jobs
from webapp.orders import (
    checks,
    importing,
    lifecycle,
    placing,
    polling,
    queries,
    settling,
    successors,
)
from webapp.orders.models import ORIGINS
from webapp.paging import page_args
from webapp.security import rbac
from webapp.validation import InputError

bp = Blueprint("orders", __name__, url_prefix="/entrust")

FILTER_KEYS = ("q", "status", "credential", "product", "expiring", "sort", "dir")
PLACE_KEYS = ("page", "after", "before")  # a page of the list: its number and cursor
MAX_TICKED = 200  # the longest page of the list
FORM_TEXT = (
    "organization",
    "product",
    "domain",
    "eku",
    "csr_source",
    "csr_text",
    "new_key_type",
    "sans",
    "signature_algorithm",
    "expires_on",
    "friendly_name",
    "requester_name",
    "requester_email",
    "requester_phone",
    "additional_emails",
    "organization_search",
    "domain_search",
    "csr_search",
)
MAX_TEXT = 20000  # a CSR or a list of names; anything longer is cut (and then refused)
MAX_SEARCH = 300  # a name's length; a longer search text is cut


def _order_or_404(order_id: int):
    row = queries.get(order_id)
    if row is None:
        abort(404)
    return row


def _filter() -> queries.OrderFilter:
    a = request.args
    return queries.OrderFilter(
        q=a.get("q", "")[:200],
        status=a.get("status", "")[:40],
        credential_id=a.get("credential", type=int),
        product=a.get("product", "")[:60],
        expiring=a.get("expiring", "")[:5],
        sort=a.get("sort", "expires") if a.get("sort") in queries.SORTS else "expires",
        direction="desc" if a.get("dir") == "desc" else "asc",
    )


def _back(default: str) -> str:
    """Where to return after an action: a path inside CertDesk, or ``default``."""
    return urls.local_path(request.values.get("next"), default)


def _back_from(order_id: int | None) -> str:
    """Where an action's page leads back to: where it was opened from (the list with its
    filters, an order's page), else the order it was opened for, else the list."""
    return _back(
        url_for("orders.detail", order_id=order_id) if order_id else url_for("orders.index")
    )


def _own_address(ids: list[int]) -> str:
    """The address (a GET) of this action's page for the orders ``ids``, leading back where it
    does: so that Back, Forward and Reload reach a page shown from a POST (the list's ticked
    boxes, an action's result) without asking to send a form again. "" when more are ticked
    than an address holds."""
    if len(ids) > MAX_TICKED:
        return ""
    query = [("order", i) for i in ids]
    if request.values.get("next"):
        query.append(("next", _back(url_for("orders.index"))))
    return f"{url_for(request.endpoint)}?{urlencode(query)}"


def _at_own_address(ids: list[int]):
    """An action's page opened from the list, whose buttons post the ticked boxes: shown at its
    own address (None: from the POST, when they do not fit in one)."""
    own = _own_address(ids)
    return htmx.redirect(own, 303) if own else None


def _showing_job(back: str, job_id: int) -> str:
    """The orders list showing a bulk job's card: with the filters of ``back`` when that is the
    list, so the orders the job works on stay in view."""
    index = url_for("orders.index")
    path, _, query = back.partition("?")
    if path != index:
        return url_for("orders.index", job=job_id)
    dropped = ("job", "page", "after", "before")
    kept = [(k, v) for k, v in parse_qsl(query) if k not in dropped]
    return f"{index}?{urlencode([*kept, ('job', job_id)])}"


@bp.get("/")
@rbac.require(rbac.READ)
def index():
    f = _filter()
    page, per_page = page_args(50)
    now = utcnow()
    result = queries.page_of(f, page, per_page, now)
    args = {k: v for k, v in request.args.items() if k in FILTER_KEYS + ("per_page",) and v}
    # Where an action on the ticked orders returns to: this page of the list, at its place.
    place = {k: v for k, v in request.args.items() if k in PLACE_KEYS and v}
    # Orders ticked before an action sent the page back (e.g. "tick exactly one") stay ticked.
    ticked = set(validation.ids(request.args.getlist("order"), limit=MAX_TICKED))
    job_id = request.args.get("job", type=int)
    job = jobs.get(job_id) if job_id else None
    # No orders, and no credential to import or order with: the list says to link one first
    # (or to enable one), not to follow links that lead there.
    unlinked = not result.items and not checks.usable_credentials()
    return htmx.render(
        "orders/index.html",
        block="results",
        page=result,
        f=f,
        args=args,
        choices=None if htmx.is_htmx() else queries.filter_choices(),
        job=job,
        result=jobs.result_of(job) if job else {},
        now=now,
        here=url_for("orders.index", **args, **place),
        ticked=ticked,
        unlinked=unlinked,
        disabled=checks.disabled_credentials() if unlinked else [],
    )


@bp.get("/<int:order_id>")
@rbac.require(rbac.READ)
def detail(order_id: int):
    row = _order_or_404(order_id)
    return htmx.render(
        "orders/detail.html",
        v=queries.view(row),
        origins=ORIGINS,
        now=utcnow(),
        unlisted=row.placement == "not_placed" and placing.may_be_unlisted(row),
    )


# --- Order Certificate ---------------------------------------------------------------------------


def _texts(names) -> dict:
    """The form's texts, each cut to MAX_TEXT, but the CSR box whole when it holds a private key:
    cut, the key would no longer be recognised, and its first part would be shown again."""
    f = request.form
    values = {k: f.get(k, "")[:MAX_TEXT] for k in names}
    if pki.holds_private_key(f.get("csr_text", "")):
        values["csr_text"] = f.get("csr_text", "")
    return values


def _form_values() -> dict:
    """What the form shows again: never the private key or its password."""
    f = request.form
    values = _texts(FORM_TEXT)
    values["credential_id"] = f.get("credential_id", type=int)
    values["csr_id"] = f.get("csr_id", type=int)
    values["queue_for_approval"] = f.get("queue_for_approval") == "1"
    values["ct_log"] = f.get("ct_log") == "1"
    # Cut where the check still sees them too long (it refuses past 500): never sent cut short.
    values["custom"] = {k[7:]: v[:MAX_TEXT] for k, v in f.items() if k.startswith("custom_")}
    values["request_id"] = _request_id()
    return values


def _request_id() -> str:
    """The request id the form was shown with, or a new one for the form shown again."""
    return placing.form_request_id(request.form.get("request_id", "")[:100]) or (
        placing.new_request_id()
    )


REQUESTER_FIELDS = ("requester_name", "requester_email", "requester_phone", "additional_emails")


def _csr_and_key(values: dict) -> dict:
    """The CSR and its key as an order form gives them (chosen, pasted or uploaded); raises
    InputError for an oversized upload."""
    csr_file = uploads.read("csr_file")
    values["csr_upload"] = csr_file
    key_text, key_file = request.form.get("key_text", "")[:MAX_TEXT], uploads.read("key_file")
    # Shown again, the form asks for the key again: it is never sent back to the browser.
    values["key_given"] = bool(key_text.strip() or key_file)
    return {
        "csr_source": values["csr_source"] or "certdesk",
        "csr_id": values["csr_id"],
        "csr_text": values["csr_text"],
        "csr_file": csr_file,
        "key_text": key_text,
        "key_file": key_file,
        "key_password": request.form.get("key_password", "")[:1000],
        "new_key_type": request.form.get("new_key_type", "")[:20],
    }


def _keep_uploaded_csr(values: dict, errors: dict) -> None:
    """A CSR file sent with a form that is shown again (after Validate, or with an error
    elsewhere) comes back in the form's paste box: a browser never refills a file field, and a
    CSR is no secret. Its private key is not shown again (the form asks for it again)."""
    data = values.pop("csr_upload", None)
    if values.get("csr_source") != "upload" or not data or "csr_file" in errors:
        return
    try:
        values["csr_text"] = pki.parse_csr(data, "csr_file").pem
    except pki.PkiError:
        return
    values["csr_source"] = "paste"


def _request_fields(values: dict) -> dict:
    """What Order Certificate, Reissue and Renew all ask for: the CSR and its key, the names,
    EKU, signature algorithm, expiry, requester, CT logging and the request id. Raises
    InputError for an oversized upload."""
    return {
        **_csr_and_key(values),
        "sans": values["sans"],
        "eku": values["eku"],
        "signature_algorithm": values["signature_algorithm"],
        "expires_on": values["expires_on"],
        **{k: values[k] for k in REQUESTER_FIELDS},
        "ct_log": values["ct_log"],
        "request_id": values["request_id"],
    }


def _order_form(values: dict) -> checks.OrderForm:
    """The form as the service takes it; raises InputError for an oversized upload."""
    return checks.OrderForm(
        **_request_fields(values),
        credential_id=values["credential_id"],
        organization=values["organization"],
        product=values["product"],
        domain=values["domain"],
        friendly_name=values["friendly_name"],
        custom=values["custom"],
        queue_for_approval=values["queue_for_approval"],
    )


def _new_values() -> dict:
    return {
        **dict.fromkeys(FORM_TEXT, ""),
        "credential_id": request.args.get("credential_id", type=int),
        "csr_id": request.args.get("csr_id", type=int),
        # A new key pair for the names typed, the choice that always works; a CSR when the form
        # was opened for one (its page's Order Certificate).
        "csr_source": "certdesk" if request.args.get("csr_id") else "new",
        "queue_for_approval": False,
        "ct_log": True,
        "custom": {},
        "requester_name": current_user.full_name,
        "requester_email": current_user.email,
        "request_id": placing.new_request_id(),
    }


@bp.route("/new", methods=["GET", "POST"])
@rbac.require(rbac.ORDERS_MANAGE)
def new():
    errors: dict[str, str] = {}
    validation = refused = None
    if request.method == "GET":
        values = _new_values()
    else:
        values = _form_values()
        action = request.form.get("action", "order")
        try:
            if action == "validate":
                validation = placing.validate(current_user, _order_form(values))
                errors = dict(validation.errors)
            elif action == "order":
                row = placing.place(current_user, _order_form(values))
                flash(_placed_words(row), "success" if row.settled else "warning")
                return htmx.redirect(url_for("orders.detail", order_id=row.id))
        except placing.SentAlready as exc:
            flash(str(exc), "warning")
            return htmx.redirect(url_for("orders.detail", order_id=exc.order_id))
        except InputError as exc:
            errors = exc.as_errors()
            if isinstance(exc, placing.OrderRefused):  # its request id went to Entrust
                values["request_id"] = placing.new_request_id()
                refused = str(exc)
        _keep_uploaded_csr(values, errors)
    pki.drop_pasted_key(values, errors, "csr_text", "csr")  # a key is never sent back
    c = _order_choices(values)
    body = htmx.render(
        "orders/new.html",
        form=values,
        errors=errors,
        refused=refused,
        validation=validation,
        c=c,
        dates=_dates(c),
        disabled=checks.disabled_credentials() if not c.credentials else [],
    )
    return body, 422 if errors else 200


def _dates(c) -> tuple[str, str, dict[str, str]]:
    """The expiration date input's bounds: tomorrow, the longest validity on offer, and the
    last day each product allows (the page narrows the input to the chosen product's)."""
    today = utcnow().date()
    longest = max((days for _, days in c.products), default=398)
    last = {p: (today + timedelta(days=days)).isoformat() for p, days in c.products}
    return (
        (today + timedelta(days=1)).isoformat(),
        (today + timedelta(days=longest)).isoformat(),
        last,
    )


def _placed_words(row) -> str:
    if row.display_status == "UNKNOWN_OUTCOME":
        if row.message.startswith(placing.NOT_RECORDED):
            return row.message
        return (
            "Entrust's answer was lost. CertDesk is checking whether the order was placed; the "
            "order page says when it is settled. Do not order it again meanwhile."
        )
    if row.phase == "issued":
        return "Certificate issued; it is in SSL › Certificates, linked to this order."
    if row.status == "PENDING":
        return (
            "Order placed at Entrust and queued for approval (PENDING): an Entrust administrator "
            "approves or declines it. CertDesk checks its status until then."
        )
    return f"Order placed at Entrust ({row.status}); CertDesk checks its status until it is issued."


def _order_choices(values: dict, *, with_custom: bool = True) -> checks.Choices:
    """The form's choices for its credential, its chosen organization and domain and their
    searches (see checks.choices)."""
    return checks.choices(
        values["credential_id"],
        with_custom=with_custom,
        organization=values["organization"],
        domain=values["domain"],
        organization_search=values["organization_search"][:MAX_SEARCH],
        domain_search=values["domain_search"][:MAX_SEARCH],
        csr=values.get("csr_id"),
        csr_search=values["csr_search"],
    )


@bp.get("/new/choices")
@rbac.require(rbac.ORDERS_MANAGE)
def choices():
    values = _new_values()
    # The organization, product and domain chosen before (the form reached again by Back): each
    # is chosen again if the credential still offers it; so is what was typed in a custom field
    # the credential's account still has.
    for field in ("organization", "product", "domain"):
        values[field] = request.args.get(field, "")[:MAX_TEXT]
    values["custom"] = {
        k[7:]: v[:MAX_TEXT] for k, v in request.args.items() if k.startswith("custom_")
    }
    c = _order_choices(values)
    return htmx.render(
        "orders/new.html", block="choices", form=values, errors={}, c=c, dates=_dates(c)
    )


@bp.get("/new/choices/organization")
@rbac.require(rbac.ORDERS_MANAGE)
def found_organizations():
    """The options of the organization list for what its search holds (an account with more
    organizations than the form lists)."""
    return _found("organization")


@bp.get("/new/choices/domain")
@rbac.require(rbac.ORDERS_MANAGE)
def found_domains():
    """The options of the domain list for what its search holds."""
    return _found("domain")


@bp.get("/new/choices/csr")
@rbac.require(rbac.ORDERS_MANAGE)
def found_csrs():
    """The options of an order form's list of CSRs made in CertDesk (Order Certificate, Reissue,
    Renew) for what its search holds, the CSR chosen kept."""
    search = request.args.get("csr_search", "")[:MAX_SEARCH]
    chosen = request.args.get("csr_id", type=int)
    return htmx.render(
        "orders/_csr_options.html",
        csr_choices=checks.unused_csrs(chosen=chosen, search=search),
        form={"csr_id": chosen, "csr_search": search},
    )


def _found(field: str) -> str:
    chosen = request.args.get(field, "")[:MAX_TEXT]
    search = request.args.get(f"{field}_search", "")[:MAX_SEARCH]
    options, searched = checks.found(
        request.args.get("credential_id", type=int), field, chosen, search
    )
    return htmx.render(
        "orders/_found.html",
        field=field,
        options=options,
        searched=searched,
        chosen=chosen,
        search=search,
    )


# --- Check Order Status, lost answers -------------------------------------------------------


@bp.post("/check")
@rbac.require(rbac.ORDERS_MANAGE)
def check():
    back = _back(url_for("orders.index"))
    try:
        result = polling.check_selected(current_user, request.form.getlist("order"))
    except InputError as exc:
        flash(str(exc), "error")
        return htmx.redirect(back)
    if result.job is not None:
        return htmx.redirect(_showing_job(back, result.job.id))
    flash("Check Order Status: " + result.summary(), "error" if result.problems else "success")
    ids = request.form.getlist("order")
    on_its_page = len(ids) == 1 and ids[0].isdigit()
    on_its_page = on_its_page and back == url_for("orders.detail", order_id=int(ids[0]))
    if not on_its_page:  # an order's own page shows why its check failed
        for problem in list(dict.fromkeys(result.problems))[:3]:  # each reason once
            flash(problem, "error")
    return htmx.redirect(back)


@bp.post("/<int:order_id>/settle")
@rbac.require(rbac.ORDERS_MANAGE)
def settle(order_id: int):
    row = settling.check_now(current_user, _order_or_404(order_id))
    if row.placement == "placed":
        flash(f"Found at Entrust as order {row.ca_order_id}: it was placed.", "success")
    elif row.placement == "not_placed":
        flash("Entrust holds no such order: it was not placed.", "warning")
    else:
        flash(row.message or "Not settled yet; CertDesk checks again shortly.", "info")
    return htmx.redirect(url_for("orders.detail", order_id=order_id))


@bp.post("/<int:order_id>/place-again")
@rbac.require(rbac.ORDERS_MANAGE)
def place_again(order_id: int):
    old = _order_or_404(order_id)
    try:
        row = placing.place_again(
            current_user, old, looked_in_portal=request.form.get("looked_in_portal") == "1"
        )
    except InputError as exc:
        flash(str(exc), "error")
        return htmx.redirect(url_for("orders.detail", order_id=order_id))
    if row.id == order_id:
        flash(f"Entrust holds this order after all (order {row.ca_order_id}): linked.", "success")
    else:
        flash(_placed_words(row), "success" if row.settled else "warning")
    return htmx.redirect(url_for("orders.detail", order_id=row.id))


# --- Import Existing Orders --------------------------------------------------------------------


@bp.route("/import", methods=["GET", "POST"])
@rbac.require(rbac.ORDERS_MANAGE)
def import_orders():
    errors: dict[str, str] = {}
    chosen = {"credential_id": request.values.get("credential_id", type=int), "exclude": None}
    # "Load its last exclusions" (the page without JavaScript): the form again, nothing started.
    if request.method == "POST" and request.form.get("action") != "exclusions":
        chosen["exclude"] = request.form.getlist("exclude")
        try:
            job = importing.start_import(current_user, chosen["credential_id"], chosen["exclude"])
        except importing.ImportRunning as exc:
            # Not a failure: the import asked for is under way; its progress is shown instead.
            flash(str(exc), "info")
            return htmx.redirect(
                url_for(
                    "orders.import_orders", job=exc.job.id, credential_id=chosen["credential_id"]
                )
            )
        except InputError as exc:
            errors = exc.as_errors()
        else:
            flash(
                "Import started: its progress and outcome are shown below; it goes on if you "
                "leave this page.",
                "success",
            )
            return htmx.redirect(
                url_for("orders.import_orders", job=job.id, credential_id=chosen["credential_id"])
            )
    job_id = request.args.get("job", type=int)
    job = jobs.get(job_id) if job_id else None
    if job is None and request.method == "GET":
        # Opened again while an import runs: its progress, not a form that seems idle.
        job = importing.running_import(chosen["credential_id"])
    usable, cred = checks.chosen_credential(chosen["credential_id"])
    if chosen["exclude"] is None:
        # Those of the last import of the chosen credential, as the scheduled import uses them;
        # the defaults when there is none, or no credential is chosen.
        chosen["exclude"] = (
            importing.last_exclusions(cred.id) if cred else list(importing.DEFAULT_EXCLUSIONS)
        )
    body = htmx.render(
        "orders/import.html",
        chosen=chosen,
        errors=errors,
        exclusions=importing.EXCLUSIONS,
        credentials=usable,
        disabled=checks.disabled_credentials() if not usable else [],
        job=job,
        job_credential=jobs.params_of(job).get("credential_id") if job else None,
        result=jobs.result_of(job) if job else {},
    )
    return body, 422 if errors else 200


# --- notices of status changes ---------------------------------------------------------------


# Only people who may place orders get notices (of the orders they placed).
def _updates():
    notices = queries.updates_for(current_user)
    return htmx.render(
        "orders/_updates.html",
        notices=notices,
        more=queries.more_updates(current_user, len(notices)),
        counted=queries.NOTICES_COUNTED,
    )


@bp.get("/updates")
@rbac.require(rbac.ORDERS_MANAGE)
def updates():
    return _updates()


@bp.post("/updates/seen")
@rbac.require(rbac.ORDERS_MANAGE)
def updates_seen():
    queries.mark_seen(current_user, request.form.getlist("event"))
    if htmx.is_htmx():
        return _updates()
    return htmx.redirect(_back(url_for("orders.index")))


# --- the actions on orders --------------------------------------------------------------------


def _selected_ids(order_id: int | None = None) -> list[int]:
    """The orders an action page is about: the one in its path, or the ticked boxes."""
    if order_id is not None:
        _order_or_404(order_id)
        return [order_id]
    return validation.ids(request.values.getlist("order"), lifecycle.MAX_SELECTED)


def _nothing_selected(label: str):
    flash(f"{label}: select the orders first (tick them in the list).", "error")
    return htmx.redirect(_back(url_for("orders.index")))


def _choices() -> lifecycle.Choices:
    f = request.form
    return lifecycle.Choices(
        # Whole (the request's own limit bounds them): a refusal says how long they are.
        reason=f.get("reason", ""),
        comment=f.get("comment", ""),
        credential_id=f.get("credential_id", type=int),
    )


@bp.route("/status", methods=["GET", "POST"])
@bp.route("/<int:order_id>/status", methods=["GET"])
@rbac.require(rbac.ORDERS_APPROVE)
def update_status(order_id: int | None = None):
    """Update Certificate Status: Approve, Decline, Suspend or Resume the selected orders. The
    buttons post here with ``?action=``; a post without one (from the list) shows the page."""
    ids = _selected_ids(order_id)
    posted = request.method == "POST"
    if posted and not ids:
        return _nothing_selected("Update Certificate Status")
    if posted and "action" not in request.args and (shown := _at_own_address(ids)):
        return shown
    errors: dict[str, str] = {}
    result = None
    back = _back_from(order_id)
    choices = _choices() if posted else lifecycle.Choices()
    name = request.args.get("action", "")[:20] if posted else ""
    if name:
        try:
            action = lifecycle.parse_action(name)
            if action not in lifecycle.STATUS_ACTIONS:
                raise lifecycle.ActionInputError("Choose Approve, Decline, Suspend or Resume.")
            result = lifecycle.run(current_user, action, ids, choices)
        except InputError as exc:
            errors = exc.as_errors()
        else:
            if result.job is not None:
                return htmx.redirect(_showing_job(back, result.job.id))
    sel = lifecycle.selection(ids, lifecycle.STATUS_ACTIONS, current_user)
    body = htmx.render(
        "orders/status.html",
        block="results",
        back=back,
        sel=sel,
        choices=choices,
        errors=errors,
        result=result,
        labels=lifecycle.LABELS,
        own_address=_own_address(ids) if posted else "",
    )
    return body, 422 if errors else 200


def _with_ticked(path: str, ids: list[int]) -> str:
    """``path`` (the orders list) with the ``ids`` ticked again when it is shown."""
    if not ids:
        return path
    query = urlencode([("order", i) for i in ids[:MAX_TICKED]])
    return f"{path}{'&' if '?' in path else '?'}{query}"


def _one_selected(endpoint: str, label: str):
    ids = validation.ids(request.values.getlist("order"))
    if len(ids) != 1:
        flash(f"{label} takes one order at a time: tick exactly one.", "error")
        return htmx.redirect(_with_ticked(_back(url_for("orders.index")), ids))
    return htmx.redirect(url_for(endpoint, order_id=ids[0]))


@bp.route("/reissue", methods=["GET", "POST"])
@rbac.require(rbac.ORDERS_MANAGE)
def reissue():
    """Reissue Certificate from the list: on to the form of the one order ticked."""
    return _one_selected("orders.reissue_order", "Reissue Certificate")


@bp.route("/renew", methods=["GET", "POST"])
@rbac.require(rbac.ORDERS_MANAGE)
def renew():
    """Renew Certificate from the list: on to the form of the one order ticked."""
    return _one_selected("orders.renew_order", "Renew Certificate")


SUCCESSOR_TEXT = (
    "csr_source",
    "csr_text",
    "new_key_type",
    "sans",
    "eku",
    "signature_algorithm",
    "expires_on",
    "requester_name",
    "requester_email",
    "requester_phone",
    "additional_emails",
    "csr_search",
)


def _successor_values() -> dict:
    f = request.form
    values = _texts(SUCCESSOR_TEXT)
    values["csr_id"] = f.get("csr_id", type=int)
    values["ct_log"] = f.get("ct_log") == "1"
    values["request_id"] = _request_id()
    return values


def _successor_form(values: dict) -> checks.OrderForm:
    """A reissue's or renewal's form as the service takes it: the order's own account,
    organization, product and domain stay (raises InputError for an oversized upload)."""
    return checks.OrderForm(**_request_fields(values))


def _successor(order_id: int, origin: str):
    row = _order_or_404(order_id)
    errors: dict[str, str] = {}
    refused = None
    if request.method == "GET":
        values = {
            **successors.prefill(row, origin),
            "csr_search": "",
            "request_id": placing.new_request_id(),
        }
    else:
        values = _successor_values()
        place = successors.reissue if origin == "reissue" else successors.renew
        # Find (the CSR search without scripts) shows the form again with what it found.
        finding = request.form.get("action") == "choices"
        new = None
        try:
            if not finding:
                new = place(current_user, row, _successor_form(values))
        except placing.SentAlready as exc:
            flash(str(exc), "warning")
            return htmx.redirect(url_for("orders.detail", order_id=exc.order_id))
        except InputError as exc:
            errors = exc.as_errors()
            if isinstance(exc, placing.OrderRefused):  # its request id went to Entrust
                values["request_id"] = placing.new_request_id()
                refused = str(exc)
        if new is not None:
            flash(_successor_words(new, origin), "success" if new.settled else "warning")
            return htmx.redirect(url_for("orders.detail", order_id=new.id))
        _keep_uploaded_csr(values, errors)
    pki.drop_pasted_key(values, errors, "csr_text", "csr")  # a key is never sent back
    page = successors.page(
        row, origin, csr=values.get("csr_id"), csr_search=values["csr_search"][:MAX_SEARCH]
    )
    body = htmx.render("orders/successor.html", p=page, form=values, errors=errors, refused=refused)
    return body, 422 if errors else 200


def _successor_words(row, origin: str) -> str:
    what = "reissue" if origin == "reissue" else "renewal"
    if row.display_status == "UNKNOWN_OUTCOME":
        return (
            f"Entrust's answer to the {what} was lost. CertDesk is checking whether it was "
            "placed; this page says when it is settled. Do not ask for it again meanwhile."
        )
    if row.phase == "issued":
        return (
            f"{what.capitalize()} issued (order {row.ca_order_id}); the new certificate is in "
            "SSL › Certificates. Deploy it wherever the old one is in use."
        )
    return f"{what.capitalize()} placed at Entrust ({row.status})."


@bp.route("/<int:order_id>/reissue", methods=["GET", "POST"])
@rbac.require(rbac.ORDERS_MANAGE)
def reissue_order(order_id: int):
    return _successor(order_id, "reissue")


@bp.route("/<int:order_id>/renew", methods=["GET", "POST"])
@rbac.require(rbac.ORDERS_MANAGE)
def renew_order(order_id: int):
    return _successor(order_id, "renew")


@bp.route("/revoke", methods=["GET", "POST"])
@bp.route("/<int:order_id>/revoke", methods=["GET"])
@rbac.require(rbac.ORDERS_REVOKE)
def revoke(order_id: int | None = None):
    """Revoke Certificate: a reason and a comment, then a page that names the certificates and
    asks again (``step`` "confirm"), then the revocation (``step`` "revoke")."""
    ids = _selected_ids(order_id)
    posted = request.method == "POST"
    if posted and not ids:
        return _nothing_selected("Revoke Certificate")
    step = request.form.get("step", "")[:20] if posted else ""
    if posted and not step and (shown := _at_own_address(ids)):
        return shown
    back = _back_from(order_id)
    choices = _choices() if posted else lifecycle.Choices()
    errors: dict[str, str] = {}
    result, confirming = None, False
    try:
        if step == "confirm":
            choices = lifecycle.clean_choices(lifecycle.ACTIONS["revoke"], choices)
            confirming = True
        elif step == "revoke":
            result = lifecycle.run(current_user, lifecycle.ACTIONS["revoke"], ids, choices)
    except InputError as exc:
        errors = exc.as_errors()
    if result is not None and result.job is not None:
        return htmx.redirect(_showing_job(back, result.job.id))
    sel = lifecycle.selection(ids, (lifecycle.ACTIONS["revoke"],))
    body = htmx.render(
        "orders/revoke.html",
        back=back,
        sel=sel,
        choices=choices,
        errors=errors,
        result=result,
        confirming=confirming,
        labels=lifecycle.LABELS,
        own_address=_own_address(ids) if posted else "",
    )
    return body, 422 if errors else 200


def _deleted_words(n: int, kept: int) -> str:
    """What More > Delete did: the orders left CertDesk, and nothing changed at Entrust; the
    certificates of those that had one stay in the repository (said only of those)."""
    words = (
        f"{n} {'order' if n == 1 else 'orders'} deleted from CertDesk; nothing changed at Entrust."
    )
    if n == 1 and kept:
        words += " Its certificate stays in SSL › Certificates."
    elif kept and kept >= n:
        words += " Their certificates stay in SSL › Certificates."
    elif kept:
        words += f" The certificates of {kept} of them stay in SSL › Certificates."
    return words


@bp.route("/delete", methods=["GET", "POST"])
@bp.route("/<int:order_id>/delete", methods=["GET"])
@rbac.require(rbac.ORDERS_DELETE)
def delete(order_id: int | None = None):
    """More > Delete: the selected orders from CertDesk only, after a confirmation (and a second
    one for orders whose placing is not settled)."""
    ids = _selected_ids(order_id)
    posted = request.method == "POST"
    if posted and not ids:
        return _nothing_selected("Delete")
    if posted and not request.form.get("step") and (shown := _at_own_address(ids)):
        return shown
    errors: dict[str, str] = {}
    if posted and request.form.get("step") == "delete":
        try:
            # How many, and how many of them had a certificate (the message says it stays).
            n, kept = lifecycle.delete_selected(
                current_user,
                ids,
                confirmed=request.form.get("confirm") == "1",
                unsettled_confirmed=request.form.get("confirm_unsettled") == "1",
            )
        except InputError as exc:
            errors = exc.as_errors()
        else:
            flash(_deleted_words(n, kept), "success")
            return htmx.redirect(url_for("orders.index"))
    sel = lifecycle.selection(ids)
    # Cancel leads back to where it was opened from; a deleted order's page is gone: the list.
    body = htmx.render(
        "orders/delete.html",
        sel=sel,
        errors=errors,
        back=_back_from(order_id),
        own_address=_own_address(ids) if posted else "",
    )
    return body, 422 if errors else 200
