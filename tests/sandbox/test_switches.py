"""Each switch of entrust_sandbox.settings.Fidelity (the live API against the spec), both ways.

The default is the live behaviour; flipping a switch gives what spec 2.1.0 says. Where the
switch changes a response shape, the spec-mode answer is validated against the unmodified spec.
"""

from __future__ import annotations

import pytest

from entrust_sandbox.settings import Fidelity, Settings

from . import schema
from .conftest import assert_error


@pytest.fixture
def flip(sb):
    """Set switches for one test (the next reset puts the defaults back)."""

    def _flip(**switches):
        sb.update_settings(fidelity=switches)

    return _flip


def test_defaults_are_live():
    fidelity = Settings().fidelity
    assert fidelity == Fidelity()
    assert fidelity.domain_status_key == "verificationStatus"
    assert fidelity.inventory_key == "inventories"
    assert fidelity.renew_validate_only == "reject"
    assert fidelity.list_hides_approved_declined is True


def test_domain_status_key(api, flip):
    live = api.get("clients/1/domains/example.com").json()
    assert live["verificationStatus"] == "APPROVED" and "status" not in live
    flip(domain_status_key="status")
    response = api.get("clients/1/domains/example.com")
    assert response.json()["status"] == "APPROVED"
    schema.check(response, "/clients/{clientId}/domains/{domain}", "GET", schema.spec())


def test_inventory_key(api, flip):
    assert "inventories" in api.get("inventories").json()
    flip(inventory_key="inventory")
    response = api.get("inventories")
    assert set(response.json()) == {"inventory"}
    schema.check(response, "/inventories", "GET", schema.spec())


def test_all_ous_key(api, flip):
    assert set(api.get("organizationalUnits").json()) == {"organizationalunits"}
    flip(all_ous_key="organizations")
    response = api.get("organizationalUnits")
    assert set(response.json()) == {"organizations"}
    schema.check(response, "/organizationalUnits", "GET", schema.spec())


def test_crl_reasons(api, flip):
    first = api.order("www.example.com").json()["trackingId"]
    body = {"crlReason": "cessationOfOperation"}
    assert_error(api.post(f"certificates/{first}/revocations", body), 400, "crlReason")
    flip(accept_spec_only_crl_reasons=True)
    assert api.post(f"certificates/{first}/revocations", body).status_code == 200


@pytest.mark.parametrize(("mode", "status"), [("reject", 400), ("ignore", 201), ("honour", 200)])
def test_renew_validate_only(api, sb, flip, mode, status):
    tracking_id = api.order("www.example.com").json()["trackingId"]
    sb.advance_clock(31)
    flip(renew_validate_only=mode)
    response = api.post(f"certificates/{tracking_id}/renewals", {"validateOnly": True})
    assert response.status_code == status, response.text
    after = api.get(f"certificates/{tracking_id}").json()["status"]
    assert after == ("RENEWED" if status == 201 else "ACTIVE")


def test_thumbprint_endpoint(api, flip):
    item = api.get("certificates", params={"isThirdParty": "true"}).json()["certificates"][0]
    url = item["uri"].replace("/enterprise/v2/", "")
    assert api.get(url).status_code == 200
    flip(thumbprint_endpoint=False)
    assert_error(api.get(url), 404)


def test_datetime_expiry(api, flip):
    assert api.order("www.example.com", certExpiryDate="2027-02-02T10:00:00Z").status_code == 201
    flip(accept_datetime_expiry=False)
    refused = api.order("www.example.com", certExpiryDate="2027-02-02T10:00:00Z")
    assert_error(refused, 400, "certExpiryDate")
    assert api.order("www.example.com", certExpiryDate="2027-02-02").status_code == 201


def test_string_booleans(api, flip):
    assert api.order("www.example.com", validateOnly="true").status_code == 200
    flip(accept_string_booleans=False)
    assert_error(api.order("www.example.com", validateOnly="true"), 400, "validateOnly")
    assert api.order("www.example.com", validateOnly=True).status_code == 200


def test_empty_search(api, flip):
    assert api.get("certificates", params={"serialNumber": "ABCDEF"}).status_code == 200
    flip(empty_search_404=True)
    assert_error(api.get("certificates", params={"serialNumber": "ABCDEF"}), 404)
    assert api.get("certificates").status_code == 200


def test_mixed_case_pending_client(api, flip):
    clients = {c["clientId"]: c for c in api.get("clients").json()["clients"]}
    assert clients[3]["verificationStatus"] == "PENDING"
    flip(mixed_case_pending_client=True)
    clients = {c["clientId"]: c for c in api.get("clients").json()["clients"]}
    assert clients[3]["verificationStatus"] == "Pending"


def test_list_hides_approved_declined(api, flip):
    params = {"status": "in:APPROVED,DECLINED"}
    assert api.get("certificates", params=params).json()["summary"]["total"] == 0
    flip(list_hides_approved_declined=False)
    assert api.get("certificates", params=params).json()["summary"]["total"] > 0


def test_unknown_switch_refused(sb):
    import requests

    with pytest.raises(requests.HTTPError):
        sb.update_settings(fidelity={"no_such_switch": True})


def test_reset_restores_defaults(api, sb, flip):
    flip(inventory_key="inventory")
    sb.reset()
    assert sb.sandbox.settings.fidelity == Fidelity()


@pytest.mark.parametrize(
    "path, body",
    [
        ("settings", {"rate_limit": "x"}),
        ("settings", {"rate_limit": -1}),
        ("settings", {"dcv_delay_seconds": "soon"}),
        ("settings", {"dcv_delay_seconds": 10**30}),
        ("settings", {"duplicate_dn_window_seconds": 2.5}),
        ("settings", {"app_version": 5}),
        ("settings", {"fidelity": "live"}),
        ("settings", {"fidelity": {"inventory_key": 5}}),
        ("settings", {"fidelity": {"renew_validate_only": "sometimes"}}),
        ("settings", {"fidelity": {"accept_string_booleans": "no"}}),
        ("rate-limit", {"limit": 10**30}),
        ("users", {"username": "numeric-key", "apiKey": 12345}),
        ("domains/example.com", {"verificationStatus": "APPROVED", "clientId": "one"}),
    ],
)
def test_control_input_the_sandbox_could_not_run_with_is_refused(api, sb, path, body):
    """A 400 that changes nothing; it used to be taken, after which every API request (or
    every order, domain or sign-in it touched) was a 500."""
    import requests

    before = sb.sandbox.settings
    response = requests.post(sb.root_url + "_sandbox/" + path, json=body, timeout=10)
    assert_error(response, 400)
    assert sb.sandbox.settings == before
    assert api.get("application/version").status_code == 200
    assert api.order("www.example.com").status_code == 201
    added = api.post(
        "clients/1/domains", {"domainName": "new.example", "verificationMethod": "DNS"}
    )
    assert added.status_code == 202
    refused = requests.get(
        sb.base_url + "application/version", auth=("numeric-key", "12345"), timeout=10
    )
    assert_error(refused, 401)
