"""How long a certificate may be ordered for: a public SSL type at most 398 days after the day
of the request (the CA/Browser Forum's bound), whether asked by certExpiryDate or certLifetime,
on a new order, a validate-only order or a renewal. PRIVATE_SSL is not capped."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from entrust_sandbox.ca import make_csr

from .conftest import assert_error

PUBLIC_TYPES = ("STANDARD_SSL", "UC_SSL", "EV_SSL", "WILDCARD_SSL")


def _today(sb) -> date:
    """The sandbox's day (its clock, not this machine's)."""
    return date.fromisoformat(sb._control("GET", "clock")["now"][:10])


def _name(cert_type: str) -> str:
    return "*.example.com" if cert_type == "WILDCARD_SSL" else "www.example.com"


def _inventory_used(api, product):
    items = api.get("inventories").json()["inventories"]
    return next(i for i in items if i["productType"] == product)["usedCount"]


@pytest.mark.parametrize("cert_type", PUBLIC_TYPES)
def test_a_public_type_is_refused_an_expiry_date_past_398_days(api, sb, cert_type):
    too_far = (_today(sb) + timedelta(days=399)).isoformat()
    response = api.order(_name(cert_type), cert_type, certExpiryDate=too_far)
    body = assert_error(response, 400, "certExpiryDate")
    assert "398" in body["errors"][0]["message"]


def test_a_far_expiry_date_is_refused_and_consumes_nothing(api, sb):
    before = _inventory_used(api, "STANDARD_SSL")
    assert_error(api.order("www.example.com", certExpiryDate="2031-06-01"), 400, "certExpiryDate")
    queued = api.order("www.example.com", certExpiryDate="2031-06-01", queueForApproval=True)
    assert_error(queued, 400, "certExpiryDate")
    assert _inventory_used(api, "STANDARD_SSL") == before


@pytest.mark.parametrize("lifetime", ["P2Y", "P3Y"])
def test_a_public_type_is_refused_a_lifetime_of_two_or_three_years(api, lifetime):
    assert_error(api.order("www.example.com", certLifetime=lifetime), 400, "certLifetime")


def test_a_date_time_past_the_bound_is_refused(api, sb):
    """Ansible's shape: a date-time, taken in EST."""
    too_far = f"{(_today(sb) + timedelta(days=400)).isoformat()}T12:00:00.00Z"
    assert_error(api.order("www.example.com", certExpiryDate=too_far), 400, "certExpiryDate")


def test_keyfactor_two_year_template_is_refused(api, sb):
    """Keyfactor's template Lifetime=24: certExpiryDate now + 24 months (a .NET date-time)
    together with certLifetime P2Y; the date decides, and is too far."""
    today = _today(sb)
    day = today.replace(year=today.year + 2, day=min(today.day, 28))
    csr, _ = make_csr("www.example.com")
    request = {
        "csr": csr,
        "clientId": 1,
        "org": "",
        "ou": [],
        "eku": "",
        "password": "",
        "certType": "STANDARD_SSL",
        "certExpiryDate": f"{day.isoformat()}T10:11:12.1234567-05:00",
        "certLifetime": "P2Y",
        "subjectAltName": ["www.example.com"],
        "endUserKeyStorageAgreement": True,
    }
    assert_error(api.post("certificates", {**request, "validateOnly": True}), 400)
    assert_error(api.post("certificates", request), 400, "certExpiryDate")


def test_validate_only_is_refused_past_the_bound(api, sb):
    too_far = (_today(sb) + timedelta(days=500)).isoformat()
    response = api.order("www.example.com", certExpiryDate=too_far, validateOnly=True)
    assert_error(response, 400, "certExpiryDate")
    response = api.order("www.example.com", certLifetime="P3Y", validateOnly=True)
    assert_error(response, 400, "certLifetime")


@pytest.mark.parametrize("cert_type", PUBLIC_TYPES)
def test_398_days_is_allowed(api, sb, cert_type):
    last = (_today(sb) + timedelta(days=398)).isoformat()
    assert api.order(_name(cert_type), cert_type, certExpiryDate=last, validateOnly=True).ok
    response = api.order(_name(cert_type), cert_type, certExpiryDate=last)
    assert response.status_code == 201, response.text
    assert response.json()["expiresAfter"] == f"{last}T23:59:59Z"


def test_one_year_and_the_default_are_within_the_bound(api, sb):
    today = _today(sb)
    for fields in ({"certLifetime": "P1Y"}, {}):
        response = api.order("www.example.com", **fields)
        assert response.status_code == 201, response.text
        expiry = date.fromisoformat(response.json()["expiresAfter"][:10])
        assert 365 <= (expiry - today).days <= 366


def test_private_ssl_may_last_three_years(api, sb):
    today = _today(sb)
    three_years = today.replace(year=today.year + 3, day=min(today.day, 28))
    for fields in ({"certLifetime": "P3Y"}, {"certExpiryDate": three_years.isoformat()}):
        response = api.order("www.example.com", "PRIVATE_SSL", **fields)
        assert response.status_code == 201, response.text
        assert response.json()["expiresAfter"][:4] == str(today.year + 3)


def test_a_renewal_past_the_bound_is_refused(api, sb):
    tracking_id = api.order("www.example.com").json()["trackingId"]
    sb.advance_clock(31)
    today = _today(sb)
    url = f"certificates/{tracking_id}/renewals"
    too_far = (today + timedelta(days=399)).isoformat()
    assert_error(api.post(url, {"certExpiryDate": too_far}), 400, "certExpiryDate")
    assert_error(api.post(url, {"certLifetime": "P2Y"}), 400, "certLifetime")
    assert api.get(f"certificates/{tracking_id}").json()["status"] == "ACTIVE"
    last = (today + timedelta(days=398)).isoformat()
    renewed = api.post(url, {"certExpiryDate": last})
    assert renewed.status_code == 201, renewed.text
    assert renewed.json()["expiresAfter"] == f"{last}T23:59:59Z"


def test_a_validate_only_renewal_past_the_bound_is_refused(api, sb):
    """Where validateOnly is honoured on renewals, the bound is checked as for a renewal."""
    tracking_id = api.order("www.example.com").json()["trackingId"]
    sb.advance_clock(31)
    sb.update_settings(fidelity={"renew_validate_only": "honour"})
    url = f"certificates/{tracking_id}/renewals"
    too_far = (_today(sb) + timedelta(days=399)).isoformat()
    body = {"certExpiryDate": too_far, "validateOnly": True}
    assert_error(api.post(url, body), 400, "certExpiryDate")
    assert api.post(url, {"certLifetime": "P1Y", "validateOnly": True}).status_code == 200


def test_a_reissue_keeps_the_original_expiry(api):
    """A reissue takes no expiry (RenewCertificateRequest's fields are not in a reissue): an
    expiry sent anyway is ignored, and the original's is kept."""
    original = api.order("www.example.com", certLifetime="P1Y").json()
    body = {"certExpiryDate": "2031-06-01", "certLifetime": "P3Y"}
    reissued = api.post(f"certificates/{original['trackingId']}/reissues", body)
    assert reissued.status_code == 201, reissued.text
    assert reissued.json()["expiresAfter"] == original["expiresAfter"]
