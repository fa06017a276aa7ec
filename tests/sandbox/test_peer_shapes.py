"""Other ECS clients' request shapes, replayed as they send them: Ansible's ecs_certificate and
ecs_domain, the Keyfactor gateway and plugin, Lemur, acme2certifier and Entrust's own Go client.
Each gets the status, headers and body shape it parses."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from entrust_sandbox.ca import cached_key, csr_pem, make_csr

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


def test_options_names_the_methods_and_no_content_type(api):
    """OPTIONS answers with Allow and no body, so with no (text/html) content type either."""
    response = api.session.options(api.base + "certificates/5000002", timeout=30)
    assert response.status_code == 200
    _bare(response)
    assert {"GET", "PATCH"} <= {m.strip() for m in response.headers["Allow"].split(",")}


def _ansible_opener(sb):
    """ansible.module_utils.urls.Request given url_username/url_password but not
    force_basic_auth: urllib sends the credentials only once a 401 asks for Basic."""
    manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    manager.add_password(None, sb.base_url, sb.api_user, sb.api_key)
    return urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(manager))


def _ansible_call(opener, url, method="GET", body=None):
    """One of Ansible's ECS operations: (status, the body as it reads it)."""
    data = json.dumps(body).encode() if body else None
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        response = opener.open(request, timeout=30)
    except urllib.error.HTTPError as err:
        response = err
    try:
        return response.getcode(), json.loads(response.read())
    except ValueError:  # no JSON: Ansible takes it as {}
        return response.getcode(), {}


