"""The state machine of section 8: every allowed transition and the refused ones."""

from __future__ import annotations

import pytest
from cryptography import x509

from .conftest import Api, assert_error


def _status(api, tracking_id):
    return api.get(f"certificates/{tracking_id}").json()["status"]


@pytest.fixture
def active(api):
    return api.order("www.example.com").json()["trackingId"]


@pytest.fixture
def pending(api):
    return api.order("www.example.com", queueForApproval=True).json()["trackingId"]


def test_approve_issues(api, pending):
    response = api.patch(f"certificates/{pending}", {"operation": "APPROVE"})
    assert response.status_code == 201
    body = response.json()
    assert body["trackingId"] == pending and body["endEntityCert"].startswith("-----BEGIN")
    assert _status(api, pending) == "ACTIVE"
    assert_error(api.patch(f"certificates/{pending}", {"operation": "APPROVE"}), 400, "operation")


def test_decline(api, pending):
    response = api.patch(f"certificates/{pending}", {"operation": "DECLINE", "declineReason": "x"})
    assert response.status_code == 200 and response.content == b""
    assert _status(api, pending) == "DECLINED"
    assert_error(api.patch(f"certificates/{pending}", {"operation": "APPROVE"}), 400)
    long = {"operation": "DECLINE", "declineReason": "y" * 255}
    other = api.order("www.example.com", queueForApproval=True).json()["trackingId"]
    assert_error(api.patch(f"certificates/{other}", long), 400, "declineReason")


def test_approve_and_decline_only_from_pending(api, active):
    assert_error(api.patch(f"certificates/{active}", {"operation": "APPROVE"}), 400)
    assert_error(api.patch(f"certificates/{active}", {"operation": "DECLINE"}), 400)


def test_suspend_and_unsuspend(api, active):
    assert_error(api.patch(f"certificates/{active}", {"operation": "UNSUSPEND"}), 400)
    assert api.patch(f"certificates/{active}", {"operation": "SUSPEND"}).status_code == 200
    assert _status(api, active) == "SUSPENDED"
    assert_error(api.patch(f"certificates/{active}", {"operation": "SUSPEND"}), 400)
    assert api.patch(f"certificates/{active}", {"operation": "UNSUSPEND"}).status_code == 200
    assert _status(api, active) == "ACTIVE"


def test_suspend_refused_for_pending(api, pending):
    assert_error(api.patch(f"certificates/{pending}", {"operation": "SUSPEND"}), 400)


def test_unknown_operation_and_id(api, active):
    assert_error(api.patch(f"certificates/{active}", {"operation": "EXPLODE"}), 400, "operation")
    assert_error(api.patch("certificates/123", {"operation": "SUSPEND"}), 404)


def test_requester_gets_403_on_patch(sb, active):
    sb.add_user("req", "req-key", role="requester")
    requester = Api(sb, "req", "req-key")
    for operation in ("APPROVE", "DECLINE", "SUSPEND", "UNSUSPEND"):
        assert_error(requester.patch(f"certificates/{active}", {"operation": operation}), 403)
    assert requester.order("www.example.com").status_code == 201  # ordering is allowed
    assert _status(requester, active) == "ACTIVE"


def test_revoke(api, active):
    response = api.post(f"certificates/{active}/revocations", {"crlReason": "unspecified"})
    assert response.status_code == 200 and response.content == b""
    assert _status(api, active) == "REVOKED"
    assert_error(api.post(f"certificates/{active}/revocations", {}), 400)


def test_revoke_suspended_and_reason_policy(api, active):
    api.patch(f"certificates/{active}", {"operation": "SUSPEND"})
    assert_error(
        api.post(f"certificates/{active}/revocations", {"crlReason": "superseded"}),
        400,
        "crlReason",
    )
    assert_error(api.post(f"certificates/{active}/revocations", {"crlReason": 0}), 400, "crlReason")
    ok = api.post(f"certificates/{active}/revocations", {"crlReason": "keyCompromise"})
    assert ok.status_code == 200


