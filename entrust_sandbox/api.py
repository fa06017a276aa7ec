"""The ECS Enterprise API v2 endpoints under /enterprise/v2.

Every request is authenticated (Basic, plus a client certificate where the user needs one) and
counted against the rate limit before it reaches a view. Views parse input leniently, call
`orders` or `listing`, and answer the status codes and shapes of the live API.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from email.utils import format_datetime

from flask import Blueprint, Response, current_app, g, jsonify, request

from . import listing, orders
from .auth import PEER_CERT, authenticate, credentials
from .clock import fmt
from .errors import ApiError, bad_request, not_found, parse_json

bp = Blueprint("ecs_api", __name__, url_prefix="/enterprise/v2")


def _sandbox():
    return current_app.extensions["sandbox"]


@bp.before_request
def _authenticate_and_limit():
    sandbox = _sandbox()
    g.started = time.perf_counter()
    g.user = authenticate(sandbox, credentials(request), request.environ.get(PEER_CERT))
    wait = sandbox.rate_limiter.check(g.user["username"], sandbox.settings.rate_limit)
    if wait is not None:
        raise ApiError(
            429,
            "Rate limit exceeded",
            headers={
                "Retry-After": str(wait),
                "X-Rate-Limit-Limit": str(sandbox.settings.rate_limit),
            },
        )
    sandbox.store.expire_due()


@bp.after_request
def _no_type_without_a_body(response: Response) -> Response:
    """An answer without a body claims no content type; werkzeug's default for one (its OPTIONS
    answer, the only such here) is text/html."""
    if response.mimetype == "text/html" and not response.get_data():
        del response.headers["Content-Type"]
    return response


def _body(required: bool = False):
    """The JSON body as a dict; an empty body is {} unless required."""
    raw = request.get_data()
    if not raw.strip():
        if required:
            raise bad_request("A request body is required")
        return {}
    try:
        data = parse_json(raw)
    except ValueError as exc:
        raise bad_request("The request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object")
    return data


def json_response(body, status: int = 200) -> Response:
    """JSON answer via the stdlib encoder: Flask's jsonify costs ~5x more on 1000-item pages."""
    return Response(json.dumps(body, separators=(",", ":")), status, mimetype="application/json")


def _empty(status: int = 200, headers=None) -> Response:
    """An answer without a body, so without a Content-Type (werkzeug would say text/html)."""
    response = Response(status=status, headers=headers)
    del response.headers["Content-Type"]
    return response


def _note(activity: str, comments: str) -> None:
    """Add a change the signed-in API user made to the account's audit log (GET /auditLogs)."""
    _sandbox().store.add_audit_log(activity, g.user, comments)


_PATCHED = {
    "APPROVE": "approved",
    "DECLINE": "declined",
    "SUSPEND": "suspended",
    "UNSUSPEND": "unsuspended",
}


def _domain_of(location: str) -> str:
    return location.rstrip("/").rpartition("/")[2]


# -- application ----------------------------------------------------------------------------


@bp.get("/application/version")
def app_version():
    """GetAppVersion: the version string; clients use it as the credential check."""
    return jsonify({"version": _sandbox().settings.app_version})


# -- certificates ---------------------------------------------------------------------------


@bp.get("/certificates")
def list_certificates():
    """GetCertificates: paged, filtered, sorted list; APPROVED/DECLINED left out (live)."""
    sandbox = _sandbox()
    offset, limit = listing.parse_paging(request.args)
    where, params = listing.build_filters(request.args, listing.CERT_FILTERS)
    if sandbox.settings.fidelity.list_hides_approved_declined:
        where.append("status NOT IN ('APPROVED', 'DECLINED')")
    order, sort_text = listing.parse_sort(
        request.args.get("sort"), listing.CERT_SORT, "trackingId:asc"
    )
    wanted = listing.select_fields(request.args.get("fields"))
    clause = " WHERE " + " AND ".join(where) if where else ""
    store = sandbox.store
    total, rows = store.page("certificates", clause, params, order, limit, offset)
    if total == 0 and sandbox.settings.fidelity.empty_search_404:
        raise not_found("No certificates found")
    items = [listing.cert_list_item(row, wanted) for row in rows]
    page_summary = listing.summary(g.started, store.clock.now(), offset, limit, total, sort_text)
    return json_response({"summary": page_summary, "certificates": items})


