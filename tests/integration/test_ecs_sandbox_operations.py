"""Every client operation end to end against the sandbox (plain HTTP and HTTPS with mTLS)."""

from __future__ import annotations

import pytest

from webapp.ecs import errors, types

from .conftest import SEED_CERTIFICATES
from .helpers import make_csr, new_request, pem_certificate


def test_version_and_catalogue(ecs):
    assert ecs.get_version()
    clients = ecs.list_clients()
    assert {c.client_id for c in clients} >= {1, 2}
    primary = ecs.get_client(1)
    assert primary.client_name and primary.address
    orgs = ecs.list_organizations()
    assert any(o.verification_status == types.VerificationStatus.APPROVED for o in orgs)
    assert all(o.client_id is not None for o in orgs)
    assert ecs.list_organizations(1)
    assert any(u.name == "IT" for u in ecs.list_organizational_units())
    assert ecs.list_organizational_units(2)
    products = ecs.list_inventories()
    by_type = {p.product_type: p for p in products}
    assert types.CertType.STANDARD_SSL in by_type and "FLEX" in by_type
    fields = ecs.get_custom_fields()
    assert isinstance(fields, types.CustomFields)
    with pytest.raises(errors.NotFoundError):
        ecs.get_client(999)


def test_domains(ecs, peer):
    all_domains = list(ecs.iter_domains(page_size=3))
    assert {d.domain_name for d in all_domains} >= {"example.com", "subsidiary.example"}
    assert any(d.verification_status == types.DomainStatus.RE_VERIFICATION for d in all_domains)
    approved = list(ecs.iter_domains(1, filters={"verificationStatus": "APPROVED"}))
    assert approved and all(d.verification_status == "APPROVED" for d in approved)
    assert all(d.client_id in (None, 1) for d in approved)

    started = ecs.add_domain(1, "newly-added.example", "DNS")
    assert started.domain_name == "newly-added.example"
    assert started.location and "newly-added.example" in started.location
    domain = ecs.get_domain(1, "newly-added.example")
    assert domain.verification_status == types.DomainStatus.INITIAL_VERIFICATION
    assert domain.dns_method is not None and domain.dns_method.record_value

    ecs.reverify_domain(1, "example.com", "DNS")
    assert ecs.get_domain(1, "example.com").verification_status == "RE_VERIFICATION"
    with pytest.raises(errors.NotFoundError):
        ecs.get_domain(1, "not-there.example")
    with pytest.raises(errors.ValidationError):
        ecs.add_domain(1, "bad.example", "CARRIER_PIGEON")


def test_list_pages_through_everything(ecs):
    certs = list(ecs.iter_certificates(fields="*", page_size=5))
    ids = [c.tracking_id for c in certs]
    assert len(ids) == len(set(ids))
    # APPROVED and DECLINED orders are left out of the list, like the live API
    assert 0 < len(ids) <= SEED_CERTIFICATES
    assert all(c.status not in ("APPROVED", "DECLINED") for c in certs)
    active = list(ecs.iter_certificates({"status": "ACTIVE"}, sort="trackingId:desc"))
    assert all(c.status == types.CertificateStatus.ACTIVE for c in active)
    assert [c.tracking_id for c in active] == sorted((c.tracking_id for c in active), reverse=True)


def test_order_issue_get_and_track(ecs):
    request = new_request()
    result = ecs.new_certificate(request)
    assert result.outcome == types.OrderOutcome.ISSUED and result.status_code == 201
    assert result.tracking_id and result.serial_number == result.serial_number.upper()
    cert = ecs.get_certificate(result.tracking_id)
    assert cert.status == types.CertificateStatus.ACTIVE
    assert cert.serial_number == result.serial_number
    assert cert.expires_after is not None and cert.expires_after.tzinfo is not None
    assert cert.end_entity_cert and len(cert.chain_certs) >= 2
    leaf = pem_certificate(cert.end_entity_cert)
    assert f"{leaf.serial_number:X}" == cert.serial_number
    assert pem_certificate(cert.chain_certs[0]) == leaf
    assert cert.csr and cert.tracking.tracking_info == request.tracking.tracking_info

    found = ecs.find_certificates_by_tracking_info(request.tracking.tracking_info)
    assert [c.tracking_id for c in found] == [result.tracking_id]
    assert ecs.find_certificates_by_tracking_info("certdesk:no-such-request") == []

    ecs.replace_tracking(result.tracking_id, types.Tracking(tracking_info="replaced"))
    assert ecs.get_certificate(result.tracking_id).tracking.tracking_info == "replaced"
    assert ecs.find_certificates_by_tracking_info(request.tracking.tracking_info) == []


def test_validate_only_creates_nothing(ecs, peer):
    before = sum(1 for _ in ecs.iter_certificates())
    result = ecs.new_certificate(new_request(validate_only=True))
    assert result.outcome == types.OrderOutcome.VALIDATED and result.tracking_id is None
    assert sum(1 for _ in ecs.iter_certificates()) == before
    with pytest.raises(errors.ValidationError) as info:
        ecs.new_certificate(
            types.NewCertificateRequest(cert_type="STANDARD_SSL", csr="garbage", validate_only=True)
        )
    assert "csr" in info.value.field_errors


