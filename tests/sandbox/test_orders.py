"""POST /certificates: issuance from the CSR and the account's rules."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from entrust_sandbox.ca import make_csr

from . import schema
from .conftest import assert_error

# An S/MIME order without a CSR: the sandbox makes the key and returns a PKCS#12.
SMIME_NO_CSR = {
    "certType": "SMIME_ENT",
    "cn": "Jane Smith",
    "certEmail": "jane.smith@example.com",
    "password": "pickup-secret",
    "certLifetime": "P1Y",
}


def _inventory(api, product):
    items = api.get("inventories").json()["inventories"]
    return next(i for i in items if i["productType"] == product)


def test_issued_certificate_is_real(api, sb):
    response = api.order(
        "www.example.com",
        "UC_SSL",
        subjectAltName=["www.example.com", "shop.example.org"],
        eku="SERVER_AUTH",
        certExpiryDate="2027-06-30",
        org="CertDesk Labs",
        ou=["IT"],
    )
    assert response.status_code == 201, response.text
    body = response.json()
    leaf = x509.load_pem_x509_certificate(body["endEntityCert"].encode())
    chain = [x509.load_pem_x509_certificate(p.encode()) for p in body["chainCerts"]]
    assert len(chain) == 2 and chain[0] == leaf  # leaf first, then the intermediate, no root
    intermediate = chain[1]
    assert leaf.issuer == intermediate.subject and intermediate.issuer != intermediate.subject
    intermediate.public_key().verify(
        leaf.signature,
        leaf.tbs_certificate_bytes,
        padding.PKCS1v15(),
        leaf.signature_hash_algorithm,
    )
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == ["shop.example.org", "www.example.com"]
    assert (
        leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "CertDesk Labs"
    )
    assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "IT"
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert leaf.not_valid_after_utc == datetime(2027, 6, 30, 23, 59, 59, tzinfo=UTC)
    assert body["serialNumber"] == format(leaf.serial_number, "X")
    assert body["expiresAfter"] == "2027-06-30T23:59:59Z"
    with open(sb.ca_cert_path) as fh:
        root = x509.load_pem_x509_certificate(fh.read().encode())
    assert intermediate.issuer == root.subject


def test_csr_san_used_when_no_subject_alt_name(api):
    csr, _ = make_csr("www.example.com", sans=["www.example.com", "api.example.com"])
    body = api.post("certificates", {"certType": "UC_SSL", "csr": csr}).json()
    detail = api.get(f"certificates/{body['trackingId']}").json()
    assert {s["value"] for s in detail["subjectAltName"]} == {"www.example.com", "api.example.com"}
    assert detail["domainUsed"] == "example.com"
    assert detail["org"] == "CertDesk Demo Corp"  # from the client, not the CSR


def test_csr_as_bare_base64(api):
    csr, _ = make_csr("www.example.com")
    bare = "".join(line for line in csr.splitlines() if not line.startswith("-----"))
    assert api.post("certificates", {"certType": "STANDARD_SSL", "csr": bare}).status_code == 201
    assert_error(
        api.post("certificates", {"certType": "STANDARD_SSL", "csr": "not a csr"}), 400, "csr"
    )
    junk = base64.b64encode(b"junk").decode()
    assert_error(api.post("certificates", {"certType": "STANDARD_SSL", "csr": junk}), 400, "csr")


def test_lenient_input(api):
    response = api.order(
        "www.example.com",
        ctLog="true",
        endUserKeyStorageAgreement="true",
        validateOnly="false",
        certExpiryDate="2027-03-01T12:00:00.00Z",
        certLifetime="P1Y",
        cn="ignored",
        upn="x@example.com",
        certEmail="y@example.com",
        password="",
        ou=[],
        somethingNew={"nested": True},
    )
    assert response.status_code == 201, response.text
    assert response.json()["expiresAfter"] == "2027-03-01T23:59:59Z"
    dotnet = api.order("api.example.com", certExpiryDate="2027-03-02T00:30:00.0000000+00:00")
    # A time is taken in EST: 00:30 UTC on the 2nd is still the 1st in Ottawa.
    assert dotnet.json()["expiresAfter"] == "2027-03-01T23:59:59Z"
    assert_error(api.order("www.example.com", validateOnly="maybe"), 400, "validateOnly")


def test_lifetime_and_expiry_rules(api):
    body = api.order("www.example.com", "PRIVATE_SSL", certLifetime="P2Y").json()
    assert body["expiresAfter"][:4] == str(datetime.now(UTC).year + 2)
    assert_error(api.order("www.example.com", certLifetime="P2Y"), 400, "certLifetime")
    assert_error(api.order("www.example.com", certLifetime="P5Y"), 400, "certLifetime")
    assert_error(api.order("www.example.com", certExpiryDate="2001-01-01"), 400, "certExpiryDate")


def test_validate_only_and_queue_do_not_consume(api):
    before = _inventory(api, "STANDARD_SSL")
    assert api.order("www.example.com", validateOnly=True).status_code == 200
    queued = api.order("www.example.com", queueForApproval=True)
    assert queued.status_code == 202 and set(queued.json()) == {"trackingId"}
    assert _inventory(api, "STANDARD_SSL") == before
    assert api.order("www.example.com").status_code == 201
    after = _inventory(api, "STANDARD_SSL")
    assert after["remainingCount"] == before["remainingCount"] - 1
    assert after["usedCount"] == before["usedCount"] + 1
    detail = api.get(f"certificates/{queued.json()['trackingId']}").json()
    assert detail["status"] == "PENDING" and "endEntityCert" not in detail


def test_flex_covers_ssl_when_exhausted(api, sb):
    sb.sandbox.store.conn.execute(
        "UPDATE inventories SET remaining_count = 0 WHERE product_type = 'UC_SSL'"
    )
    flex = _inventory(api, "FLEX")
    assert api.order("www.example.com", "UC_SSL").status_code == 201
    assert _inventory(api, "FLEX")["remainingCount"] == flex["remainingCount"] - 1
    sb.sandbox.store.conn.execute("UPDATE inventories SET remaining_count = 0")
    assert_error(api.order("www.example.com", "UC_SSL"), 400, "certType")


def test_pd_ssl_is_not_covered_by_flex(api):
    assert _inventory(api, "PD_SSL")["remainingCount"] == 0
    assert_error(api.order("www.example.com", "PD_SSL"), 400, "certType")


def test_unlimited_inventory(api):
    """An unlimited product is never exhausted, and its counts stay whole: a use adds to its total
    as to its used count (never more used than there ever was), and a deactivation takes both
    back."""
    before = _inventory(api, "PRIVATE_SSL")
    assert before["consumptionType"] == "UNLIMITED"
    ordered = api.order("www.example.com", "PRIVATE_SSL")
    assert ordered.status_code == 201
    after = _inventory(api, "PRIVATE_SSL")
    assert after["remainingCount"] == before["remainingCount"]
    assert after["usedCount"] == before["usedCount"] + 1
    assert after["totalCount"] == before["totalCount"] + 1
    for item in api.get("inventories").json()["inventories"]:
        assert item["totalCount"] == item["usedCount"] + item["remainingCount"], item
    tracking_id = ordered.json()["trackingId"]
    assert api.post(f"certificates/{tracking_id}/deactivations").status_code == 200
    assert _inventory(api, "PRIVATE_SSL") == before


@pytest.mark.parametrize(
    ("cn", "status"),
    [
        ("www.example.com", 201),  # APPROVED
        ("www.example.net", 201),  # RE_VERIFICATION is still usable
        ("www.expiring.example", 201),  # EXPIRING too
        ("www.pending.example", 400),  # INITIAL_VERIFICATION is not
        ("www.declined.example", 400),
        ("www.cancelled.example", 400),
        ("www.expired.example", 400),
        ("www.unknown.example", 400),
    ],
)
def test_domain_must_be_approved(api, cn, status):
    response = api.order(cn)
    assert response.status_code == status, response.text
    if status == 400:
        assert_error(response, 400, "subjectAltName")


def test_domain_approval_via_control(api, sb):
    assert_error(api.order("www.pending.example"), 400, "subjectAltName")
    sb.set_domain_status("pending.example", "APPROVED")
    assert api.order("www.pending.example").status_code == 201
    sb.set_domain_status("example.com", "EXPIRED")
    assert_error(api.order("www.example.com"), 400, "subjectAltName")


def test_domain_must_belong_to_the_client(api):
    assert api.order("www.subsidiary.example", clientId=2).status_code == 201
    assert_error(api.order("www.subsidiary.example"), 400, "subjectAltName")


def test_organization_rules(api):
    assert_error(api.order("www.example.com", org="Old Name Inc"), 400, "org")
    assert_error(api.order("www.example.com", org="Future Ventures"), 400, "org")
    assert_error(api.order("www.example.com", org="Nobody Ltd"), 400, "org")
    # org only with client 1...
    assert_error(
        api.order("www.subsidiary.example", clientId=2, org="Example Subsidiary Ltd"), 400, "org"
    )
    # ...except PD_SSL, where the org (even from the CSR) is allowed.
    assert_error(api.order("www.example.com", clientId=3), 400, "clientId")
    assert_error(api.order("www.example.com", clientId=99), 400, "clientId")


def test_pd_ssl_takes_org_from_csr(api, sb):
    sb.sandbox.store.conn.execute(
        "UPDATE inventories SET remaining_count = 3 WHERE product_type = 'PD_SSL'"
    )
    key = rsa.generate_private_key(65537, 2048)
    from cryptography.hazmat.primitives import hashes

    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "www.subsidiary.example"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CSR Org"),
                ]
            )
        )
        .sign(key, hashes.SHA256())
    )
    from cryptography.hazmat.primitives.serialization import Encoding

    pem = csr.public_bytes(Encoding.PEM).decode()
    body = {"certType": "PD_SSL", "csr": pem, "clientId": 2}
    issued = api.post("certificates", body)
    assert issued.status_code == 201, issued.text
    assert api.get(f"certificates/{issued.json()['trackingId']}").json()["org"] == "CSR Org"
    body["org"] = "Explicit Org"
    assert api.post("certificates", body).status_code == 201


def test_ou_rules(api):
    assert_error(api.order("www.example.com", ou=["Legacy Systems"]), 400, "ou")
    assert_error(api.order("www.example.com", ou=["Nope"]), 400, "ou")
    assert_error(api.order("www.example.com", ou=["IT", "Marketing"]), 400, "ou")
    assert api.order("www.example.com", ou=["Marketing"]).status_code == 201
    assert api.order("www.example.com", ou=[""]).status_code == 201


def _csr_with_ou(common_name: str, ou: str | None) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding

    names = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if ou is not None:
        names.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name(names))
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )
    return csr.public_bytes(Encoding.PEM).decode()


def _issued_ou(api, response) -> list[str]:
    """The OU of an issued certificate, as the record and the certificate itself give it."""
    assert response.status_code == 201, response.text
    body = response.json()
    leaf = x509.load_pem_x509_certificate(body["endEntityCert"].encode())
    in_cert = leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    record = api.get(f"certificates/{body['trackingId']}").json()
    assert record["ou"] == [a.value for a in in_cert]
    return record["ou"]


def test_the_csr_ou_is_used_unless_the_request_names_one(api):
    def order(ou_in_csr, **fields):
        csr = _csr_with_ou("www.example.com", ou_in_csr)
        return api.post("certificates", {"certType": "STANDARD_SSL", "csr": csr, **fields})

    assert _issued_ou(api, order("IT")) == ["IT"]
    assert _issued_ou(api, order("IT", ou=[])) == ["IT"]  # as KF sends it: no OU given
    assert _issued_ou(api, order("Nope")) == []  # an unapproved OU in the CSR is left out
    assert _issued_ou(api, order("IT", ou=["Marketing"])) == ["Marketing"]
    assert _issued_ou(api, order("IT", ou="")) == []  # "": leave the CSR's OU out
    assert_error(order("IT", ou=["Nope"]), 400, "ou")  # a named OU must be approved


def test_a_new_csr_brings_its_ou_to_a_reissue_and_a_renewal(api, sb):
    original = api.order("www.example.com", ou=["IT"]).json()["trackingId"]
    kept = api.post(f"certificates/{original}/reissues", {})
    assert _issued_ou(api, kept) == ["IT"]  # no CSR: the original's OU
    current = kept.json()["trackingId"]
    plain = _csr_with_ou("www.example.com", None)
    dropped = api.post(f"certificates/{current}/reissues", {"csr": plain})
    assert _issued_ou(api, dropped) == []  # a new CSR without an OU: none
    current = dropped.json()["trackingId"]
    other = _csr_with_ou("www.example.com", "Marketing")
    moved = api.post(f"certificates/{current}/reissues", {"csr": other})
    assert _issued_ou(api, moved) == ["Marketing"]
    sb.advance_clock(31)
    renewed = api.post(f"certificates/{moved.json()['trackingId']}/renewals", {"csr": plain})
    assert _issued_ou(api, renewed) == []


def test_code_signing_needs_key_storage_agreement(api):
    assert_error(api.order("CertDesk Demo Corp", "CODE_SIGNING"), 400, "endUserKeyStorageAgreement")
    ok = api.order("CertDesk Demo Corp", "CODE_SIGNING", endUserKeyStorageAgreement=True)
    assert ok.status_code == 201, ok.text
    leaf = x509.load_pem_x509_certificate(ok.json()["endEntityCert"].encode())
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CODE_SIGNING]


@pytest.mark.parametrize("agreement", ["yes", 1, "", ["true"]])
def test_the_key_storage_agreement_is_ignored_where_it_does_not_apply(api, agreement):
    """endUserKeyStorageAgreement is for code signing; on an SSL or S/MIME order it is an
    irrelevant field, ignored whatever it holds (it was a 400 unless a boolean). A code signing
    order still needs it true."""
    ssl = api.order("www.example.com", endUserKeyStorageAgreement=agreement)
    assert ssl.status_code == 201, ssl.text
    smime = {"cn": "Jane Smith", "certEmail": "jane@example.com", "password": "pw"}
    response = api.post(
        "certificates", {"certType": "SMIME_ENT", **smime, "endUserKeyStorageAgreement": agreement}
    )
    assert response.status_code == 201, response.text
    code_signing = api.order(
        "CertDesk Demo Corp", "CODE_SIGNING", endUserKeyStorageAgreement=agreement
    )
    assert_error(code_signing, 400, "endUserKeyStorageAgreement")


@pytest.mark.parametrize("size", [2560, 1280])
def test_rsa_key_sizes(api, size):
    key = rsa.generate_private_key(65537, size)
    csr, _ = make_csr("www.example.com", key)
    body = assert_error(api.post("certificates", {"certType": "STANDARD_SSL", "csr": csr}), 400)
    assert body["errors"][0] == {
        "message": "The key size must be 1024, 1536, 2048, 3072 or 4096 bits.",
        "field": "csr",
    }


@pytest.mark.parametrize("size", [1536, 3072])
def test_allowed_rsa_sizes(api, size):
    csr, _ = make_csr("www.example.com", rsa.generate_private_key(65537, size))
    response = api.post("certificates", {"certType": "STANDARD_SSL", "csr": csr})
    assert response.status_code == 201
    detail = api.get(f"certificates/{response.json()['trackingId']}", params={}).json()
    assert detail["keySize"] == size and detail["keyType"] == "RSA"


def test_ec_key(api):
    csr, _ = make_csr("www.example.com", ec.generate_private_key(ec.SECP384R1()))
    response = api.post("certificates", {"certType": "STANDARD_SSL", "csr": csr})
    detail = api.get(f"certificates/{response.json()['trackingId']}").json()
    assert (detail["keyType"], detail["keySize"]) == ("EC", 384)
    # A curve of the right size that is not one of the NIST curves (Bitcoin's secp256k1).
    other, _ = make_csr("www.example.com", ec.generate_private_key(ec.SECP256K1()))
    assert_error(api.post("certificates", {"certType": "STANDARD_SSL", "csr": other}), 400, "csr")


def test_required_and_unknown_values(api):
    assert_error(api.post("certificates", {"csr": make_csr("www.example.com")[0]}), 400, "certType")
    assert_error(api.order("www.example.com", "BANANA_SSL"), 400, "certType")
    assert_error(api.post("certificates", {"certType": "STANDARD_SSL"}), 400, "csr")
    assert_error(api.order("www.example.com", eku="EVERYTHING"), 400, "eku")
    assert_error(api.order("www.example.com", signingAlg="SHA-3"), 400, "signingAlg")
    raw = api.session.post(api.base + "certificates", data="{not json", timeout=10)
    assert_error(raw, 400)


def test_duplicate_dn_guard(api, sb):
    assert api.order("www.example.com").status_code == 201
    assert api.order("www.example.com").status_code == 201  # off by default in tests
    sb.update_settings(duplicate_dn_window_seconds=60)
    assert api.order("dup.example.com").status_code == 201
    assert_error(api.order("dup.example.com"), 400)
    assert api.order("other.example.com").status_code == 201


def test_the_duplicate_dn_guard_lets_through_a_client_that_waited_the_window(api, sb):
    """Ansible's integration tests wait 5 s between orders for the same DN, which the live CA
    then takes: the window is 5 s, not 6."""
    sb.update_settings(duplicate_dn_window_seconds=5)
    assert api.order("dup.example.com").status_code == 201
    sb.advance_clock(2 / 86400)
    assert_error(api.order("dup.example.com"), 400)
    sb.advance_clock(3 / 86400)  # 5 s after the first order
    response = api.order("dup.example.com")
    assert response.status_code == 201, response.text


def test_ev_needs_ev_client_and_domain(api):
    assert api.order("www.example.com", "EV_SSL").status_code == 201
    assert_error(api.order("www.example.org", "EV_SSL"), 400, "subjectAltName")
    assert_error(api.order("www.subsidiary.example", "EV_SSL", clientId=2), 400, "certType")


def test_tracking_is_kept_and_searchable(api):
    tracking = {
        "trackingInfo": "intent-1234",
        "requesterName": "Ada",
        "requesterEmail": "ada@example.com",
        "requesterPhone": "555",
        "additionalEmails": ["ops@example.com"],
        "customFields": {"text1": "CC-9"},
    }
    tracking_id = api.order("www.example.com", tracking=tracking).json()["trackingId"]
    found = api.get("certificates", params={"tracking.trackingInfo": "intent-1234"}).json()
    assert [i["trackingId"] for i in found["certificates"]] == [tracking_id]
    detail = api.get(f"certificates/{tracking_id}").json()
    assert detail["tracking"] == {**tracking, "deactivated": False}
    by_mail = api.get("certificates", params={"tracking.additionalEmails": "ops@example.com"})
    assert [i["trackingId"] for i in by_mail.json()["certificates"]] == [tracking_id]
    too_long = {"trackingInfo": "x" * 129}
    assert_error(api.order("www.example.com", tracking=too_long), 400, "tracking.trackingInfo")


@pytest.mark.parametrize("bad", ["ops at example.com", "o@" + "x" * 253])
def test_additional_emails_must_be_email_addresses(api, bad):
    """additionalEmails holds email addresses, as requesterEmail does: another value is a 400,
    on an order and on a tracking update alike, and changes nothing."""
    tracking = {"additionalEmails": ["ops@example.com", bad]}
    assert_error(api.order("www.example.com", tracking=tracking), 400, "tracking.additionalEmails")
    tracking_id = api.order("www.example.com").json()["trackingId"]
    response = api.put(f"certificates/{tracking_id}/tracking", tracking)
    assert_error(response, 400, "tracking.additionalEmails")
    assert api.get(f"certificates/{tracking_id}").json()["tracking"] == {"deactivated": False}


def test_custom_fields_keep_their_names_and_kinds(api):
    fields = {
        "text1": "CC-9",
        "number1": "12.5",
        "date1": "2027-03-01",
        "email1": "owner@example.com",
        "number2": "",  # empty: no value, not a bad number
        "errors": "not a field",  # unknown keys are dropped, never echoed
    }
    tracking_id = api.order("www.example.com", tracking={"customFields": fields}).json()[
        "trackingId"
    ]
    kept = api.get(f"certificates/{tracking_id}").json()["tracking"]["customFields"]
    # The blank number2 is no value, so it is not shown (a number field shows a number).
    assert kept == {"text1": "CC-9", "number1": 12.5, "date1": "2027-03-01"} | {
        "email1": "owner@example.com"
    }
    for name, bad in (
        ("text2", "x" * 501),
        ("number2", "twelve"),
        ("number2", "NaN"),
        ("number3", "inf"),
        ("date2", "next week"),
        ("email2", "nobody"),
    ):
        response = api.order("www.example.com", tracking={"customFields": {name: bad}})
        assert_error(response, 400, f"tracking.customFields.{name}")


def test_custom_field_values_come_back_as_their_kinds(api):
    # Whatever JSON type a value arrives in, tracking shows numberN as a number, dateN as a date
    # and the text kinds as text, on the order and after its tracking is replaced.
    sent = {"text1": 42, "number1": "12.5", "number2": 7, "date1": "2027-03-01T10:00:00Z"}
    shown = {"text1": "42", "number1": 12.5, "number2": 7.0, "date1": "2027-03-01"}
    tracking_id = api.order("www.example.com", tracking={"customFields": sent}).json()["trackingId"]
    detail = api.get(f"certificates/{tracking_id}")
    assert detail.json()["tracking"]["customFields"] == shown
    schema.check(detail, "/certificates/{trackingId}", "GET")
    replaced = api.put(f"certificates/{tracking_id}/tracking", {"customFields": sent})
    assert replaced.status_code == 200, replaced.text
    listed = api.get("certificates", params={"trackingId": tracking_id, "fields": "tracking"})
    assert listed.json()["certificates"][0]["tracking"]["customFields"] == shown
    # and they are searched as what they are
    for search in (
        {"tracking.customFields.number1": "12.5"},
        {"tracking.customFields.number2": "7"},
    ):
        found = api.get("certificates", params=search).json()["certificates"]
        assert [i["trackingId"] for i in found] == [tracking_id], search
    contains = {"tracking.customFields.number1": "con:2.5"}
    assert [
        i["trackingId"] for i in api.get("certificates", params=contains).json()["certificates"]
    ] == [tracking_id]
    assert_error(api.get("certificates", params={"tracking.customFields.number1": "x"}), 400)


@pytest.mark.parametrize(
    "name, value",
    [
        ("number1", "1_000"),  # Python's float() reads these; JSON has no such numbers
        ("number1", "\u0661\u0662"),  # ARABIC-INDIC DIGITS ONE TWO
        ("date1", "20270301"),  # ISO 8601's basic form, which RFC 3339 is not
        ("date1", "2027-03-01garbage"),  # a date followed by anything was taken as that date
        ("date1", "2027-W09-1"),
        ("date1", 20270301),  # a JSON number is no date
    ],
)
def test_a_custom_value_that_is_not_of_its_kind_is_refused(api, name, value):
    before = _inventory(api, "STANDARD_SSL")["remainingCount"]
    response = api.order("www.example.com", tracking={"customFields": {name: value}})
    assert_error(response, 400, f"tracking.customFields.{name}")
    tracking_id = api.order("www.example.com").json()["trackingId"]
    replaced = api.put(f"certificates/{tracking_id}/tracking", {"customFields": {name: value}})
    assert_error(replaced, 400, f"tracking.customFields.{name}")
    assert _inventory(api, "STANDARD_SSL")["remainingCount"] == before - 1
    search = {f"tracking.customFields.{name}": value}
    if name.startswith("number"):
        assert_error(api.get("certificates", params=search), 400, f"tracking.customFields.{name}")


def test_a_custom_value_of_its_kind_in_any_json_form_is_kept(api):
    sent = {"number1": "-1.5e2", "number2": ".5", "number3": " 3 ", "date1": "2027-03-01t10:00:00z"}
    sent |= {"date2": "2027-03-01 10:00:00+05:00"}
    shown = {"number1": -150.0, "number2": 0.5, "number3": 3.0, "date1": "2027-03-01"}
    shown |= {"date2": "2027-03-01"}
    tracking_id = api.order("www.example.com", tracking={"customFields": sent}).json()["trackingId"]
    assert api.get(f"certificates/{tracking_id}").json()["tracking"]["customFields"] == shown


def test_tracking_values_are_shown_as_json_wrote_them_or_refused(api):
    """A tracking value that is a list or an object is a 400 (it was kept as Python wrote it,
    "['555']"); a boolean reads as JSON writes it, "true"; a blank number or date is no value,
    so the answer keeps to the spec's kinds (it showed "" where a number belongs)."""
    sent = {
        "requesterName": True,
        "requesterPhone": 5550100,
        "customFields": {"text1": False, "number1": " ", "date1": "", "text3": ""},
    }
    tracking_id = api.order("www.example.com", tracking=sent).json()["trackingId"]
    detail = api.get(f"certificates/{tracking_id}")
    schema.check(detail, "/certificates/{trackingId}", "GET")
    tracking = detail.json()["tracking"]
    assert tracking["requesterName"] == "true" and tracking["requesterPhone"] == "5550100"
    assert tracking["customFields"] == {"text1": "false", "text3": ""}
    before = _inventory(api, "STANDARD_SSL")["remainingCount"]
    for bad, field in (
        ({"requesterPhone": ["555"]}, "tracking.requesterPhone"),
        ({"trackingInfo": {"ref": 1}}, "tracking.trackingInfo"),
        ({"customFields": {"text1": ["a"]}}, "tracking.customFields.text1"),
        ({"customFields": {"number1": {"n": 1}}}, "tracking.customFields.number1"),
    ):
        response = api.order("www.example.com", tracking=bad)
        body = assert_error(response, 400, field)
        assert "[" not in body["errors"][0]["message"], body
        replaced = api.put(f"certificates/{tracking_id}/tracking", bad)
        assert_error(replaced, 400, field)
    assert _inventory(api, "STANDARD_SSL")["remainingCount"] == before
    assert api.get(f"certificates/{tracking_id}").json()["tracking"] == tracking