@bp.post("/certificates")
def new_certificate():
    """NewCertRequest: 201 issued, 202 queued, 200 validate-only."""
    request_body = _body(required=True)
    status, body = orders.new_order(_sandbox(), request_body, g.user)
    if status in (201, 202):
        _note(
            "Certificate requested", f"Tracking ID {body['trackingId']}, {_cert_type(request_body)}"
        )
    return (jsonify(body), status) if body is not None else _empty(status)


def _cert_type(body: dict) -> str:
    return str(body.get("certType") or "").upper()


@bp.post("/async/certificates")
def new_async_certificate():
    """NewAsyncCertRequest: carry out the order as a job; 202 with Location /async/jobs/{id}.
    A body that is no JSON object is refused at once (400, as the spec lists); what the order's
    checks refuse is the job's error."""
    sandbox = _sandbox()
    request_body = _body(required=True)
    job_id = str(uuid.uuid4())
    job = {"status": "SUCCESS", "resourceType": "CERTIFICATE"}
    try:
        _status, body = orders.new_order(sandbox, request_body, g.user)
        if body is not None:
            job["resourceLocation"] = f"/certificates/{body['trackingId']}"
            comments = f"Tracking ID {body['trackingId']}, {_cert_type(request_body)}, job {job_id}"
            _note("Certificate requested", comments)
    except ApiError as err:
        error = {"message": err.message}
        if err.field:
            error["field"] = err.field
        job = {
            "status": "ERROR",
            "resourceType": "CERTIFICATE",
            "error": {"status": err.status, "errors": [error]},
        }
    with sandbox.store.tx() as conn:
        conn.execute("INSERT INTO jobs VALUES (?, ?)", (job_id, json.dumps(job)))
    return _empty(202, {"Location": f"/async/jobs/{job_id}"})


@bp.get("/async/jobs/<job_id>")
def get_async_job(job_id: str):
    """GetAsyncJobDetails: the job's status, resource location or error; 404 Unknown jobId."""
    row = _sandbox().store.query_one("SELECT body FROM jobs WHERE job_id = ?", (job_id,))
    if row is None:
        raise not_found("Unknown jobId")
    return json_response(json.loads(row["body"]))


def _certificate_ex(store, row) -> dict:
    item = listing.cert_base(row)
    pem, csr = store.certificate_pem(row)
    if pem:
        item["endEntityCert"] = pem
        item["chainCerts"] = [pem] if row["is_third_party"] else [pem, store.ca.intermediate_pem]
    if csr:
        item["csr"] = csr
    if row["creator_name"]:
        item["creatorName"] = row["creator_name"]
    if row["decline_reason"]:
        item["declineReason"] = row["decline_reason"]
    if row["status"] in ("ACTIVE", "READY") and not row["is_third_party"]:
        item["pickupUrl"] = orders.pickup_url(row)
    return item


@bp.get("/certificates/<tracking_id>")
def get_certificate(tracking_id: str):
    """GetCertificate: CertificateEx with endEntityCert, chainCerts and csr."""
    store = _sandbox().store
    row = orders.certificate_row(store, orders.parse_tracking_id(tracking_id))
    return jsonify(_certificate_ex(store, row))


@bp.get("/certificates/thumbprints/<thumbprint>")
def get_by_thumbprint(thumbprint: str):
    """Third-party certificate (trackingId 0) by SHA-1 thumbprint; not in spec 2.1.0."""
    sandbox = _sandbox()
    if not sandbox.settings.fidelity.thumbprint_endpoint:
        raise not_found("Resource not found")
    row = sandbox.store.query_one(
        "SELECT * FROM certificates WHERE thumbprint = ?", (thumbprint.upper(),)
    )
    if row is None:
        raise not_found("Unknown thumbprint")
    return jsonify(_certificate_ex(sandbox.store, row))