def test_validation_errors_name_the_field(ecs):
    with pytest.raises(errors.ValidationError) as info:
        ecs.new_certificate(new_request("www.not-my-domain.test"))
    assert info.value.field_errors, str(info.value)
    assert info.value.status == 400 and not info.value.outcome_unknown


def test_queue_approve_and_decline(ecs):
    queued = ecs.new_certificate(new_request(queue_for_approval=True))
    assert queued.pending and queued.status_code == 202
    assert ecs.get_certificate(queued.tracking_id).status == types.CertificateStatus.PENDING
    approved = ecs.approve(queued.tracking_id)
    assert approved.outcome in (types.OrderOutcome.ISSUED, types.OrderOutcome.ACCEPTED)
    assert ecs.get_certificate(queued.tracking_id).status in ("ACTIVE", "APPROVED", "READY")
    with pytest.raises(errors.ConflictError):
        ecs.approve(queued.tracking_id)

    other = ecs.new_certificate(new_request(queue_for_approval=True))
    ecs.decline(other.tracking_id, "Not needed after all")
    declined = ecs.get_certificate(other.tracking_id)
    assert declined.status == types.CertificateStatus.DECLINED
    assert declined.decline_reason == "Not needed after all"

    statuses = ecs.get_statuses([queued.tracking_id, other.tracking_id, 999999], chunk_size=1)
    assert statuses[other.tracking_id].status == "DECLINED"  # fetched one by one
    assert queued.tracking_id in statuses and 999999 not in statuses


def test_suspend_unsuspend_revoke_deactivate(ecs):
    first = ecs.new_certificate(new_request()).tracking_id
    ecs.suspend(first)
    assert ecs.get_certificate(first).status == types.CertificateStatus.SUSPENDED
    ecs.unsuspend(first)
    assert ecs.get_certificate(first).status == types.CertificateStatus.ACTIVE
    ecs.revoke(first, types.RevocationReason.KEY_COMPROMISE, "key left on a laptop")
    assert ecs.get_certificate(first).status == types.CertificateStatus.REVOKED
    with pytest.raises(errors.ConflictError) as info:
        ecs.revoke(first)
    assert "cannot be revoked" in str(info.value)
    with pytest.raises(errors.ConflictError):
        ecs.unsuspend(first)

    second = ecs.new_certificate(new_request()).tracking_id
    ecs.deactivate(second)
    cert = ecs.get_certificate(second)
    assert cert.status == types.CertificateStatus.DEACTIVATED
    assert cert.tracking.deactivated is True and cert.tracking.deactivated_on is not None
    with pytest.raises(errors.NotFoundError):
        ecs.suspend(999999)


def test_reissue_and_renew(ecs, peer):
    original = ecs.new_certificate(new_request())
    reissued = ecs.reissue(
        original.tracking_id, types.ReissueRequest(csr=make_csr("www.example.com"))
    )
    assert reissued.issued and reissued.tracking_id != original.tracking_id
    assert reissued.serial_number != original.serial_number
    assert reissued.expires_after == original.expires_after
    assert ecs.get_certificate(original.tracking_id).status == "REISSUED"

    with pytest.raises(errors.ConflictError) as info:
        ecs.renew(reissued.tracking_id, types.RenewRequest(cert_lifetime="P1Y"))
    assert "30 days" in str(info.value)
    peer.server.advance_clock(31)
    renewed = ecs.renew(reissued.tracking_id, types.RenewRequest(cert_lifetime="P1Y"))
    assert renewed.issued and renewed.tracking_id not in (
        original.tracking_id,
        reissued.tracking_id,
    )
    assert ecs.get_certificate(reissued.tracking_id).status == "RENEWED"


def test_statuses_in_chunks(ecs, peer):
    ids = [c.tracking_id for c in ecs.iter_certificates()]
    statuses = ecs.get_statuses(ids, chunk_size=4)
    assert set(statuses) == set(ids)
    lists = peer.api_requests("GET", "/certificates")
    chunked = [e for e in lists if "trackingId" in str(e.get("query"))]
    assert len(chunked) == -(-len(ids) // 4)


def test_third_party_certificate_by_thumbprint(ecs, peer):
    peer.server.seed(certificates=200, seed=7)
    third = list(ecs.iter_certificates({"isThirdParty": True}, fields="*"))
    assert third, "the seed should hold one third-party certificate per 200"
    assert third[0].tracking_id == 0 and third[0].thumbprint
    detail = ecs.get_certificate_by_thumbprint(third[0].thumbprint)
    assert detail.is_third_party and detail.end_entity_cert


def test_wrong_credentials(peer):
    client = peer.client(api_key="wrong-key")
    with pytest.raises(errors.AuthenticationError) as info:
        client.get_version()
    assert info.value.status == 401 and info.value.messages
    assert "wrong-key" not in str(info.value)
    client.close()


def test_no_secret_in_debug_logs(peer, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    client = peer.client()
    client.get_version()
    client.new_certificate(new_request())
    bad = peer.client(api_key="another-secret-key")
    with pytest.raises(errors.AuthenticationError):
        bad.get_version()
    for secret in (peer.api_key, "another-secret-key", "PRIVATE KEY", "Authorization"):
        assert secret not in caplog.text
    assert "ECS POST /certificates -> 201" in caplog.text
    client.close()
    bad.close()