def test_a_field_mandatory_for_the_api_must_be_filled_in(api, sb):
    # The default account's "Application" is mandatory on Entrust's own form only.
    assert api.get("customFields").json()["text2"]["mandatory"] == "EFORM"
    assert api.order("www.example.com").status_code == 201
    sb.seed(certificates=0, seed=42, api_mandatory=("text2",))
    assert api.get("customFields").json()["text2"]["mandatory"] == "BOTH"
    spent = _inventory(api, "STANDARD_SSL")["remainingCount"]
    for tracking in (None, {"customFields": {"text1": "CC-1"}}, {"customFields": {"text2": " "}}):
        extra = {} if tracking is None else {"tracking": tracking}
        assert_error(api.order("www.example.com", **extra), 400, "tracking.customFields.text2")
        refused = api.order("www.example.com", validateOnly=True, **extra)
        assert_error(refused, 400, "tracking.customFields.text2")
    assert _inventory(api, "STANDARD_SSL")["remainingCount"] == spent
    placed = api.order("www.example.com", tracking={"customFields": {"text2": "Shop"}})
    assert placed.status_code == 201, placed.text
    # A reissue keeps the original's values.
    reissued = api.post(f"certificates/{placed.json()['trackingId']}/reissues", {})
    assert reissued.status_code == 201, reissued.text
    for names in (["nope"], "text2", [{}]):
        body = {"certificates": 0, "apiMandatory": names}
        bad_seed = api.session.post(sb.root_url + "_sandbox/seed", json=body, timeout=30)
        assert_error(bad_seed, 400, "apiMandatory")