def test_a_null_reason_is_no_reason_given(api, active):
    """A client that writes out its unset fields sends `"crlReason": null`: revoked as with no
    reason at all (unspecified), like every other optional field given as null."""
    body = {"crlReason": None, "revocationComment": "key retired"}
    response = api.post(f"certificates/{active}/revocations", body)
    assert response.status_code == 200, response.text
    assert _status(api, active) == "REVOKED"
    logged = api.get("auditLogs", params={"activity": "Certificate revoked"}).json()
    assert logged["auditLogs"][-1]["comments"].endswith("reason unspecified")


def test_revoke_refused_for_pending(api, pending):
    assert_error(api.post(f"certificates/{pending}/revocations", {}), 400)


def test_deactivate(api, active):
    inv = [
        i
        for i in api.get("inventories").json()["inventories"]
        if i["productType"] == "STANDARD_SSL"
    ]
    assert api.post(f"certificates/{active}/deactivations").status_code == 200
    detail = api.get(f"certificates/{active}").json()
    assert detail["status"] == "DEACTIVATED"
    assert detail["tracking"]["deactivated"] is True
    assert detail["tracking"]["deactivatedOn"].endswith("Z")
    after = [
        i
        for i in api.get("inventories").json()["inventories"]
        if i["productType"] == "STANDARD_SSL"
    ]
    assert after[0]["remainingCount"] == inv[0]["remainingCount"] + 1  # the token comes back
    assert_error(api.post(f"certificates/{active}/deactivations"), 400)


def test_a_reissue_with_null_tracking_keeps_the_original_tracking(api):
    tracking = {"requesterName": "Jo Smith", "requesterEmail": "jo@example.com"}
    original = api.order("www.example.com", tracking=tracking).json()["trackingId"]
    response = api.post(f"certificates/{original}/reissues", {"tracking": None})
    assert response.status_code == 201, response.text
    kept = api.get(f"certificates/{response.json()['trackingId']}").json()["tracking"]
    assert kept["requesterName"] == "Jo Smith" and kept["requesterEmail"] == "jo@example.com"


def test_reissue_keeps_expiry_new_serial(api):
    original = api.order("www.example.com", certExpiryDate="2027-05-05").json()
    response = api.post(f"certificates/{original['trackingId']}/reissues", {})
    assert response.status_code == 201
    new = response.json()
    assert new["trackingId"] != original["trackingId"]
    assert new["serialNumber"] != original["serialNumber"]
    assert new["expiresAfter"] == original["expiresAfter"] == "2027-05-05T23:59:59Z"
    assert _status(api, original["trackingId"]) == "REISSUED"
    old_leaf = x509.load_pem_x509_certificate(original["endEntityCert"].encode())
    new_leaf = x509.load_pem_x509_certificate(new["endEntityCert"].encode())
    assert old_leaf.public_key() == new_leaf.public_key()  # no CSR: the key is reused
    assert_error(api.post(f"certificates/{original['trackingId']}/reissues", {}), 400)


def test_a_reissue_naming_the_same_client_keeps_the_original_organization(api):
    """clientId 1 (as Ansible always sends) on a certificate of client 1 ordered for its other
    approved organization: the certificate stays with that organization."""
    original = api.order("www.example.com", org="CertDesk Labs").json()["trackingId"]
    response = api.post(f"certificates/{original}/reissues", {"clientId": 1})
    assert response.status_code == 201, response.text
    detail = api.get(f"certificates/{response.json()['trackingId']}").json()
    assert detail["org"] == "CertDesk Labs" and "O=CertDesk Labs" in detail["dn"]


def test_reissue_with_new_csr_and_sans(api, active):
    from entrust_sandbox.ca import make_csr

    csr, key = make_csr("www.example.com")
    # The reissue of a STANDARD_SSL certificate keeps to its one-host rule.
    body = {"csr": csr, "subjectAltName": ["www.example.com", "mail.example.com"]}
    assert_error(api.post(f"certificates/{active}/reissues", body), 400, "subjectAltName")
    body = {"csr": csr, "subjectAltName": ["www.example.com", "example.com"]}
    new = api.post(f"certificates/{active}/reissues", body).json()
    leaf = x509.load_pem_x509_certificate(new["endEntityCert"].encode())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {"www.example.com", "example.com"}


