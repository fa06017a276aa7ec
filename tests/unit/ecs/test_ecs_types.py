"""Lenient parsing of ECS JSON into the typed results."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webapp.ecs import types

from .helpers import cert_json

T = datetime(2020, 8, 20, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-08-20T23:59:59Z", T),
        ("2020-08-20T23:59:59.000Z", T),
        ("2020-08-20T23:59:59.1234567Z", T + timedelta(microseconds=123456)),
        ("2020-08-20T19:59:59-04:00", T),
        ("2020-08-21T01:59:59.5+02:00", T + timedelta(microseconds=500000)),
        ("2020-08-20T23:59:59", T),  # naive is taken as UTC
        ("2020-08-20", datetime(2020, 8, 20, tzinfo=UTC)),
        ("not a date", None),
        ("", None),
        (None, None),
        (12, None),
    ],
)
def test_parse_datetime(text, expected):
    parsed = types.parse_datetime(text)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is UTC


@given(st.datetimes(timezones=st.just(timezone(timedelta(hours=-5)))))
def test_parse_datetime_round_trips_any_offset(dt):
    assert types.parse_datetime(dt.isoformat()) == dt.astimezone(UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("00239010fb4dd0fd", "239010FB4DD0FD"),
        ("0A:1B", "A1B"),
        ("0x0f", "F"),
        (255, "FF"),
        ("0", "0"),
        ("000", "0"),
        (None, None),
    ],
)
def test_normalize_serial(raw, expected):
    assert types.normalize_serial(raw) == expected


def test_unknown_enum_values_are_kept_as_strings():
    cert = types.Certificate.from_json(
        cert_json(1, status="BRAND_NEW_STATE", certType="STANDARD_PLUS_SSL")
    )
    assert cert.status == "BRAND_NEW_STATE" and not isinstance(cert.status, types.CertificateStatus)
    assert cert.cert_type == "STANDARD_PLUS_SSL"
    known = types.Certificate.from_json(cert_json(1, status="ACTIVE", certType="EV_SSL"))
    assert known.status is types.CertificateStatus.ACTIVE and known.status == "ACTIVE"
    assert known.cert_type is types.CertType.EV_SSL


def test_full_certificate_detail():
    cert = types.Certificate.from_json(
        {
            "trackingId": "05559124",
            "status": "ACTIVE",
            "serialNumber": "0239010fb4",
            "subjectAltName": [
                {"type": "dNSName", "value": "www.example.com"},
                {"type": "iPAddress", "value": "10.0.0.1"},
            ],
            "issueDateTime": "2019-08-20T12:00:00Z",
            "expiresAfter": "2020-08-20T23:59:59Z",
            "keySize": "2048",
            "ou": "Only one",
            "tracking": {
                "trackingInfo": "certdesk:1",
                "additionalEmails": ["a@b.c"],
                "customFields": {"text1": "x"},
                "deactivated": "true",
                "deactivatedOn": "2020-01-01T00:00:00Z",
            },
            "isThirdParty": False,
            "chainCerts": "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n"
            "-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----",
            "futureField": {"kept": True},
        }
    )
    assert cert.tracking_id == 5559124
    assert cert.serial_number == "239010FB4"
    assert cert.dns_names == ["www.example.com"]
    assert cert.key_size == 2048 and cert.ou == ["Only one"]
    assert cert.tracking.deactivated is True and cert.tracking.deactivated_on.year == 2020
    assert cert.tracking.custom_fields == {"text1": "x"}
    assert cert.chain_certs == [
        "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n",
    ]
    assert cert.raw["futureField"] == {"kept": True}


def test_third_party_thumbprint():
    cert = types.Certificate.from_json(
        {
            "trackingId": 0,
            "isThirdParty": True,
            "uri": "/enterprise/v2/certificates/thumbprints/AB12",
        }
    )
    assert cert.thumbprint == "AB12"
    assert types.Certificate.from_json(cert_json(5)).thumbprint is None


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"status": "ACTIVE"},
        {"trackingId": "abc"},
        {"trackingId": 1, "subjectAltName": "not a list"},
        {"trackingId": 1, "chainCerts": [1, 2]},
        {"trackingId": True},
    ],
)
def test_wrong_shapes_raise(bad):
    with pytest.raises((TypeError, ValueError)):
        types.Certificate.from_json(bad)


def test_domain_accepts_spec_and_live_field_names():
    live = types.Domain.from_json(
        {"domainName": "a.com", "verificationStatus": "RE_VERIFICATION", "emailMethod": ["x@a.com"]}
    )
    spec = types.Domain.from_json({"domainName": "a.com", "status": "APPROVED"})
    assert live.verification_status is types.DomainStatus.RE_VERIFICATION and live.usable
    assert live.email_method == ["x@a.com"]
    assert spec.verification_status is types.DomainStatus.APPROVED


def test_order_result_outcomes():
    issued = types.OrderResult.from_response(
        201, {"trackingId": 1, "expiresAfter": "2027-01-01T00:00:00Z"}
    )
    assert issued.issued and issued.expires_after.year == 2027
    assert types.OrderResult.from_response(202, {"trackingId": 2}).pending
    assert types.OrderResult.from_response(200, None).validated_only
    with pytest.raises(ValueError):
        types.OrderResult.from_response(201, {})


def test_request_bodies():
    body = types.RenewRequest(
        csr="C", cert_expiry_date=datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC), ou=["IT"]
    ).to_json()
    assert body == {"csr": "C", "certExpiryDate": "2027-01-02T03:04:05Z", "ou": ["IT"]}
    assert types.NewCertificateRequest(
        cert_type="EV_SSL", cert_expiry_date="2027-01-01", ct_log=False, client_id=2
    ).to_json() == {
        "certType": "EV_SSL",
        "certExpiryDate": "2027-01-01",
        "ctLog": False,
        "clientId": 2,
    }
    assert types.ReissueRequest(tracking={"trackingInfo": "t"}).to_json() == {
        "tracking": {"trackingInfo": "t"}
    }
    assert "validateOnly" not in types.RenewRequest.__dataclass_fields__


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ACTIVE", "ACTIVE"),
        ("in:A,B", "in:A,B"),
        (["A", "B"], "in:A,B"),
        ((1, 2), "in:1,2"),
        ({"B", "A"}, "in:A,B"),
        (True, "true"),
        (2048, "2048"),
        (types.CertificateStatus.ACTIVE, "ACTIVE"),
        (datetime(2026, 1, 1, tzinfo=UTC), "2026-01-01T00:00:00Z"),
    ],
)
def test_filter_value(value, expected):
    assert types.filter_value(value) == expected


def test_client_and_products():
    client = types.Client.from_json(
        {"clientId": 2, "verificationStatus": "Pending", "ovExpiryDate": "2019-06-01T12:24:27.627Z"}
    )
    assert client.verification_status is types.VerificationStatus.PENDING
    assert client.ov_expiry_date == datetime(2019, 6, 1, 12, 24, 27, 627000, tzinfo=UTC)
    product = types.Product.from_json({"productType": "CMS_1_ADMIN", "usedCount": 0})
    assert product.product_type == "CMS_1_ADMIN" and product.remaining_count is None
    assert types.parse_datetime(date(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=UTC)