def test_a_dropdown_takes_one_of_its_choices(api):
    choice = {"customFields": {"dropdown1": "staging"}}
    placed = api.order("www.example.com", tracking=choice)
    assert placed.status_code == 201, placed.text
    tracking_id = placed.json()["trackingId"]
    for value in ("moon", "x" * 51):
        field = "tracking.customFields.dropdown1"
        bad = {"customFields": {"dropdown1": value}}
        assert_error(api.order("www.example.com", tracking=bad), 400, field)
        assert_error(api.put(f"certificates/{tracking_id}/tracking", bad), 400, field)
    kept = api.get(f"certificates/{tracking_id}").json()["tracking"]["customFields"]
    assert kept == {"dropdown1": "staging"}


def test_smime_without_csr_returns_pkcs12(api):
    from cryptography.hazmat.primitives.serialization import pkcs12

    body = dict(SMIME_NO_CSR)
    response = api.post("certificates", body)
    assert response.status_code == 201, response.text
    bundle = base64.b64decode(response.json()["pkcs12"])
    key, cert, extra = pkcs12.load_key_and_certificates(bundle, b"pickup-secret")
    assert key is not None and cert.serial_number == int(response.json()["serialNumber"], 16)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.RFC822Name) == ["jane.smith@example.com"]
    assert_error(api.post("certificates", {**body, "password": ""}), 400, "csr")
    # The key made for it is the one reported.
    detail = api.get(f"certificates/{response.json()['trackingId']}").json()
    assert (detail["keyType"], detail["keySize"]) == ("EC", key.curve.key_size)


