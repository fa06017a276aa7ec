"""Hostile files sent to a real `certdesk serve`: each gets a clear refusal, and the portal keeps
answering other requests meanwhile (parsing holds the interpreter lock, so one slow parse would
stall every thread of the process).

Timeouts here are generous limits on a request that must end, not measurements.
"""

from __future__ import annotations

import threading

import requests
from cryptography.hazmat.primitives import serialization

from tests.live import signed_in
from tests.unit.certs import hostile
from tests.unit.certs.factory import MiniPki, p12
from webapp import pki

ONE_MB_OF_BEGIN_LINES = b"-----BEGIN A-----\n" * (1_000_000 // 18)


def _while_posting(server, http, path, files, data=None):
    """POST in a thread; meanwhile /healthz must answer. Returns the POST's response."""
    answer: dict = {}

    def post():
        try:
            answer["resp"] = http.post(server.url + path, files=files, data=data, timeout=120)
        except requests.RequestException as exc:
            answer["error"] = exc

    worker = threading.Thread(target=post)
    worker.start()
    health = requests.get(server.url + "/healthz", timeout=30)
    worker.join(150)
    assert "resp" in answer, f"the upload got no answer: {answer.get('error')}"
    assert health.status_code == 200
    return answer["resp"]


def test_a_megabyte_of_begin_lines_is_refused_in_words(live_server):
    http = signed_in(live_server, "admin")
    cert = _while_posting(
        live_server,
        http,
        "/certificates/import",
        files={"files": ("begin.pem", ONE_MB_OF_BEGIN_LINES, "application/x-pem-file")},
    )
    assert cert.status_code == 422 and "No certificate found in this PEM file" in cert.text
    csr = _while_posting(
        live_server,
        http,
        "/csrs/import",
        files={"csr_file": ("begin.csr", ONE_MB_OF_BEGIN_LINES, "application/pkcs10")},
    )
    assert csr.status_code == 422 and "This is not a CSR" in csr.text


def test_key_files_asking_for_200_million_rounds_are_refused_in_words(live_server):
    http = signed_in(live_server, "admin")
    t = MiniPki()
    key, cert = t.leaf("kdf.example.com")
    csr = pki.build_csr(key, {"CN": "kdf.example.com"}, pki.SanSet(dns=["kdf.example.com"]))
    edited_key = hostile.encrypted_pkcs8(key, "pw-123456", stated=200_000_000, used=2048)
    resp = _while_posting(
        live_server,
        http,
        "/csrs/import",
        files={
            "csr_file": ("kdf.csr", csr.public_bytes(serialization.Encoding.PEM), "text/plain"),
            "key_file": ("kdf.key", hostile.pem(edited_key), "text/plain"),
        },
        data={"key_password": "any password"},
    )
    assert resp.status_code == 422 and "200,000,000 rounds of password hashing" in resp.text

    edited_p12 = hostile.with_mac_rounds(p12(key, cert, t.chain, "pw-123456"), 200_000_000)
    resp = _while_posting(
        live_server,
        http,
        "/certificates/import",
        files={"files": ("kdf.p12", edited_p12, "application/x-pkcs12")},
        data={"password": "pw-123456"},
    )
    assert resp.status_code == 422 and "200,000,000 rounds of password hashing" in resp.text


def _database_bytes(server) -> int:
    return sum(
        (server.instance / name).stat().st_size
        for name in ("certdesk.db", "certdesk.db-wal")
        if (server.instance / name).exists()
    )


def test_a_ladder_of_certificates_is_refused_before_anything_is_written(live_server):
    """700 certificates, each naming the one before as its issuer (300 KB): stored, each would
    carry all those below it as its chain, a quarter of a million copies."""
    operator = signed_in(live_server, "operator")
    before = _database_bytes(live_server)
    resp = _while_posting(
        live_server,
        operator,
        "/certificates/import",
        files={"files": ("ladder.pem", hostile.certificate_ladder(700), "application/x-pem-file")},
    )
    assert resp.status_code == 422, resp.status_code
    assert "ladder.pem: a certificate has more than 10 issuers above it" in resp.text
    assert _database_bytes(live_server) - before < 1_000_000
    listing = operator.get(live_server.url + "/certificates/", timeout=30).text
    assert "No certificates yet." in listing
