"""Every operation's success and error answers conform to the schemas of cms-api-2.1.0.yaml."""

from __future__ import annotations

import pytest
import requests

from . import schema
from .conftest import assert_error


def test_validator_rejects_wrong_shapes():
    # The validator itself must be able to fail, or the conformance tests prove nothing.
    bad_domain = {"domainName": "example.com", "status": "APPROVED"}
    assert schema.errors(bad_domain, {"$ref": "#/definitions/Domain"})
    assert schema.errors({"status": 400}, {"$ref": "#/definitions/ErrorResponse"})
    assert schema.errors({"trackingId": "12"}, {"$ref": "#/definitions/CertificateResponse"})
    assert schema.errors(
        {"expiresAfter": "2026-01-01 00:00"}, {"$ref": "#/definitions/CertificateBase"}
    )
    assert not schema.errors(
        {"status": 404, "errors": [{"message": "x"}]}, {"$ref": "#/definitions/ErrorResponse"}
    )


def test_version(api):
    schema.check(api.get("application/version"), "/application/version", "GET")


def test_certificate_list_all_fields(api):
    response = api.get("certificates", params={"fields": "*", "limit": 300})
    schema.check(response, "/certificates", "GET")
    items = response.json()["certificates"]
    assert {i["status"] for i in items} >= {"ACTIVE", "EXPIRED", "REVOKED", "PENDING"}
    assert any(i["isThirdParty"] for i in items)


def test_certificate_list_error(api):
    response = api.get("certificates", params={"trackingId": "gt:5"})
    assert_error(response, 400, "trackingId")
    schema.check(response, "/certificates", "GET")


def test_new_order_all_outcomes(api):
    issued = api.order("www.example.com")
    assert issued.status_code == 201
    schema.check(issued, "/certificates", "POST")
    queued = api.order("shop.example.com", queueForApproval=True)
    assert queued.status_code == 202
    schema.check(queued, "/certificates", "POST")
    validated = api.order("api.example.com", validateOnly=True)
    assert validated.status_code == 200
    schema.check(validated, "/certificates", "POST")
    refused = api.order("www.not-mine.test")
    assert_error(refused, 400, "subjectAltName")
    schema.check(refused, "/certificates", "POST")


def test_certificate_detail_and_errors(api):
    tracking_id = api.order("www.example.com").json()["trackingId"]
    detail = api.get(f"certificates/{tracking_id}")
    schema.check(detail, "/certificates/{trackingId}", "GET")
    seeded = api.get("certificates/5000001")
    schema.check(seeded, "/certificates/{trackingId}", "GET")
    missing = api.get("certificates/99999999")
    assert_error(missing, 404)
    schema.check(missing, "/certificates/{trackingId}", "GET")
    invalid = api.get("certificates/abc")
    assert_error(invalid, 400)
    schema.check(invalid, "/certificates/{trackingId}", "GET")


def test_patch_reissue_renew_revoke_deactivate_tracking(api, sb):
    queued = api.order("vpn.example.com", queueForApproval=True).json()["trackingId"]
    approved = api.patch(f"certificates/{queued}", {"operation": "APPROVE"})
    assert approved.status_code == 201
    schema.check(approved, "/certificates/{trackingId}", "PATCH")
    suspend = api.patch(f"certificates/{queued}", {"operation": "SUSPEND"})
    schema.check(suspend, "/certificates/{trackingId}", "PATCH")
    again = api.patch(f"certificates/{queued}", {"operation": "SUSPEND"})
    assert_error(again, 400)
    schema.check(again, "/certificates/{trackingId}", "PATCH")

    original = api.order("mail.example.com").json()["trackingId"]
    reissued = api.post(f"certificates/{original}/reissues", {})
    assert reissued.status_code == 201
    schema.check(reissued, "/certificates/{trackingId}/reissues", "POST")
    too_young = api.post(f"certificates/{reissued.json()['trackingId']}/renewals", {})
    assert_error(too_young, 400)
    schema.check(too_young, "/certificates/{trackingId}/renewals", "POST")
    sb.advance_clock(31)
    renewed = api.post(f"certificates/{reissued.json()['trackingId']}/renewals", {})
    assert renewed.status_code == 201
    schema.check(renewed, "/certificates/{trackingId}/renewals", "POST")

    target = renewed.json()["trackingId"]
    tracking = api.put(f"certificates/{target}/tracking", {"trackingInfo": "x"})
    schema.check(tracking, "/certificates/{trackingId}/tracking", "PUT")
    revoked = api.post(f"certificates/{target}/revocations", {"crlReason": "keyCompromise"})
    schema.check(revoked, "/certificates/{trackingId}/revocations", "POST")
    not_again = api.post(f"certificates/{target}/revocations", {"crlReason": "keyCompromise"})
    assert_error(not_again, 400)
    schema.check(not_again, "/certificates/{trackingId}/revocations", "POST")
    other = api.order("app.example.com").json()["trackingId"]
    deactivated = api.post(f"certificates/{other}/deactivations")
    schema.check(deactivated, "/certificates/{trackingId}/deactivations", "POST")
    missing = api.post("certificates/99999999/deactivations")
    assert_error(missing, 404)
    schema.check(missing, "/certificates/{trackingId}/deactivations", "POST")