def _email_attributes(response):
    leaf = x509.load_pem_x509_certificate(response.json()["endEntityCert"].encode())
    return [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)]


def test_cert_email_is_the_email_attribute_of_a_document_signing_dn(api):
    """certEmail is the DN's email attribute for S/MIME and document signing alike."""
    document = api.order("Ann Lee", "CDS_INDIVIDUAL", certEmail="ann@example.com")
    assert document.status_code == 201, document.text
    assert _email_attributes(document) == ["ann@example.com"]
    detail = api.get(f"certificates/{document.json()['trackingId']}").json()
    assert "ann@example.com" in detail["dn"] and "CN=Ann Lee" in detail["dn"]
    # Not on an SSL certificate, where the field does not apply.
    assert _email_attributes(api.order("www.example.com", certEmail="x@example.com")) == []


@pytest.mark.parametrize("cert_type", ["SMIME_ENT", "CDS_INDIVIDUAL"])
def test_a_reissue_that_names_no_address_keeps_the_original_one(api, cert_type):
    original = api.order("Jo Smith", cert_type, certEmail="jo@example.com")
    assert _email_attributes(original) == ["jo@example.com"]
    reissued = api.post(f"certificates/{original.json()['trackingId']}/reissues", {})
    assert reissued.status_code == 201, reissued.text
    assert _email_attributes(reissued) == ["jo@example.com"]
    tracking_id = reissued.json()["trackingId"]
    assert (
        api.get(f"certificates/{tracking_id}").json()["dn"]
        == (api.get(f"certificates/{original.json()['trackingId']}").json()["dn"])
    )