@bp.patch("/certificates/<tracking_id>")
def update_certificate(tracking_id: str):
    """UpdateCertificate: APPROVE (201 CertificateResponse) or DECLINE/SUSPEND/UNSUSPEND (200)."""
    number, request_body = orders.parse_tracking_id(tracking_id), _body(required=True)
    status, body = orders.patch(_sandbox(), number, request_body, g.user)
    operation = str(request_body.get("operation")).upper()
    _note(f"Certificate {_PATCHED[operation]}", f"Tracking ID {number}")
    return (jsonify(body), status) if body is not None else _empty(status)


@bp.post("/certificates/<tracking_id>/reissues")
def reissue_certificate(tracking_id: str):
    """ReissueCertRequest: 201 with a new trackingId and the same expiry."""
    number = orders.parse_tracking_id(tracking_id)
    body = orders.reissue(_sandbox(), number, _body(), g.user)
    _note("Certificate reissued", f"Tracking ID {number}, new tracking ID {body['trackingId']}")
    return jsonify(body), 201


@bp.post("/certificates/<tracking_id>/renewals")
def renew_certificate(tracking_id: str):
    """RenewCertRequest: 201 with a new trackingId."""
    number = orders.parse_tracking_id(tracking_id)
    status, body = orders.renew(_sandbox(), number, _body(), g.user)
    if status in (201, 202):
        _note("Certificate renewed", f"Tracking ID {number}, new tracking ID {body['trackingId']}")
    return (jsonify(body), status) if body is not None else _empty(status)


@bp.post("/certificates/<tracking_id>/revocations")
def revoke_certificate(tracking_id: str):
    """RevokeCertRequest: 200 with no body."""
    number, request_body = orders.parse_tracking_id(tracking_id), _body()
    reason = orders.revoke(_sandbox(), number, request_body)
    _note("Certificate revoked", f"Tracking ID {number}, reason {reason}")
    return _empty()


@bp.post("/certificates/<tracking_id>/deactivations")
def deactivate_certificate(tracking_id: str):
    """DeactivateCertRequest: 200 with no body."""
    number = orders.parse_tracking_id(tracking_id)
    orders.deactivate(_sandbox(), number)
    _note("Certificate deactivated", f"Tracking ID {number}")
    return _empty()


@bp.put("/certificates/<tracking_id>/tracking")
def update_tracking(tracking_id: str):
    """UpdateCertTracking: replace all tracking data; 200 with no body."""
    number = orders.parse_tracking_id(tracking_id)
    orders.replace_tracking(_sandbox(), number, _body())
    _note("Certificate tracking updated", f"Tracking ID {number}")
    return _empty()


# -- clients and organizations --------------------------------------------------------------


def _client_status(sandbox, status: str | None) -> str | None:
    if status == "PENDING" and sandbox.settings.fidelity.mixed_case_pending_client:
        return "Pending"
    return status


def _client_item(sandbox, client: dict) -> dict:
    keys = ("clientId", "clientName", "friendlyClientName", "verificationStatus", "ovExpiryDate")
    keys += ("evVerificationStatus", "evExpiryDate", "qvVerificationStatus", "qvExpiryDate")
    item = {k: client[k] for k in keys if client.get(k) is not None}
    item["verificationStatus"] = _client_status(sandbox, item.get("verificationStatus"))
    item["uri"] = orders.client_uri(client["clientId"])
    return item


def _client_or_404(client_id: int) -> dict:
    client = orders.client_row(_sandbox().store, client_id)
    if client is None:
        raise not_found("Unknown clientId")
    return client


@bp.get("/clients")
def get_clients():
    """GetClients: every client, not paged."""
    sandbox = _sandbox()
    rows = sandbox.store.query("SELECT body FROM clients ORDER BY client_id")
    return jsonify({"clients": [_client_item(sandbox, json.loads(r["body"])) for r in rows]})


@bp.post("/clients")
def add_client():
    """AddClient: a new non-primary client awaiting vetting, with its own organization (its
    name, as a seeded client's), which its orders without `org` are for; 202 with Location."""
    fields = orders.new_client_fields(_body(required=True))
    store = _sandbox().store
    with store.tx() as conn:
        client_id = conn.execute("SELECT COALESCE(MAX(client_id), 0) + 1 FROM clients").fetchone()[
            0
        ]
        client = {"clientId": client_id, **fields, "verificationStatus": "PENDING"}
        conn.execute(
            "INSERT INTO clients (client_id, body) VALUES (?, ?)", (client_id, json.dumps(client))
        )
        orders.vet_own_organization(conn, client_id, client["clientName"], "PENDING")
    _note("Client added", f"Client ID {client_id}, {client['clientName']}")
    return _empty(202, {"Location": f"/clients/{client_id}/"})