def _names(api, tracking_id):
    return [s["value"] for s in api.get(f"certificates/{tracking_id}").json()["subjectAltName"]]


@pytest.mark.parametrize("action", ["reissues", "renewals"])
def test_without_a_new_csr_the_names_of_the_original_certificate_are_kept(api, sb, action):
    """The original order named its hosts with subjectAltName, overriding its CSR's SANs: a
    reissue or renewal that sends neither a CSR nor names keeps the certificate's names (as
    Ansible's forced reissue without a CSR expects), not the CSR's."""
    from entrust_sandbox.ca import make_csr

    csr, _ = make_csr("uc.example.com", sans=["uc.example.com", "old.example.com"])
    body = {"certType": "UC_SSL", "csr": csr, "subjectAltName": ["new.example.com"]}
    original = api.post("certificates", body).json()["trackingId"]
    assert _names(api, original) == ["uc.example.com", "new.example.com"]
    if action == "renewals":
        sb.advance_clock(31)
    response = api.post(f"certificates/{original}/{action}", {})
    assert response.status_code == 201, response.text
    assert _names(api, response.json()["trackingId"]) == ["uc.example.com", "new.example.com"]
    leaf = x509.load_pem_x509_certificate(response.json()["endEntityCert"].encode())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["uc.example.com", "new.example.com"]


def test_a_pd_ssl_reissue_without_a_csr_keeps_the_organization_it_was_ordered_with(api, sb):
    """The original PD_SSL order's `org` overrode its CSR's O=; a reissue without a CSR keeps
    the certificate's organization."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    from entrust_sandbox.ca import cached_key, csr_pem

    sb.sandbox.store.conn.execute(
        "UPDATE inventories SET remaining_count = 3 WHERE product_type = 'PD_SSL'"
    )
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "www.subsidiary.example"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CSR Org"),
        ]
    )
    request = x509.CertificateSigningRequestBuilder().subject_name(subject)
    csr = csr_pem(request.sign(cached_key("RSA", 2048), hashes.SHA256()))
    body = {"certType": "PD_SSL", "csr": csr, "clientId": 2, "org": "Explicit Org"}
    original = api.post("certificates", body).json()["trackingId"]
    response = api.post(f"certificates/{original}/reissues", {"clientId": 2})
    assert response.status_code == 201, response.text
    detail = api.get(f"certificates/{response.json()['trackingId']}").json()
    assert detail["org"] == "Explicit Org" and "O=Explicit Org" in detail["dn"]


@pytest.mark.parametrize("action", ["reissues", "renewals"])
def test_a_reissue_or_renewal_without_a_client_id_is_for_client_1(api, sb, action):
    """ "If the clientId is not specified, 1 is used" (ReissueCertificateRequest): the reissue or
    renewal of another client's certificate that names no client is checked as client 1's, and
    the names of client 2's domains are refused; naming the client, it goes through."""
    from entrust_sandbox.ca import make_csr

    csr, _ = make_csr("www.subsidiary.example")
    original = api.post("certificates", {"certType": "STANDARD_SSL", "csr": csr, "clientId": 2})
    tracking_id = original.json()["trackingId"]
    if action == "renewals":
        sb.advance_clock(31)
    refused = api.post(f"certificates/{tracking_id}/{action}", {})
    assert_error(refused, 400, "subjectAltName")
    assert "not approved for client 1" in refused.json()["errors"][0]["message"]
    taken = api.post(f"certificates/{tracking_id}/{action}", {"clientId": 2})
    assert taken.status_code == 201, taken.text
    detail = api.get(f"certificates/{taken.json()['trackingId']}").json()
    assert detail["org"] == "Example Subsidiary Ltd"


def test_renew_30_day_rule(api, sb, active):
    assert_error(api.post(f"certificates/{active}/renewals", {}), 400)
    sb.advance_clock(30)
    response = api.post(f"certificates/{active}/renewals", {"certLifetime": "P1Y"})
    assert response.status_code == 201
    assert response.json()["trackingId"] != active
    assert _status(api, active) == "RENEWED"
    assert_error(api.post(f"certificates/{active}/renewals", {}), 400)