@pytest.mark.parametrize(
    "common_name, sans, field",
    [("*.example.com", None, "csr"), ("www.example.com", ["*.example.com"], "subjectAltName")],
)
def test_an_ev_certificate_names_no_wildcard(api, common_name, sans, field):
    """EV certificates cannot carry a wildcard, in the CN or in a SAN; a wildcard product
    can."""
    fields = {} if sans is None else {"subjectAltName": [common_name, *sans]}
    before = _inventory(api, "EV_SSL")["remainingCount"]
    response = api.order(common_name, "EV_SSL", **fields)
    assert_error(response, 400, field)
    assert "wildcard" in response.json()["errors"][0]["message"]
    assert _inventory(api, "EV_SSL")["remainingCount"] == before
    assert api.order("*.example.com", "WILDCARD_SSL").status_code == 201


def test_queue_for_approval_applies_to_ssl_and_document_signing_only(api):
    """The flag queues SSL and document signing orders; a code signing or S/MIME order is
    issued at once, and an S/MIME order whose key the server makes gets its PKCS#12 (which an
    approval later could not hand over)."""
    from cryptography.hazmat.primitives.serialization import pkcs12

    smime = api.post("certificates", {**SMIME_NO_CSR, "queueForApproval": True})
    assert smime.status_code == 201, smime.text
    key, cert, _ = pkcs12.load_key_and_certificates(
        base64.b64decode(smime.json()["pkcs12"]), b"pickup-secret"
    )
    assert key is not None and cert.serial_number == int(smime.json()["serialNumber"], 16)
    signing = api.order(
        "CertDesk Demo Corp", "CODE_SIGNING", endUserKeyStorageAgreement=True, queueForApproval=True
    )
    assert signing.status_code == 201, signing.text
    assert api.get(f"certificates/{signing.json()['trackingId']}").json()["status"] == "ACTIVE"
    document = api.order("Jo Smith", "CDS_INDIVIDUAL", certLifetime="P1Y", queueForApproval=True)
    assert document.status_code == 202, document.text
    assert api.get(f"certificates/{document.json()['trackingId']}").json()["status"] == "PENDING"


