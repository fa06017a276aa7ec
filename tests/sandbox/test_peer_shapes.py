"""Other ECS clients' request shapes, replayed as they send them: Ansible's ecs_certificate and
ecs_domain, the Keyfactor gateway and plugin, Lemur, acme2certifier and Entrust's own Go client.
Each gets the status, headers and body shape it parses."""

from __future__ import annotations

import requests

from entrust_sandbox.ca import make_csr

from .conftest import assert_error


def _bare(response) -> None:
    """An answer with no body, which then claims no content type either."""
    assert response.content == b"", response.text
    assert "Content-Type" not in response.headers, response.headers


def test_answers_without_a_body_name_no_content_type(api):
    csr, _ = make_csr("www.example.com")
    # Keyfactor validates first, Ansible's validate_only sends the string "true".
    for flag in (True, "true"):
        body = {"certType": "STANDARD_SSL", "csr": csr, "validateOnly": flag}
        validated = api.post("certificates", body)
        assert validated.status_code == 200
        _bare(validated)
    tracking_id = api.order("www.example.com").json()["trackingId"]
    for operation in ("SUSPEND", "UNSUSPEND"):
        patched = api.patch(f"certificates/{tracking_id}", {"operation": operation})
        assert patched.status_code == 200
        _bare(patched)
    tracking = api.put(f"certificates/{tracking_id}/tracking", {"trackingInfo": "T-1"})
    assert tracking.status_code == 200
    _bare(tracking)
    # acme2certifier's revocation; Lemur's deactivation has no body at all.
    revoked = api.post(
        f"certificates/{tracking_id}/revocations",
        {"crlReason": "unspecified", "revocationComment": "revoked by acme2certifier"},
    )
    assert revoked.status_code == 200
    _bare(revoked)
    other = api.order("api.example.com").json()["trackingId"]
    deactivated = api.session.post(f"{api.base}certificates/{other}/deactivations", timeout=30)
    assert deactivated.status_code == 200
    _bare(deactivated)
    # The 202s carry their news in headers.
    added = api.post(
        "clients/1/domains", {"domainName": "peer.example", "verificationMethod": "DNS"}
    )
    reverified = api.put("clients/1/domains/peer.example", {"verificationMethod": "EMAIL"})
    client = api.post("clients", {"clientName": "Peer Ltd"})
    queued = api.post("async/certificates", {"certType": "STANDARD_SSL", "csr": csr})
    for accepted in (added, reverified, client, queued):
        assert accepted.status_code == 202 and accepted.headers["Location"].startswith("/")
        _bare(accepted)


def test_entrusts_go_client_domain_calls(sb):
    """Entrust's Go client: no Content-Type, a JSON `null` body on GETs, url.Values-encoded
    queries, and a space after the domain name in GetDomain and ReverifyDomain's paths."""
    session = requests.Session()
    session.auth = (sb.api_user, sb.api_key)
    base = sb.base_url
    expiry = "lt%3A2099-01-01T00%3A00%3A00%2B01%3A00"  # lt:2099-01-01T00:00:00+01:00
    query = f"limit=100&offset=0&ovExpiry={expiry}&sort=domainName%3Aasc"
    listed = session.get(f"{base}domains?{query}", data="null", timeout=30)
    assert listed.status_code == 200, listed.text
    names = [d["domainName"] for d in listed.json()["domains"]]
    assert "example.com" in names and names == sorted(names)

    added = session.post(
        f"{base}clients/1/domains",
        data='{"domainName":"go.example","verificationMethod":"DNS"}',
        timeout=30,
    )
    assert added.status_code == 202, added.text
    domain = session.get(f"{base}clients/1/domains/go.example%20", data="null", timeout=30)
    assert domain.status_code == 200, domain.text
    body = domain.json()
    assert body["domainName"] == "go.example"
    assert body["verificationStatus"] == "INITIAL_VERIFICATION"
    assert body["dnsMethod"]["recordDomain"] == "_pki-validation.go.example"

    approved = session.get(f"{base}clients/1/domains/example.com%20", data="null", timeout=30)
    assert approved.json()["verificationStatus"] == "APPROVED"
    redo = session.put(
        f"{base}clients/1/domains/example.com%20", data='{"verificationMethod":"DNS"}', timeout=30
    )
    assert redo.status_code == 202, redo.text
    assert redo.headers["Location"] == "/clients/1/domains/example.com"
    after = session.get(f"{base}clients/1/domains/example.com", timeout=30).json()
    assert after["verificationStatus"] == "RE_VERIFICATION"
    assert after["dnsMethod"]["recordValue"] != approved.json()["dnsMethod"]["recordValue"]
    # A blank is no name: the gap between two words still finds nothing.
    missing = session.get(f"{base}clients/1/domains/example%20com", timeout=30)
    assert_error(missing, 404)
    session.close()


def test_a_wrong_method_names_the_allowed_ones(api):
    """405 with the envelope and, as HTTP requires, the methods the path does take (Allow)."""
    for method, path, allowed in (
        ("DELETE", "certificates/5000002", {"GET", "PATCH"}),
        ("PUT", "certificates", {"GET", "POST"}),
        ("GET", "certificates/5000002/revocations", {"POST"}),
    ):
        response = api.session.request(method, api.base + path, timeout=30)
        assert_error(response, 405)
        assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}, path
