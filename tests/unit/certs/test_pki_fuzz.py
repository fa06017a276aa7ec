"""Random and corrupted PEM/DER fed to every parser: a PkiError with a message, nothing else."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.certs.factory import MiniPki, der, key_pem, p7b, p12, pem
from tests.unit.certs.hostile import LEGACY_P12, encrypted_pkcs8
from webapp import pki
from webapp.pki import PkiError

_T = MiniPki()
_KEY, _CERT = _T.leaf("fuzz.example.com")
_CSR = pki.build_csr(_KEY, {"CN": "fuzz.example.com"}, pki.SanSet(dns=["fuzz.example.com"]))
SAMPLES = [
    pem(_CERT),
    der(_CERT),
    p7b([_CERT, *_T.chain]),
    p12(_KEY, _CERT, _T.chain, "pw-123456"),
    _CSR.public_bytes(serialization.Encoding.PEM),
    _CSR.public_bytes(serialization.Encoding.DER),
    key_pem(_KEY),
    key_pem(_KEY, "pw-123456"),
    LEGACY_P12,
    encrypted_pkcs8(_KEY, "pw-123456", stated=2048),
]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _all_parsers(data: bytes, password):
    for call in (
        lambda: pki.read_certificates(data, password),
        lambda: pki.parse_csr(data),
        lambda: pki.load_private_key(data, password),
    ):
        try:
            call()
        except PkiError as exc:
            assert str(exc)


@st.composite
def corrupted(draw):
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            data = data[:i]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif data:
            del data[i]
    return bytes(data)


@FUZZ
@given(st.binary(max_size=4096), st.one_of(st.none(), st.text(max_size=12)))
def test_random_bytes(data, password):
    _all_parsers(data, password)


@FUZZ
@given(corrupted(), st.sampled_from([None, "pw-123456", "wrong"]))
def test_corrupted_files(data, password):
    _all_parsers(data, password)


@FUZZ
@given(
    st.binary(min_size=1, max_size=1500),
    st.sampled_from(
        [
            "CERTIFICATE",
            "CERTIFICATE REQUEST",
            "PKCS7",
            "PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
            "RSA PRIVATE KEY",
        ]
    ),
)
def test_random_pem_bodies(body, label):
    b64 = base64.encodebytes(body).decode()
    data = f"-----BEGIN {label}-----\n{b64}-----END {label}-----\n".encode()
    _all_parsers(data, "pw-123456")
    _all_parsers(data, None)


@FUZZ
@given(st.text(max_size=300))
def test_name_checks_never_crash(text):
    sans, problems = pki.parse_san_text(text)
    assert all(isinstance(p, str) for p in problems)
    pki.suggest_sans(text)


@FUZZ
@given(corrupted(), st.sampled_from([None, b"pw-123456", b"wrong"]))
def test_the_kdf_cost_reader_fails_only_in_its_own_words(data, password):
    from webapp import kdfcost

    for check in (lambda: kdfcost.open_pkcs12(data, password), lambda: kdfcost.check_pkcs8(data)):
        try:
            check()
        except (kdfcost.Unreadable, kdfcost.TooCostly) as exc:
            assert str(exc)