def test_renew_rejects_validate_only(api, sb, active):
    sb.advance_clock(40)
    assert_error(
        api.post(f"certificates/{active}/renewals", {"validateOnly": True}), 400, "validateOnly"
    )
    assert _status(api, active) == "ACTIVE"


def test_a_renewal_with_every_optional_key_null_is_taken(api, sb, active):
    """A serializer that writes nulls (Jackson's default, Newtonsoft without
    NullValueHandling.Ignore) sends "validateOnly": null with the rest: no flag, so the renewal
    goes through, as the same body does on a new order or a reissue."""
    sb.advance_clock(31)
    keys = ("csr", "subjectAltName", "signingAlg", "eku", "ctLog", "cn", "certEmail", "upn")
    keys += ("clientId", "org", "ou", "password", "tracking", "endUserKeyStorageAgreement")
    keys += ("certExpiryDate", "certLifetime", "validateOnly")
    response = api.post(f"certificates/{active}/renewals", dict.fromkeys(keys))
    assert response.status_code == 201, response.text
    assert response.json()["trackingId"] != active
    assert _status(api, active) == "RENEWED"


def test_expiry_follows_the_clock(api, sb):
    tracking_id = api.order("www.example.com", certLifetime="P1Y").json()["trackingId"]
    sb.advance_clock(364)
    assert _status(api, tracking_id) == "ACTIVE"
    sb.advance_clock(3)
    assert _status(api, tracking_id) == "EXPIRED"
    expired = api.get("certificates", params={"trackingId": tracking_id, "fields": "status"})
    assert expired.json()["certificates"][0]["status"] == "EXPIRED"
    assert_error(api.post(f"certificates/{tracking_id}/revocations", {}), 400)
    renewed = api.post(f"certificates/{tracking_id}/renewals", {})
    assert renewed.status_code == 201  # an expired certificate can still be renewed


def test_tracking_replace(api, active):
    api.put(f"certificates/{active}/tracking", {"trackingInfo": "a", "requesterName": "Bo"})
    assert api.get(f"certificates/{active}").json()["tracking"] == {
        "trackingInfo": "a",
        "requesterName": "Bo",
        "deactivated": False,
    }
    assert api.put(f"certificates/{active}/tracking", {}).status_code == 200
    assert api.get(f"certificates/{active}").json()["tracking"] == {"deactivated": False}
    assert_error(api.put("certificates/1/tracking", {}), 404)


def test_admin_approval_hook(api, sb, pending):
    sb.set_certificate_status(pending, "ACTIVE")
    detail = api.get(f"certificates/{pending}").json()
    assert detail["status"] == "ACTIVE" and detail["endEntityCert"].startswith("-----BEGIN")


def test_seeded_pem_made_lazily_and_kept(api, sb):
    row = sb.sandbox.store.query_one(
        "SELECT tracking_id FROM certificates WHERE status = 'ACTIVE' AND cert_pem IS NULL "
        "AND tracking_id > 0 LIMIT 1"
    )
    first = api.get(f"certificates/{row['tracking_id']}").json()
    second = api.get(f"certificates/{row['tracking_id']}").json()
    assert first["endEntityCert"] == second["endEntityCert"]
    leaf = x509.load_pem_x509_certificate(first["endEntityCert"].encode())
    assert format(leaf.serial_number, "X") == first["serialNumber"]
    assert leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ") == first["expiresAfter"]
    assert first["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----")


@pytest.mark.parametrize("status", ["PENDING_QUORUM", "NA", "PENDING"])
def test_an_order_never_issued_has_details_without_a_certificate(api, sb, pending, status):
    sb.set_certificate_status(pending, status)
    response = api.get(f"certificates/{pending}")
    assert response.status_code == 200, response.text
    detail = response.json()
    assert detail["status"] == status and "endEntityCert" not in detail
    assert "serialNumber" not in detail and "issueDateTime" not in detail


