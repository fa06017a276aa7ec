"""Request shape of every client method: method, path, query, JSON body, Basic auth header."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from webapp.ecs import errors, types

from .helpers import BASE, KEY, USER, cert_json, page, url

AUTH = "Basic " + base64.b64encode(f"{USER}:{KEY}".encode()).decode()


def only_call(rsps):
    assert len(rsps.calls) == 1, [c.request.url for c in rsps.calls]
    return rsps.calls[0].request


def query(request) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.url).query, keep_blank_values=True)


def body(request):
    return json.loads(request.body) if request.body else None


def check_common(request, method: str, path: str) -> None:
    assert request.method == method
    assert urlsplit(request.url).path == "/enterprise/v2/" + path
    assert request.headers["Authorization"] == AUTH
    assert request.headers["Content-Type"] == "application/json"


def test_get_version(client, rsps):
    rsps.get(url("application/version"), json={"version": "12.5.0.138"})
    assert client.get_version() == "12.5.0.138"
    check_common(only_call(rsps), "GET", "application/version")


def test_list_clients_and_get_client(client, rsps):
    rsps.get(
        url("clients"),
        json={
            "clients": [
                {"clientId": 1, "clientName": "Example", "verificationStatus": "APPROVED"},
                {"clientId": 2, "clientName": "Pending org", "verificationStatus": "Pending"},
            ]
        },
    )
    clients = client.list_clients()
    assert [c.client_id for c in clients] == [1, 2]
    assert clients[1].verification_status == types.VerificationStatus.PENDING
    check_common(only_call(rsps), "GET", "clients")

    rsps.get(
        url("clients/1"),
        json={
            "clientId": 1,
            "clientName": "Example",
            "address": {"city": "Ottawa"},
            "organizations": [{"name": "Example Inc", "verificationStatus": "APPROVED"}],
        },
    )
    detail = client.get_client(1)
    assert detail.address == {"city": "Ottawa"}
    assert detail.organizations[0].name == "Example Inc"
    check_common(rsps.calls[1].request, "GET", "clients/1")


@pytest.mark.parametrize(
    ("client_id", "path"), [(None, "organizations"), (3, "clients/3/organizations")]
)
def test_list_organizations(client, rsps, client_id, path):
    rsps.get(
        url(path),
        json={"organizations": [{"name": "Org", "verificationStatus": "APPROVED", "clientId": 3}]},
    )
    orgs = client.list_organizations(client_id)
    assert orgs == [types.Organization("Org", types.VerificationStatus.APPROVED, 3)]
    check_common(only_call(rsps), "GET", path)


@pytest.mark.parametrize(
    ("client_id", "path", "key"),
    [
        (None, "organizationalUnits", "organizationalunits"),
        (2, "clients/2/organizationalUnits", "organizationalunits"),
        (None, "organizationalUnits", "organizations"),  # the spec's schema key
    ],
)
def test_list_organizational_units(client, rsps, client_id, path, key):
    rsps.get(url(path), json={key: [{"name": "IT", "verificationStatus": "APPROVED"}]})
    ous = client.list_organizational_units(client_id)
    assert [o.name for o in ous] == ["IT"]
    assert isinstance(ous[0], types.OrganizationalUnit)
    check_common(only_call(rsps), "GET", path)


def test_iter_domains_all_and_per_client(client, rsps):
    rsps.get(
        url("domains"),
        json=page(
            "domains", [{"domainName": "a.com", "verificationStatus": "APPROVED"}], 0, 1000, 1
        ),
    )
    domains = list(client.iter_domains(filters={"verificationStatus": ["APPROVED", "EXPIRING"]}))
    assert [d.domain_name for d in domains] == ["a.com"]
    request = only_call(rsps)
    check_common(request, "GET", "domains")
    assert query(request) == {
        "verificationStatus": ["in:APPROVED,EXPIRING"],
        "offset": ["0"],
        "limit": ["1000"],
    }

    rsps.get(url("clients/4/domains"), json=page("domains", [], 0, 50, 0))
    assert list(client.iter_domains(4, page_size=50, sort="domainName:asc")) == []
    request = rsps.calls[1].request
    check_common(request, "GET", "clients/4/domains")
    assert query(request) == {"sort": ["domainName:asc"], "offset": ["0"], "limit": ["50"]}


def test_get_domain_quotes_the_name(client, rsps):
    rsps.get(
        url("clients/1/domains/example.com"),
        json={
            "domainName": "example.com",
            "verificationMethod": "dns",
            "verificationStatus": "INITIAL_VERIFICATION",
            "dnsMethod": {
                "recordDomain": "_pki-validation.example.com",
                "recordType": "TXT",
                "recordValue": "AB23",
            },
        },
    )
    domain = client.get_domain(1, "example.com")
    assert domain.verification_method == types.VerificationMethod.DNS
    assert domain.dns_method.record_value == "AB23"
    assert not domain.usable
    check_common(only_call(rsps), "GET", "clients/1/domains/example.com")
    with pytest.raises(ValueError):
        client.get_domain(1, "..")
    rsps.get(url("clients/1/domains/a%2Fb"), json={"domainName": "a/b"})
    client.get_domain(1, "a/b")
    assert rsps.calls[-1].request.url.endswith("/clients/1/domains/a%2Fb")


def test_add_domain(client, rsps):
    rsps.post(
        url("clients/1/domains"),
        status=202,
        headers={
            "Location": "/clients/1/domains/example.com",
            "Retry-After": "Fri, 27 Nov 2026 10:00:05 GMT",
        },
    )
    started = client.add_domain(
        1, "example.com", "email", email_source="SPECIFIED", email="admin@example.com"
    )
    request = only_call(rsps)
    check_common(request, "POST", "clients/1/domains")
    assert body(request) == {
        "domainName": "example.com",
        "verificationMethod": "EMAIL",
        "emailMethod": {"emailSource": "SPECIFIED", "email": "admin@example.com"},
    }
    assert started.location == "/clients/1/domains/example.com"
    assert started.check_after == datetime(2026, 11, 27, 10, 0, 5, tzinfo=UTC)


def test_reverify_domain(client, rsps):
    rsps.put(url("clients/2/domains/example.com"), status=202)
    started = client.reverify_domain(2, "example.com", "DNS")
    request = only_call(rsps)
    check_common(request, "PUT", "clients/2/domains/example.com")
    assert body(request) == {"verificationMethod": "DNS"}
    assert started.client_id == 2 and started.check_after is None


@pytest.mark.parametrize("key", ["inventories", "inventory"])
def test_list_inventories(client, rsps, key):
    rsps.get(
        url("inventories"),
        json={
            key: [
                {
                    "productType": "STANDARD_SSL",
                    "totalCount": 10,
                    "remainingCount": 9,
                    "usedCount": 1,
                },
                {"productType": "FLEX", "consumptionType": "UNLIMITED", "usedCount": 0},
            ]
        },
    )
    products = client.list_inventories()
    assert products[0].product_type == types.CertType.STANDARD_SSL
    assert products[0].remaining_count == 9
    assert products[1].product_type == "FLEX" and products[1].unlimited
    check_common(only_call(rsps), "GET", "inventories")


def test_get_custom_fields(client, rsps):
    rsps.get(
        url("customFields"),
        json={
            "text1": {"enabled": True, "label": "Cost centre", "mandatory": "BOTH", "order": 2},
            "dropdown1": {"enabled": True, "label": "Env", "options": "prod, test", "order": 1},
            "number1": {"enabled": False},
        },
    )
    fields = client.get_custom_fields()
    assert [f.key for f in fields.enabled_fields] == ["dropdown1", "text1"]
    assert fields.fields["dropdown1"].options == ["prod", "test"]
    assert fields.fields["text1"].required_by_api
    check_common(only_call(rsps), "GET", "customFields")


def test_custom_fields_not_enabled(client, rsps):
    rsps.get(
        url("customFields"),
        status=404,
        json={"status": 404, "errors": [{"message": "Not enabled"}]},
    )
    fields = client.get_custom_fields()
    assert not fields.available and fields.fields == {}


def test_iter_certificates_query(client, rsps):
    rsps.get(url("certificates"), json=page("certificates", [cert_json(5)], 0, 200, 1))
    certs = list(
        client.iter_certificates(
            filters={"status": ["ACTIVE", "READY"], "isThirdParty": False, "keySize": "lt:2048"},
            fields=["trackingId", "status", "tracking"],
            sort="trackingId:desc",
            page_size=200,
        )
    )
    assert [c.tracking_id for c in certs] == [5]
    request = only_call(rsps)
    check_common(request, "GET", "certificates")
    assert query(request) == {
        "status": ["in:ACTIVE,READY"],
        "isThirdParty": ["false"],
        "keySize": ["lt:2048"],
        "fields": ["trackingId,status,tracking"],
        "sort": ["trackingId:desc"],
        "offset": ["0"],
        "limit": ["200"],
    }


def test_page_size_is_capped_at_1000(client, rsps):
    rsps.get(url("certificates"), json=page("certificates", [], 0, 1000, 0))
    list(client.iter_certificates(page_size=5000))
    assert query(only_call(rsps))["limit"] == ["1000"]


def test_get_certificate(client, rsps):
    rsps.get(
        url("certificates/42"),
        json=cert_json(
            42,
            endEntityCert="-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----",
            chainCerts=[
                "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----",
                "-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n",
            ],
            csr="-----BEGIN CERTIFICATE REQUEST-----\nCCC\n-----END CERTIFICATE REQUEST-----",
        ),
    )
    cert = client.get_certificate(42)
    assert cert.tracking_id == 42
    assert len(cert.chain_certs) == 2 and all(c.endswith("-----\n") for c in cert.chain_certs)
    assert cert.csr.startswith("-----BEGIN CERTIFICATE REQUEST-----")
    check_common(only_call(rsps), "GET", "certificates/42")


def test_get_certificate_by_thumbprint(client, rsps):
    rsps.get(
        url("certificates/thumbprints/AB12CD"),
        json=cert_json(0, isThirdParty=True, status="UNKNOWN"),
    )
    cert = client.get_certificate_by_thumbprint("AB:12:CD")
    assert cert.tracking_id == 0 and cert.is_third_party
    assert cert.status == types.CertificateStatus.UNKNOWN
    check_common(only_call(rsps), "GET", "certificates/thumbprints/AB12CD")


def test_new_certificate_issued(client, rsps):
    rsps.post(
        url("certificates"),
        status=201,
        json={
            "trackingId": 77,
            "endEntityCert": "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----",
            "chainCerts": ["-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----"],
            "serialNumber": "00ab",
            "expiresAfter": "2027-11-27T23:59:59Z",
        },
    )
    request_body = types.NewCertificateRequest(
        cert_type=types.CertType.STANDARD_SSL,
        csr="CSR",
        subject_alt_names=["www.example.com"],
        cert_expiry_date=date(2027, 11, 27),
        tracking=types.Tracking(tracking_info="certdesk:abc", requester_name="Ann"),
        eku="SERVER_AUTH",
        end_user_key_storage_agreement=True,
    )
    result = client.new_certificate(request_body)
    request = only_call(rsps)
    check_common(request, "POST", "certificates")
    assert body(request) == {
        "certType": "STANDARD_SSL",
        "csr": "CSR",
        "subjectAltName": ["www.example.com"],
        "certExpiryDate": "2027-11-27",
        "tracking": {"trackingInfo": "certdesk:abc", "requesterName": "Ann"},
        "eku": "SERVER_AUTH",
        "endUserKeyStorageAgreement": True,
    }
    assert result.outcome == types.OrderOutcome.ISSUED and result.issued
    assert result.tracking_id == 77 and result.serial_number == "AB"


def test_new_certificate_pending_and_validate_only(client, rsps):
    rsps.post(url("certificates"), status=202, json={"trackingId": 78})
    result = client.new_certificate({"certType": "STANDARD_SSL", "queueForApproval": True})
    assert result.pending and result.tracking_id == 78
    assert body(rsps.calls[0].request) == {"certType": "STANDARD_SSL", "queueForApproval": True}

    rsps.replace(responses.POST, url("certificates"), status=200, body="")
    result = client.new_certificate(
        types.NewCertificateRequest(cert_type="STANDARD_SSL", csr="C", validate_only=True)
    )
    assert result.validated_only and result.tracking_id is None and result.status_code == 200
    assert body(rsps.calls[1].request)["validateOnly"] is True


def test_a_failed_validation_is_sent_once_and_leaves_nothing_to_reconcile(client, rsps):
    rsps.post(url("certificates"), status=502, json={"errors": [{"message": "bad gateway"}]})
    with pytest.raises(errors.ServerError) as failed:
        client.new_certificate({"certType": "STANDARD_SSL", "validateOnly": True})
    assert not failed.value.outcome_unknown and len(rsps.calls) == 1
    with pytest.raises(errors.ServerError) as placing:
        client.new_certificate({"certType": "STANDARD_SSL"})
    assert placing.value.outcome_unknown and len(rsps.calls) == 2


def test_new_certificate_requires_cert_type(client):
    with pytest.raises(ValueError):
        client.new_certificate(types.NewCertificateRequest(csr="C"))


def test_reissue_and_renew(client, rsps):
    rsps.post(url("certificates/5/reissues"), status=201, json={"trackingId": 6})
    rsps.post(url("certificates/6/renewals"), status=201, json={"trackingId": 7})
    assert client.reissue(5, types.ReissueRequest(csr="NEW")).tracking_id == 6
    assert client.renew(6, types.RenewRequest(cert_lifetime="P1Y")).tracking_id == 7
    check_common(rsps.calls[0].request, "POST", "certificates/5/reissues")
    assert body(rsps.calls[0].request) == {"csr": "NEW"}
    check_common(rsps.calls[1].request, "POST", "certificates/6/renewals")
    assert body(rsps.calls[1].request) == {"certLifetime": "P1Y"}


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (
            lambda c: c.decline(9, "wrong domain"),
            {"operation": "DECLINE", "declineReason": "wrong domain"},
        ),
        (lambda c: c.suspend(9), {"operation": "SUSPEND"}),
        (lambda c: c.unsuspend(9), {"operation": "UNSUSPEND"}),
    ],
)
def test_patch_operations(client, rsps, call, expected):
    rsps.patch(url("certificates/9"), status=200)
    assert call(client) is None
    request = only_call(rsps)
    check_common(request, "PATCH", "certificates/9")
    assert body(request) == expected


def test_approve_201_and_200(client, rsps):
    rsps.patch(url("certificates/9"), status=201, json={"trackingId": 9, "serialNumber": "0F"})
    result = client.approve(9)
    assert result.issued and result.serial_number == "F"
    assert body(only_call(rsps)) == {"operation": "APPROVE"}
    rsps.replace(responses.PATCH, url("certificates/9"), status=200, body="")
    result = client.approve(9)
    assert result.outcome == types.OrderOutcome.ACCEPTED and result.tracking_id == 9


def test_revoke(client, rsps):
    rsps.post(url("certificates/3/revocations"), status=200)
    client.revoke(3, types.RevocationReason.KEY_COMPROMISE, "key leaked")
    request = only_call(rsps)
    check_common(request, "POST", "certificates/3/revocations")
    assert body(request) == {"crlReason": "keyCompromise", "revocationComment": "key leaked"}
    client.revoke(3)
    assert body(rsps.calls[1].request) == {"crlReason": "unspecified"}


def test_deactivate(client, rsps):
    rsps.post(url("certificates/3/deactivations"), status=200)
    client.deactivate(3)
    request = only_call(rsps)
    check_common(request, "POST", "certificates/3/deactivations")
    assert request.body is None


def test_replace_tracking(client, rsps):
    rsps.put(url("certificates/3/tracking"), status=200)
    client.replace_tracking(
        3, types.Tracking(tracking_info="x", additional_emails=["a@b.c"], deactivated=True)
    )
    request = only_call(rsps)
    check_common(request, "PUT", "certificates/3/tracking")
    assert body(request) == {"trackingInfo": "x", "additionalEmails": ["a@b.c"]}
    client.replace_tracking(3, {})
    assert body(rsps.calls[1].request) == {}


def test_get_statuses_chunks_and_fetches_missing(client, rsps):
    def listing(request):
        ids = query(request)["trackingId"][0].removeprefix("in:").split(",")
        # 3 is APPROVED, which ECS leaves out of list results
        items = [cert_json(int(i)) for i in ids if i not in ("3", "404")]
        return 200, {}, json.dumps(page("certificates", items, 0, 2, len(items)))

    rsps.add_callback(
        responses.GET, url("certificates"), callback=listing, content_type="application/json"
    )
    rsps.get(url("certificates/3"), json=cert_json(3, status="APPROVED"))
    rsps.get(
        url("certificates/404"),
        status=404,
        json={"status": 404, "errors": [{"message": "Unknown trackingId"}]},
    )
    result = client.get_statuses([1, 2, 3, 4, 2, 404], chunk_size=2)
    assert sorted(result) == [1, 2, 3, 4]
    assert result[3].status == types.CertificateStatus.APPROVED
    lists = [c.request for c in rsps.calls if urlsplit(c.request.url).path.endswith("certificates")]
    assert [query(r)["trackingId"] for r in lists] == [["in:1,2"], ["in:3,4"], ["in:404"]]
    assert all(query(r)["limit"] == ["2"] for r in lists)


def test_find_certificates_by_tracking_info(client, rsps):
    rsps.get(url("certificates"), json=page("certificates", [cert_json(8)], 0, 1000, 1))
    found = client.find_certificates_by_tracking_info("certdesk:req:1")
    assert [c.tracking_id for c in found] == [8]
    q = query(only_call(rsps))
    assert q["tracking.trackingInfo"] == ["eq:certdesk:req:1"]
    assert q["fields"] == ["*"]


def test_ids_must_be_integers(client, rsps):
    with pytest.raises(ValueError):
        client.get_certificate("5/../../clients")
    with pytest.raises(TypeError):
        client.get_certificate(True)
    assert len(rsps.calls) == 0


def test_base_url_without_trailing_slash(make_client, rsps):
    c = make_client()
    c2 = type(c)(BASE.rstrip("/"), USER, KEY)
    rsps.get(url("application/version"), json={"version": "1"})
    assert c2.get_version() == "1"
    c2.close()


@pytest.mark.parametrize("wait", ["99999999999999999999", "9" * 5000])
def test_a_retry_after_beyond_the_calendar_is_no_time_to_check(client, rsps, wait):
    """The domain's validation has started when the 202 comes back: a Retry-After too far for
    any date (or too long for a number) gives no time to check again, not an error."""
    rsps.put(url("clients/2/domains/example.com"), status=202, headers={"Retry-After": wait})
    started = client.reverify_domain(2, "example.com", "DNS")
    assert started.client_id == 2 and started.check_after is None