@pytest.mark.parametrize(
    "common_name, sans",
    [
        ("example.com", ["example.com", "www.example.com"]),
        ("www.example.com", ["example.com"]),
        ("shop.example.com", ["www.shop.example.com"]),
        ("www.example.com", None),
    ],
)
def test_standard_ssl_names_a_host_and_its_www_twin(api, common_name, sans):
    fields = {} if sans is None else {"subjectAltName": sans}
    response = api.order(common_name, **fields)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "common_name, sans",
    [
        ("www.example.com", ["www.example.com", "mail.example.com"]),
        ("example.com", ["www.example.org"]),
        ("shop.example.com", ["www.example.com"]),
    ],
)
def test_standard_ssl_refuses_other_names(api, common_name, sans):
    before = _inventory(api, "STANDARD_SSL")["remainingCount"]
    response = api.order(common_name, subjectAltName=sans)
    assert_error(response, 400, "subjectAltName")
    assert "STANDARD_SSL" in response.json()["errors"][0]["message"]
    # The same names are fine for a multi-domain product.
    assert api.order(common_name, "UC_SSL", subjectAltName=sans).status_code == 201
    assert _inventory(api, "STANDARD_SSL")["remainingCount"] == before


def test_standard_ssl_names_from_the_csr_follow_the_same_rule(api):
    csr, _ = make_csr("www.example.com", sans=["www.example.com", "api.example.com"])
    response = api.post("certificates", {"certType": "STANDARD_SSL", "csr": csr})
    assert_error(response, 400, "subjectAltName")


