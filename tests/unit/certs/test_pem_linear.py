"""PEM parsing is linear in the input: an adversarial file four times as long is about four times
the work (a quadratic parser: sixteen).

Work is this thread's CPU time (other processes do not count), the least of several runs with the
garbage collector held off (a collection of the whole test session's heap landing in one parse is
not the parser's work), and only the ratio between an input and one four times its size is
compared, never seconds; the runs of the two sizes alternate. The limit, 8, is as far from linear
as from quadratic: a busy machine's caches make a larger input dearer per byte (a doubling measured
up to 3.3 on a linear parser), not four times dearer. The input starts small and doubles until one
parse is long enough to measure well, so a quadratic parser fails quickly rather than running for
minutes.
"""

from __future__ import annotations

import contextlib
import gc
import time

import pytest

from tests.unit.certs.factory import MiniPki, key_pem, pem
from webapp import pki
from webapp.pki import PkiError

MEASURABLE = 0.02  # seconds of CPU: long enough for a stable ratio
GROWTH = 4
LIMIT = pki.MAX_FILE_BYTES // GROWTH  # the larger input must stay under the upload limit


def _once(parse, data: bytes) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.thread_time()
        with contextlib.suppress(PkiError):
            parse(data)
        return time.thread_time() - start
    finally:
        gc.enable()


def _work(parse, data: bytes) -> float:
    return min(_once(parse, data) for _ in range(3))


def _growth_ratio(parse, make) -> float:
    size = 16 * 1024
    while size < LIMIT and _work(parse, make(size)) < MEASURABLE:
        size *= 2
    # The two sizes take turns, so a stretch where the machine runs slower (another process on
    # the same cores) slows both alike instead of one of them.
    small, large = make(size), make(GROWTH * size)
    best_small = best_large = float("inf")
    for _ in range(7):
        best_small = min(best_small, _once(parse, small))
        best_large = min(best_large, _once(parse, large))
    return best_large / best_small


def _repeat(unit: bytes):
    return lambda size: unit * (size // len(unit))


ADVERSARIAL = {
    "begin lines": _repeat(b"-----BEGIN A-----\n"),
    "begin lines, CRLF": _repeat(b"-----BEGIN CERTIFICATE-----\r\n"),
    "mismatched ends": _repeat(b"-----BEGIN A-----\nAAAA\n-----END B-----\n"),
    "one begin, long body": lambda size: b"-----BEGIN CERTIFICATE-----\n" + b"A\n" * (size // 2),
    "long label": lambda size: b"-----BEGIN " + b"A" * size + b"\n",
}
PARSERS = {
    "certificates": lambda data: pki.read_certificates(data),
    "csr": lambda data: pki.parse_csr(data),
    "private key": lambda data: pki.load_private_key(data, "password"),
}


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("shape", ADVERSARIAL)
def test_an_adversarial_file_costs_in_proportion_to_its_length(parser, shape):
    ratio = _growth_ratio(PARSERS[parser], ADVERSARIAL[shape])
    assert ratio < 8, f"{parser}, {shape}: four times the input took {ratio:.1f} times the work"


def test_blocks_are_found_as_before():
    t = MiniPki()
    key, cert = t.leaf("pem.example.com")
    locked = key_pem(key, "pw-123456")  # a fresh salt at each call: made once
    text = (
        b"preamble\r\n"
        + pem(cert).replace(b"\n", b"\r\n")
        + b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"  # no body: not a block
        + b"-----BEGIN X509 CRL-----\nAAAA\n-----END CERTIFICATE-----\n"  # mismatched END
        + b"-----BEGIN CERTIFICATE-----\nAAAA\n"  # a BEGIN inside an open block restarts it
        + pem(t.intermediate)
        + b"trailing "
        + locked
    )
    blocks = pki.pem_blocks(text)
    assert [b.label for b in blocks] == [b"CERTIFICATE", b"CERTIFICATE", b"ENCRYPTED PRIVATE KEY"]
    assert blocks[0].text == pem(cert).replace(b"\n", b"\r\n").strip()
    assert blocks[1].text == pem(t.intermediate).strip()
    assert blocks[2].text == locked.strip()
    bundle = pki.read_certificates(text, "pw-123456")
    assert bundle.certificates == [cert, t.intermediate] and bundle.key is not None


def test_a_csr_with_many_names_costs_in_proportion_to_its_length():
    # A CSR may name tens of thousands of hosts within the upload limit; storing it lists each
    # name once.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    from tests.unit.certs.factory import ec_key
    from webapp.csrs import service as csrs

    key = ec_key()
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "many.example.com")])

    def make(size: int) -> bytes:
        names = [x509.DNSName(f"h{i}.example.com") for i in range(size // 20)]
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(subject)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(key, hashes.SHA256())
        )
        return csr.public_bytes(serialization.Encoding.DER)

    ratio = _growth_ratio(lambda der: csrs._names(pki.parse_csr(der)), make)
    assert ratio < 8, f"four times the names cost {ratio:.1f} times the work"
