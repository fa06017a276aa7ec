"""Other ECS clients' request shapes, replayed as they send them: Ansible's ecs_certificate and
ecs_domain, the Keyfactor gateway and plugin, Lemur, acme2certifier and Entrust's own Go client.
Each gets the status, headers and body shape it parses."""

from __future__ import annotations

from entrust_sandbox.ca import make_csr


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