def test_smime_upn_domain_must_be_approved_for_the_client(api):
    body = dict(SMIME_NO_CSR)
    for upn in ("jane@elsewhere.example", "jane@cancelled.example", "not-an-email", 7):
        assert_error(api.post("certificates", {**body, "upn": upn}), 400, "upn")
    # client 2 has subsidiary.example; client 1 does not
    assert_error(api.post("certificates", {**body, "upn": "jane@subsidiary.example"}), 400, "upn")
    response = api.post("certificates", {**body, "upn": "jane@corp.example.com"})
    assert response.status_code == 201, response.text
    # On an SSL order the field does not apply and is ignored (KF sends it).
    assert api.order("www.example.com", upn="jane@elsewhere.example").status_code == 201


@pytest.mark.parametrize("cert_type", ["PRIVATE_SSL", "STANDARD_SSL"])
def test_sha1_is_issued_and_answered_as_sha2(api, cert_type):
    # "any certificates except Private SSL ... will use SHA2, even if the SHA1 algorithm is
    # specified in the request"; Private SSL keeps SHA-1 only where the account lets one choose.
    response = api.order("www.example.com", cert_type, signingAlg="SHA-1")
    assert response.status_code == 201, response.text
    body = response.json()
    leaf = x509.load_pem_x509_certificate(body["endEntityCert"].encode())
    assert leaf.signature_hash_algorithm.name == "sha256"
    detail = api.get(f"certificates/{body['trackingId']}").json()
    assert detail["signingAlg"] == "SHA-2"