@bp.get("/clients/<int:client_id>")
def get_client(client_id: int):
    """GetClient: ClientEx; `organizations` only for the primary client."""
    sandbox = _sandbox()
    client = _client_or_404(client_id)
    # ClientEx is BaseClient plus details: EV status lives in evInfo here, not at the top.
    keys = ("clientId", "clientName", "friendlyClientName", "verificationStatus", "ovExpiryDate")
    item = {k: client[k] for k in keys if client.get(k) is not None}
    item["verificationStatus"] = _client_status(sandbox, item.get("verificationStatus"))
    for key in ("address", "authContact"):
        if client.get(key):
            item[key] = client[key]
    if client.get("evVerificationStatus"):
        item["evInfo"] = {"status": client["evVerificationStatus"]}
        if client.get("evExpiryDate"):
            item["evInfo"]["expiryDate"] = client["evExpiryDate"]
    if client_id == 1:
        item["organizations"] = _orgs(sandbox.store, "organizations", client_id)
    return jsonify(item)


def _orgs(store, table: str, client_id: int | None) -> list[dict]:
    if client_id is None:
        rows = store.query(f"SELECT * FROM {table} ORDER BY client_id, id")  # noqa: S608
        return [
            {
                "name": r["name"],
                "verificationStatus": r["verification_status"],
                "clientId": r["client_id"],
            }
            for r in rows
        ]
    rows = store.query(
        f"SELECT * FROM {table} WHERE client_id = ? ORDER BY id",  # noqa: S608 - fixed table
        (client_id,),
    )
    return [{"name": r["name"], "verificationStatus": r["verification_status"]} for r in rows]


@bp.get("/clients/<int:client_id>/organizations")
def get_client_organizations(client_id: int):
    """GetClientOrganizations: no clientId on the items."""
    _client_or_404(client_id)
    return jsonify({"organizations": _orgs(_sandbox().store, "organizations", client_id)})


@bp.get("/clients/<int:client_id>/organizationalUnits")
def get_client_ous(client_id: int):
    """GetClientOrganizationalUnits: under the all-lower-case key `organizationalunits`."""
    _client_or_404(client_id)
    return jsonify({"organizationalunits": _orgs(_sandbox().store, "org_units", client_id)})


@bp.get("/organizations")
def get_organizations():
    """GetOrganizations: every client's organizations, with clientId."""
    return jsonify({"organizations": _orgs(_sandbox().store, "organizations", None)})


@bp.get("/organizationalUnits")
def get_ous():
    """GetOrganizationalUnits: key `organizationalunits` (live) or `organizations` (spec)."""
    sandbox = _sandbox()
    key = sandbox.settings.fidelity.all_ous_key
    return jsonify({key: _orgs(sandbox.store, "org_units", None)})


# -- domains --------------------------------------------------------------------------------


def _domain_page(client_id: int | None):
    sandbox = _sandbox()
    offset, limit = listing.parse_paging(request.args)
    filters = dict(listing.DOMAIN_FILTERS)
    if client_id is not None:
        filters.pop("clientId")
    where, params = listing.build_filters(request.args, filters)
    if client_id is not None:
        where.append("client_id = ?")
        params.append(client_id)
    order, sort_text = listing.parse_sort(
        request.args.get("sort"), listing.DOMAIN_SORT, "domainName:asc"
    )
    orders.age_domains(sandbox.store)
    clause = " WHERE " + " AND ".join(where) if where else ""
    store = sandbox.store
    total, rows = store.page("domains", clause, params, order, limit, offset)
    now = store.clock.now()
    key = sandbox.settings.fidelity.domain_status_key
    return jsonify(
        {
            "summary": listing.summary(g.started, now, offset, limit, total, sort_text),
            "domains": [listing.domain_json(r, key, fmt(now)) for r in rows],
        }
    )