@pytest.mark.parametrize(
    ("url", "spec_path"),
    [
        ("clients", "/clients"),
        ("clients/1", "/clients/{clientId}"),
        ("clients/2", "/clients/{clientId}"),
        ("clients/1/organizations", "/clients/{clientId}/organizations"),
        ("clients/1/organizationalUnits", "/clients/{clientId}/organizationalUnits"),
        ("organizations", "/organizations"),
        ("organizationalUnits", "/organizationalUnits"),
        ("domains?limit=100", "/domains"),
        (
            "clients/1/domains?verificationStatus=in:APPROVED,EXPIRING",
            "/clients/{clientId}/domains",
        ),
        ("clients/1/domains/example.com", "/clients/{clientId}/domains/{domain}"),
        ("clients/1/domains/expiring.example", "/clients/{clientId}/domains/{domain}"),
        ("clients/1/domains/example.org", "/clients/{clientId}/domains/{domain}"),
        ("inventories", "/inventories"),
        ("customFields", "/customFields"),
    ],
)
def test_account_reads(api, url, spec_path):
    response = api.get(url)
    assert response.status_code == 200, response.text
    schema.check(response, spec_path, "GET")


@pytest.mark.parametrize(
    ("url", "spec_path"),
    [
        ("clients/77", "/clients/{clientId}"),
        ("clients/77/organizations", "/clients/{clientId}/organizations"),
        ("clients/77/organizationalUnits", "/clients/{clientId}/organizationalUnits"),
        ("clients/77/domains", "/clients/{clientId}/domains"),
        ("clients/1/domains/nope.example", "/clients/{clientId}/domains/{domain}"),
    ],
)
def test_account_not_found(api, url, spec_path):
    response = api.get(url)
    assert_error(response, 404)
    schema.check(response, spec_path, "GET")


def test_custom_fields_not_enabled(api, sb):
    sb.reset()
    assert_error(api.get("customFields"), 404)


def test_domain_add_and_reverify(api):
    body = {"domainName": "new.example", "verificationMethod": "DNS"}
    added = api.post("clients/1/domains", body)
    assert added.status_code == 202
    schema.check(added, "/clients/{clientId}/domains", "POST")
    bad = api.post("clients/1/domains", {"domainName": "new2.example", "verificationMethod": "FAX"})
    assert_error(bad, 400, "verificationMethod")
    schema.check(bad, "/clients/{clientId}/domains", "POST")
    redo = api.put("clients/1/domains/new.example", {"verificationMethod": "WEB_SERVER"})
    assert redo.status_code == 202
    schema.check(redo, "/clients/{clientId}/domains/{domain}", "PUT")


def test_add_client(api):
    response = api.post("clients", {"clientName": "New Client Ltd", "friendlyClientName": "New"})
    assert response.status_code == 202
    schema.check(response, "/clients", "POST")
    assert_error(api.post("clients", {}), 400, "clientName")


def test_unauthorized_has_envelope(sb):
    import requests

    response = requests.get(sb.base_url + "certificates", auth=("nobody", "wrong"), timeout=10)
    assert_error(response, 401)
    assert "errors" in response.json()


def test_unknown_path_has_envelope(api, sb):
    assert_error(api.get("no/such/thing"), 404)
    assert_error(api.session.delete(api.base + "application/version", timeout=10), 405)
    # Without credentials (or with wrong ones) every path is a 401 first: a caller learns
    # nothing of which paths exist.
    for auth in (None, (sb.api_user, "wrong key")):
        for method, path in (("GET", "no/such/thing"), ("DELETE", "application/version")):
            answer = requests.request(method, api.base + path, auth=auth, timeout=10)
            assert_error(answer, 401)