@pytest.mark.parametrize(
    "value",
    [
        "ann@example.com,bob@example.com",  # a list written as one string
        "ann@example.com; bob@example.com",
        "Ann Smith <ann@example.com>",
        "ann@@example.com",
        "@example.com",
        "ann@",
    ],
)
@pytest.mark.parametrize(
    "tracking, field",
    [
        (lambda v: {"requesterEmail": v}, "tracking.requesterEmail"),
        (lambda v: {"additionalEmails": [v]}, "tracking.additionalEmails"),
        (lambda v: {"additionalEmails": v}, "tracking.additionalEmails"),
        (lambda v: {"customFields": {"email1": v}}, "tracking.customFields.email1"),
    ],
)
def test_an_email_field_holds_one_address(api, value, tracking, field):
    # The spec gives these fields `format: email`: one address, not a list of them in a string
    # (which the additionalEmails filter would never match) nor a display name.
    before = _inventory(api, "STANDARD_SSL")["remainingCount"]
    assert_error(api.order("www.example.com", tracking=tracking(value)), 400, field)
    assert _inventory(api, "STANDARD_SSL")["remainingCount"] == before
    kept = {"requesterEmail": "ann@example.com", "additionalEmails": ["bob@example.com"]}
    tracking_id = api.order("www.example.com", tracking=kept).json()["trackingId"]
    assert_error(api.put(f"certificates/{tracking_id}/tracking", tracking(value)), 400, field)
    shown = api.get(f"certificates/{tracking_id}").json()["tracking"]
    assert {k: shown.get(k) for k in kept} == kept


def test_the_other_email_fields_hold_one_address(api):
    smime = {"cn": "Ann Smith", "password": "Pickup-2027!"}
    for extra, field in (
        ({"certEmail": "ann@example.com,bob@example.com"}, "certEmail"),
        ({"certEmail": "ann@example.com", "upn": "ann @example.com"}, "upn"),
    ):
        response = api.post("certificates", {"certType": "SMIME_ENT", **smime, **extra})
        assert_error(response, 400, field)
    contact = {"name": "Ann Smith", "emailAddress": "ann@example.com, bob@example.com"}
    response = api.post("clients", {"clientName": "Listed Ltd", "authContact": contact})
    assert_error(response, 400, "authContact.emailAddress")
    assert "Listed Ltd" not in [c["clientName"] for c in api.get("clients").json()["clients"]]
    # an ordinary address still passes everywhere
    fine = "ann.smith+certs@mail.example.com"
    tracking = {"requesterEmail": fine, "additionalEmails": [fine]}
    tracking["customFields"] = {"email1": fine}
    assert api.order("www.example.com", tracking=tracking).status_code == 201
    response = api.post("certificates", {"certType": "SMIME_ENT", **smime, "certEmail": fine})
    assert response.status_code == 201, response.text


def test_every_email_field_takes_ascii_only(api):
    """An address with a non-ASCII character (an internationalised one is not taken) is refused
    wherever an address goes, as certEmail refused it; the others took it."""
    smime = {"cn": "Ann Smith", "password": "Pickup-2027!", "certEmail": "ann@example.com"}
    for wide in ("jöhn@exämple.com", "jöhn@example.com", "john@exämple.com"):
        for tracking, field in (
            ({"requesterEmail": wide}, "tracking.requesterEmail"),
            ({"additionalEmails": [wide]}, "tracking.additionalEmails"),
            ({"customFields": {"email1": wide}}, "tracking.customFields.email1"),
        ):
            assert_error(api.order("www.example.com", tracking=tracking), 400, field)
        for extra, field in (({"certEmail": wide}, "certEmail"), ({"upn": wide}, "upn")):
            body = {"certType": "SMIME_ENT", **smime, **extra}
            assert_error(api.post("certificates", body), 400, field)
        contact = {"name": "Jo", "emailAddress": wide}
        added = api.post("clients", {"clientName": "Wide Ltd", "authContact": contact})
        assert_error(added, 400, "authContact.emailAddress")
        method = {"emailSource": "SPECIFIED", "email": wide}
        body = {"domainName": "wide.example", "verificationMethod": "EMAIL", "emailMethod": method}
        assert_error(api.post("clients/1/domains", body), 400, "emailMethod.email")