def test_a_seeded_order_waiting_for_a_quorum_has_details(api, sb):
    row = sb.sandbox.store.query_one(
        "SELECT tracking_id FROM certificates WHERE status = 'PENDING_QUORUM' LIMIT 1"
    )
    detail = api.get(f"certificates/{row['tracking_id']}")
    assert detail.status_code == 200 and "endEntityCert" not in detail.json()


def test_seeded_pending_can_be_approved(api):
    pending = api.get("certificates", params={"status": "PENDING", "limit": 1}).json()
    tracking_id = pending["certificates"][0]["trackingId"]
    assert api.patch(f"certificates/{tracking_id}", {"operation": "APPROVE"}).status_code == 201


def test_approval_checks_the_domain_again(api, sb, pending):
    """A queued order is issued on approval only while its domain is still validated: one whose
    validation ran out in the meantime is refused, and the order stays PENDING until the domain
    is validated again."""
    sb.set_domain_status("example.com", "EXPIRED", client_id=1)
    refused = assert_error(
        api.patch(f"certificates/{pending}", {"operation": "APPROVE"}), 400, "subjectAltName"
    )
    assert "www.example.com" in refused["errors"][0]["message"]
    assert _status(api, pending) == "PENDING"
    sb.set_domain_status("example.com", "APPROVED", client_id=1)
    assert api.patch(f"certificates/{pending}", {"operation": "APPROVE"}).status_code == 201
    assert _status(api, pending) == "ACTIVE"


def test_approval_of_an_ev_order_checks_the_domains_ev_eligibility_again(api, sb):
    sb.add_domain(1, "evq.example", ev_eligible=True)
    queued = api.order("www.evq.example", "EV_SSL", queueForApproval=True)
    assert queued.status_code == 202, queued.text
    tracking_id = queued.json()["trackingId"]
    sb.remove_domain("evq.example", client_id=1)
    sb.add_domain(1, "evq.example", ev_eligible=False)  # vetted again, for OV only
    refused = assert_error(
        api.patch(f"certificates/{tracking_id}", {"operation": "APPROVE"}), 400, "subjectAltName"
    )
    assert "evq.example is not EV eligible" in refused["errors"][0]["message"]
    assert _status(api, tracking_id) == "PENDING"


def test_seeded_ev_orders_can_be_reissued(api):
    """The seed places its EV orders on the account's EV-eligible domain, so an imported EV order
    can be reissued (and renewed) as at Entrust."""
    listed = api.get("certificates", params={"certType": "EV_SSL", "status": "ACTIVE"}).json()
    assert listed["certificates"]
    for item in listed["certificates"][:3]:
        reissued = api.post(f"certificates/{item['trackingId']}/reissues", {})
        assert reissued.status_code == 201, reissued.text


def test_every_seeded_pending_order_can_be_approved(api):
    pending = api.get("certificates", params={"status": "PENDING", "limit": 1000}).json()
    assert pending["certificates"]
    for item in pending["certificates"]:
        approved = api.patch(f"certificates/{item['trackingId']}", {"operation": "APPROVE"})
        assert approved.status_code == 201, approved.text


def test_another_clients_organization_is_refused_with_the_client_it_belongs_to(api):
    """acme2certifier names an organization but never a client: one of client 2's approved
    organizations on a client 1 order is refused, naming the client it belongs to (not "not
    approved", which sends its user to the organization's vetting). One nobody has is still
    "not approved"."""
    from entrust_sandbox.ca import make_csr

    csr, _ = make_csr("www.example.com")
    body = {"certType": "STANDARD_SSL", "csr": csr, "org": "Example Subsidiary Ltd"}
    refused = api.post("certificates", body)
    assert_error(refused, 400, "org")
    message = refused.json()["errors"][0]["message"]
    assert "client 2's, not client 1's" in message and "clientId 2" in message
    unknown = api.post("certificates", {**body, "org": "Nobody Ltd"})
    assert_error(unknown, 400, "org")
    assert unknown.json()["errors"][0]["message"] == "The organization 'Nobody Ltd' is not approved"