@bp.get("/domains")
def get_all_domains():
    """GetAllDomains: every client's domains, paged and filtered."""
    return _domain_page(None)


@bp.get("/clients/<int:client_id>/domains")
def get_domains(client_id: int):
    """GetDomains: one client's domains, paged and filtered."""
    _client_or_404(client_id)
    return _domain_page(client_id)


def _accepted(location: str) -> Response:
    sandbox = _sandbox()
    # Retry-After here is an HTTP-date: when the validation values will be there to fetch. It
    # is real time, as the Date header is: the values come the same seconds later either way.
    retry = sandbox.store.clock.wall() + timedelta(seconds=sandbox.settings.dcv_delay_seconds)
    return _empty(202, {"Location": location, "Retry-After": format_datetime(retry, usegmt=True)})


@bp.post("/clients/<int:client_id>/domains")
def add_domain(client_id: int):
    """AddDomain: 202 with Location and an HTTP-date Retry-After, no body."""
    location = orders.add_domain(_sandbox(), client_id, _body(required=True))
    _note("Domain added", f"Client ID {client_id}, {_domain_of(location)}")
    return _accepted(location)


@bp.get("/clients/<int:client_id>/domains/<domain>")
def get_domain(client_id: int, domain: str):
    """GetDomain: DomainEx with the validation challenge once it is ready."""
    sandbox = _sandbox()
    orders.age_domains(sandbox.store)
    row = sandbox.store.query_one(
        "SELECT * FROM domains WHERE client_id = ? AND domain_name = ?",
        (client_id, orders.path_domain(domain)),
    )
    if row is None:
        raise not_found("Unknown clientId or domain")
    now = fmt(sandbox.store.clock.now())
    key = sandbox.settings.fidelity.domain_status_key
    return jsonify(listing.domain_json(row, key, now, extended=True))


@bp.put("/clients/<int:client_id>/domains/<domain>")
def reverify_domain(client_id: int, domain: str):
    """ReverifyDomain: new challenge, 202 with Location and Retry-After."""
    location = orders.reverify_domain(_sandbox(), client_id, domain, _body(required=True))
    _note("Domain re-verification requested", f"Client ID {client_id}, {_domain_of(location)}")
    return _accepted(location)


# -- inventory and custom fields ------------------------------------------------------------


@bp.get("/inventories")
def get_inventory():
    """GetInventory: under `inventories` (live) or `inventory` (spec)."""
    sandbox = _sandbox()
    rows = sandbox.store.query("SELECT * FROM inventories ORDER BY product_type")
    items = []
    for r in rows:
        item = {"productType": r["product_type"]}
        if r["consumption_type"]:
            item["consumptionType"] = r["consumption_type"]
        item.update(
            totalCount=r["total_count"],
            remainingCount=r["remaining_count"],
            usedCount=r["used_count"],
        )
        items.append(item)
    return jsonify({sandbox.settings.fidelity.inventory_key: items})


@bp.get("/customFields")
def get_custom_fields():
    """GetCustomFieldConfig: 404 "Not enabled" when the account has none."""
    fields = orders.account_fields(_sandbox().store)
    if not fields:
        raise not_found("Not enabled")
    return jsonify(fields)


# -- audit log ------------------------------------------------------------------------------


@bp.get("/auditLogs")
def get_audit_logs():
    """GetAuditLogs: the account's changes, paged, filtered and sorted like the certificates."""
    sandbox = _sandbox()
    offset, limit = listing.parse_paging(request.args)
    where, params = listing.build_filters(request.args, listing.AUDIT_FILTERS)
    order, sort_text = listing.parse_sort(
        request.args.get("sort"), listing.AUDIT_SORT, "activityDate:asc", ties_follow=True
    )
    wanted = listing.select_fields(
        request.args.get("fields"), listing.AUDIT_FIELDS, listing.AUDIT_FIELDS
    )
    clause = " WHERE " + " AND ".join(where) if where else ""
    store = sandbox.store
    total, rows = store.page("audit_logs", clause, params, order, limit, offset)
    items = [listing.audit_log_item(row, wanted) for row in rows]
    page_summary = listing.summary(g.started, store.clock.now(), offset, limit, total, sort_text)
    return json_response({"summary": page_summary, "auditLogs": items})