def test_ansible_modules_over_urllib(sb):
    """ecs_certificate and ecs_domain: Basic only after the challenge, booleans as strings, the
    expiry as `%Y-%m-%dT%H:%M:%S.00Z`, dates read back with strptime and no fractions."""
    opener, base = _ansible_opener(sb), sb.base_url
    challenge = requests.get(base + "application/version", timeout=30)
    assert_error(challenge, 401)
    assert challenge.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert _ansible_call(opener, base + "application/version")[0] == 200

    csr, _ = make_csr("www.example.com")
    expiry = (datetime.now(UTC) + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%S.00Z")
    body = {
        "csr": csr,
        "tracking": {
            "requesterName": "Jo",
            "requesterEmail": "jo@example.com",
            "requesterPhone": "1",
        },
        "subjectAltName": ["www.example.com"],
        "eku": "SERVER_AUTH",
        "certType": "STANDARD_SSL",
        "clientId": 1,
        "ctLog": "true",
        "endUserKeyStorageAgreement": "false",
        "certExpiryDate": expiry,
    }
    status, result = _ansible_call(
        opener, base + "certificates", "POST", {**body, "validateOnly": "true"}
    )
    assert (status, result) == (200, {})
    status, result = _ansible_call(opener, base + "certificates", "POST", body)
    assert status == 201, result
    leaf = x509.load_pem_x509_certificate(result["endEntityCert"].encode())
    serial = f"{leaf.serial_number:X}"  # "{0:X}".format(serial), as the module searches
    status, found = _ansible_call(opener, f"{base}certificates?serialNumber={serial}")
    assert [c["trackingId"] for c in found["certificates"]] == [result["trackingId"]]
    _, details = _ansible_call(opener, f"{base}certificates/{result['trackingId']}")
    datetime.strptime(details["expiresAfter"], "%Y-%m-%dT%H:%M:%SZ")
    assert details["status"] == "ACTIVE" and details["serialNumber"] == serial

    status, unknown = _ansible_call(opener, base + "clients/1/domains/ansible.example")
    assert status == 404 and unknown["errors"][0]["message"]
    email = {"emailSource": "SPECIFIED", "email": "admin@ansible.example"}
    domain = {"verificationMethod": "EMAIL", "emailMethod": email, "domainName": "ansible.example"}
    assert _ansible_call(opener, base + "clients/1/domains", "POST", domain) == (202, {})
    _, added = _ansible_call(opener, base + "clients/1/domains/ansible.example")
    assert added["verificationStatus"] == "INITIAL_VERIFICATION"
    assert added["verificationMethod"].lower() == "email"
    assert added["emailMethod"] == ["admin@ansible.example"]
    _, approved = _ansible_call(opener, base + "clients/1/domains/example.com")
    datetime.strptime(approved["ovExpiry"], "%Y-%m-%dT%H:%M:%SZ")


def test_keyfactor_enrolment_and_lookups(api):
    """The AnyCA plugin's NewCertificateRequest as it serializes it: both certExpiryDate (a .NET
    local time, seven fraction digits) and certLifetime (`P0Y` for six months), an empty eku,
    tracking.deactivated, S/MIME fields on an SSL order; validated first, then sent."""
    csr, _ = make_csr("www.example.com")
    bare = "".join(line for line in csr.splitlines() if not line.startswith("-----"))
    day = (datetime.now(UTC) + timedelta(days=182)).date()
    tracking = {
        "trackingInfo": "",
        "requesterEmail": "email@email.invalid",
        "requesterName": "TestUser",
        "requesterPhone": "0000000000",
        "deactivated": False,
    }
    common = {
        "csr": bare,
        "clientId": 1,
        "tracking": tracking,
        "certEmail": "email@email.invalid",
        "subjectAltName": ["www.example.com"],
        "password": "",
        "signingAlg": "SHA-2",
        "eku": "",
        "cn": "www.example.com",
        "upn": "email@email.invalid",
        "ou": [],
        "endUserKeyStorageAgreement": True,
    }
    request = {
        **common,
        "org": "CertDesk Demo Corp",
        "certType": "STANDARD_SSL",
        "certExpiryDate": f"{day.isoformat()}T10:11:12.1234567-05:00",
        "certLifetime": "P0Y",
        "queueForApproval": False,
    }
    validated = api.post("certificates", {**request, "validateOnly": True})
    assert validated.status_code == 200 and "errors" not in validated.text
    issued = api.post("certificates", {**request, "validateOnly": False})
    assert issued.status_code == 201, issued.text
    tracking_id = issued.json()["trackingId"]
    assert issued.json()["expiresAfter"] == f"{day.isoformat()}T23:59:59Z"
    detail = api.get(f"certificates/{tracking_id}").json()
    assert detail["eku"] == "SERVER_AND_CLIENT_AUTH" and detail["tracking"]["deactivated"] is False
    assert detail["tracking"]["requesterName"] == "TestUser"

    # GetCertificateBySerialNumber: TrimStart('0'), limit=1, offset=0, built by hand.
    serial = detail["serialNumber"]
    found = api.get(f"certificates?limit=1&offset=0&serialNumber={serial.lstrip('0')}").json()
    assert [c["trackingId"] for c in found["certificates"]] == [tracking_id]
    assert found["certificates"][0]["uri"] == f"/enterprise/v2/certificates/{tracking_id}"

    reissued = api.post(f"certificates/{tracking_id}/reissues", {**common, "org": ""})
    assert reissued.status_code == 201, reissued.text
    assert reissued.json()["trackingId"] != tracking_id
    assert reissued.json()["expiresAfter"] == detail["expiresAfter"]


def test_lemur_and_acme2certifier_issuers_and_lemur_source(api, sb):
    """Lemur's issuer body (tracking values may be null) reads chainCerts[1]; acme2certifier
    sends cn and org with a bare-date expiry; Lemur's source lists `fields=uri,dn` and GETs
    each certificate at the host plus its uri."""
    csr, _ = make_csr("www.example.com")
    expiry = (datetime.now(UTC) + timedelta(days=375)).strftime("%Y-%m-%d")
    lemur = {
        "signingAlg": "SHA-2",
        "eku": "SERVER_AND_CLIENT_AUTH",
        "certType": "STANDARD_SSL",
        "certExpiryDate": expiry,
        "tracking": {"requesterName": None, "requesterEmail": None, "requesterPhone": None},
        "csr": csr,
    }
    issued = api.post("certificates", lemur)
    assert issued.status_code == 201, issued.text
    chain = issued.json()["chainCerts"]
    leaf, intermediate = (x509.load_pem_x509_certificate(p.encode()) for p in chain)
    assert leaf.issuer == intermediate.subject
    a2c = {
        "csr": csr,
        "signingAlg": "SHA-2",
        "eku": "SERVER_AND_CLIENT_AUTH",
        "cn": "www.example.com",
        "org": "CertDesk Demo Corp",
        "endUserKeyStorageAgreement": True,
        "certType": "STANDARD_SSL",
        "certExpiryDate": expiry,
    }
    assert api.post("certificates", a2c).status_code == 201

    params = {"status": "ACTIVE", "isThirdParty": "false", "fields": "uri,dn", "offset": 1}
    items = api.get("certificates", params=params).json()["certificates"]
    assert items and all(set(i) == {"uri", "dn"} for i in items)
    for item in items[:3]:
        detail = api.session.get(sb.root_url.rstrip("/") + item["uri"], timeout=30)
        assert detail.status_code == 200, detail.text
        assert detail.json()["dn"] == item["dn"] and detail.json()["status"] == "ACTIVE"


def test_a_doubled_slash_reaches_the_resource(sb):
    """A base URL configured with a trailing slash, joined to paths that start with one (as
    acme2certifier and Lemur join theirs): the call is served, not redirected. urllib, as
    Ansible uses it, cannot follow a redirect for a POST at all."""
    opener = _ansible_opener(sb)
    base = sb.base_url  # ends in a slash
    status, version = _ansible_call(opener, base + "/application/version")
    assert status == 200 and version["version"]
    csr, _ = make_csr("www.example.com")
    status, issued = _ansible_call(
        opener, base + "/certificates", "POST", {"certType": "STANDARD_SSL", "csr": csr}
    )
    assert status == 201 and issued["trackingId"]
    listed = requests.get(
        base + "/certificates",
        params={"trackingId": issued["trackingId"]},
        auth=(sb.api_user, sb.api_key),
        allow_redirects=False,
        timeout=30,
    )
    assert listed.status_code == 200 and listed.json()["summary"]["total"] == 1
    # Lemur's source: a host ending in a slash, plus the uri.
    uri = listed.json()["certificates"][0]["uri"]
    detail = requests.get(
        sb.root_url + uri, auth=(sb.api_user, sb.api_key), allow_redirects=False, timeout=30
    )
    assert detail.status_code == 200 and detail.json()["trackingId"] == issued["trackingId"]
    stranger = requests.get(base + "/application/version", allow_redirects=False, timeout=30)
    assert_error(stranger, 401)


def test_a_domains_retry_after_is_on_the_clock_of_the_date_header(api, sb):
    """The 202's Retry-After says when the challenge can be fetched, as an HTTP-date: on the
    same clock as the Date header, also once sandbox time has been moved on (a client that
    waits for it must not wait the days the sandbox clock was advanced)."""
    sb.update_settings(dcv_delay_seconds=1)
    sb.advance_clock(30)
    added = api.post(
        "clients/1/domains", {"domainName": "later.example", "verificationMethod": "DNS"}
    )
    assert added.status_code == 202
    sent = parsedate_to_datetime(added.headers["Date"])
    retry_after = parsedate_to_datetime(added.headers["Retry-After"])
    assert timedelta(0) <= retry_after - sent <= timedelta(seconds=2), (sent, retry_after)
    time.sleep(max(0.0, (retry_after - datetime.now(UTC)).total_seconds()) + 0.2)
    assert "dnsMethod" in api.get("clients/1/domains/later.example").json()


def _organization_and_address(api, tracking_id) -> tuple[str, dict]:
    """The certificate's org, and the O, L, ST and C of its dn."""
    detail = api.get(f"certificates/{tracking_id}").json()
    subject = x509.Name.from_rfc4514_string(detail["dn"])
    names = {
        attribute.rfc4514_attribute_name: attribute.value
        for attribute in subject
        if attribute.rfc4514_attribute_name in ("O", "L", "ST", "C")
    }
    return detail["org"], names


CLIENT_1_SUBJECT = {"O": "CertDesk Demo Corp", "L": "Ottawa", "ST": "Ontario", "C": "CA"}


@pytest.mark.parametrize("operation", ["reissues", "renewals"])
def test_ansible_moves_a_client_2_certificate_to_client_1(api, sb, operation):
    """Ansible's ecs_certificate always sends clientId (1 by default) and no org. A reissue or
    renewal of a client 2 certificate then takes client 1's organization and address, as a new
    order for client 1 would: "When there is no org parameter specified in the request, the
    organization from the Client is used"."""
    first = api.order("h9476.example.com", clientId=2)  # example.com is approved for both
    assert first.status_code == 201, first.text
    original = first.json()["trackingId"]
    org, subject = _organization_and_address(api, original)
    assert org == "Example Subsidiary Ltd"
    assert subject == {"O": "Example Subsidiary Ltd", "L": "Leeds", "C": "GB"}

    tracking = {"requesterName": "Jo", "requesterEmail": "j@x.com", "requesterPhone": "5"}
    body = {"tracking": tracking, "clientId": 1}
    if operation == "renewals":
        sb.advance_clock(31)
        expiry = datetime.now(UTC) + timedelta(days=400)
        body["certExpiryDate"] = expiry.strftime("%Y-%m-%dT%H:%M:%S.00Z")
    successor = api.post(f"certificates/{original}/{operation}", body)
    assert successor.status_code == 201, successor.text
    assert _organization_and_address(api, successor.json()["trackingId"]) == (
        "CertDesk Demo Corp",
        CLIENT_1_SUBJECT,
    )


def test_keyfactor_reissue_with_an_empty_org_takes_the_named_clients_organization(api):
    """Keyfactor derives clientId from the new CSR's O= (1 when it has none) and sends
    "org": "", which counts as no org: the named client's organization is used."""
    original = api.order("h9478.example.com", clientId=2).json()["trackingId"]
    csr, _ = make_csr("h9478.example.com")
    body = {"csr": csr, "clientId": 1, "org": "", "ou": [], "subjectAltName": []}
    reissued = api.post(f"certificates/{original}/reissues", body)
    assert reissued.status_code == 201, reissued.text
    assert _organization_and_address(api, reissued.json()["trackingId"]) == (
        "CertDesk Demo Corp",
        CLIENT_1_SUBJECT,
    )


@pytest.mark.parametrize("read_first", [True, False])
def test_an_approved_order_of_the_account_shows_its_csr_like_every_other(api, sb, read_first):
    """Every order ECS holds came with a CSR, and GetCertificate shows it (`csr`): Keyfactor's
    sync reads it for a pending order and after approving one, and Lemur's source reads
    `certificate["csr"]` of every ACTIVE certificate it imports, so one without it stops the
    import. An order already in the account when the sandbox starts is no exception, before
    approval or after, and its CSR holds the key of the certificate issued for it."""
    listed = api.get("certificates", params={"status": "PENDING", "fields": "trackingId"})
    tracking_id = listed.json()["certificates"][0]["trackingId"]
    if read_first:
        pending = api.get(f"certificates/{tracking_id}").json()
        assert pending["status"] == "PENDING" and "BEGIN CERTIFICATE REQUEST" in pending["csr"]
    approved = api.patch(f"certificates/{tracking_id}", {"operation": "APPROVE"})
    assert approved.status_code == 201, approved.text

    params = {"status": "ACTIVE", "isThirdParty": "false", "fields": "uri,dn", "limit": 1000}
    uris = [c["uri"] for c in api.get("certificates", params=params).json()["certificates"]]
    uri = f"/enterprise/v2/certificates/{tracking_id}"
    assert uri in uris
    detail = api.session.get(sb.root_url.rstrip("/") + uri, timeout=30).json()
    assert detail["status"] == "ACTIVE" and detail.get("csr"), detail
    leaf = x509.load_pem_x509_certificate(detail["endEntityCert"].encode())
    csr = x509.load_pem_x509_csr(detail["csr"].encode())
    assert csr.public_key() == leaf.public_key()


@pytest.mark.parametrize(
    ("domain", "method", "challenge"),
    [
        ("cancelled.example", "DNS", "dnsMethod"),
        ("declined.example", "WEB_SERVER", "webServerMethod"),
        ("expired.example", "EMAIL", "emailMethod"),
    ],
)
def test_ansible_ecs_domain_asks_again_for_a_domain_whose_validation_ended(
    api, domain, method, challenge
):
    """ecs_domain finds the domain (GetDomain), and as its status is none of APPROVED,
    INITIAL_VERIFICATION and RE_VERIFICATION, asks again with ReverifyDomain: the method in
    upper case, no domainName (the domain exists), for EMAIL an emailMethod of INCLUDE_WHOIS.
    It then reads verificationStatus, clientId and the new method's challenge."""
    before = api.get(f"clients/1/domains/{domain}").json()
    assert before["verificationStatus"] in ("CANCELLED", "DECLINED", "EXPIRED")
    body = {"verificationMethod": method}
    if method == "EMAIL":
        body["emailMethod"] = {"emailSource": "INCLUDE_WHOIS"}
    asked = api.put(f"clients/1/domains/{domain}", body)
    assert asked.status_code == 202, asked.text
    assert asked.headers["Location"] == f"/clients/1/domains/{domain}"
    after = api.get(f"clients/1/domains/{domain}").json()
    assert after["verificationStatus"] == "INITIAL_VERIFICATION"
    assert after["verificationMethod"] == method and after["clientId"] == 1
    assert after[challenge] and after[challenge] != before.get(challenge)
    if method == "EMAIL":
        assert f"admin@{domain}" in after["emailMethod"]


def test_acme2certifier_orders_from_an_acme_csr_without_a_subject(api):
    """An ACME client's CSR often names its hosts in subjectAltName only, with an empty
    subject; acme2certifier passes it on with `cn` (the first SAN), the organization by name
    and a bare-date expiry, needs a 201, and finds the order again by the serial without its
    leading zeros before revoking it as unspecified."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    names = ["example.com", "www.example.com"]
    builder = builder.add_extension(
        x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
    )
    csr = csr_pem(builder.sign(cached_key("RSA", 2048), hashes.SHA256()))
    expiry = (datetime.now(UTC) + timedelta(days=365)).strftime("%Y-%m-%d")
    body = {
        "csr": csr,
        "signingAlg": "SHA-2",
        "eku": "SERVER_AND_CLIENT_AUTH",
        "cn": names[0],
        "org": "CertDesk Demo Corp",
        "endUserKeyStorageAgreement": True,
        "certType": "STANDARD_SSL",
        "certExpiryDate": expiry,
    }
    issued = api.post("certificates", body)
    assert issued.status_code == 201, issued.text
    leaf = x509.load_pem_x509_certificate(issued.json()["endEntityCert"].encode())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == names

    serial = f"{leaf.serial_number:032X}".lstrip("0")
    found = api.get(f"certificates?serialNumber={serial}").json()["certificates"]
    assert [c["trackingId"] for c in found] == [issued.json()["trackingId"]]
    revoked = api.post(
        f"certificates/{found[0]['trackingId']}/revocations",
        {"crlReason": "unspecified", "revocationComment": "revoked by acme2certifier"},
    )
    assert revoked.status_code == 200
