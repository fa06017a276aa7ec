"""Password-protected key files are opened by CertDesk's own reader (``kdfcost.open_pkcs12``,
``open_pkcs8``), whose key derivations run without the interpreter lock: it must read every file
as the library's loader does, and let other threads run while it derives."""

from __future__ import annotations

import threading
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.unit.certs import hostile
from tests.unit.certs.factory import MiniPki, ec_key, key_pem, p12
from webapp import kdfcost, pki
from webapp.pki import PkiError

T = MiniPki()
KEY, CERT = T.leaf("open.example.com")
OTHER_KEY, OTHER_CERT = T.leaf("other.example.com")


def _der(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _p12(password: str, *, cert_alg=None, mac=None, rounds=2048, key=KEY, cert=CERT, chain=None):
    builder = serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(rounds)
    if cert_alg is not None:
        builder = builder.key_cert_algorithm(cert_alg)
    if mac is not None:
        builder = builder.hmac_hash(mac)
    chain = T.chain if chain is None else chain
    return pkcs12.serialize_key_and_certificates(
        b"test", key, cert, chain, builder.build(password.encode())
    )


PBES = pkcs12.PBES
FILES = {
    "AES and PBKDF2, SHA-256 MAC": lambda: _p12("pw-1", cert_alg=PBES.PBESv2SHA256AndAES256CBC),
    "3DES (PKCS#12 PBE), SHA-1 MAC": lambda: _p12(
        "pw-1",
        cert_alg=PBES.PBESv1SHA1And3KeyTripleDESCBC,
        mac=hashes.SHA1(),  # noqa: S303 (old files)
    ),
    "SHA-512 MAC": lambda: _p12("pw-1", mac=hashes.SHA512()),
    "a password beyond ASCII": lambda: _p12("pässwörd-€", cert_alg=PBES.PBESv2SHA256AndAES256CBC),
    "the library's best": lambda: p12(KEY, CERT, T.chain, "pw-1"),
    "no password": lambda: p12(KEY, CERT, T.chain, None),
    "no key": lambda: p12(None, CERT, T.chain, "pw-1"),
    "a key alone": lambda: p12(KEY, None, [], "pw-1"),
    "an EC key, its certificate last": lambda: _p12(
        "pw-1", key=(ec := ec_key()), cert=None, chain=[OTHER_CERT, T.leaf("ec", key=ec)[1]]
    ),
    "certificates of other keys": lambda: _p12("pw-1", cert=None, chain=[OTHER_CERT, *T.chain]),
    "legacy (RC2-40, 3DES, SHA-1)": lambda: hostile.LEGACY_P12,
}
PASSWORDS = {"a password beyond ASCII": "pässwörd-€", "no password": None}


@pytest.mark.parametrize("name", FILES)
def test_every_file_opens_as_the_librarys_loader_opens_it(name):
    data = FILES[name]()
    password = PASSWORDS.get(name, hostile.LEGACY_P12_PASSWORD if "legacy" in name else "pw-1")
    key, cert, others = pkcs12.load_key_and_certificates(
        data, password.encode() if password else None
    )
    opened = pki.open_pkcs12(data, password, "files", "password")
    if key is None:
        assert opened.key is None
    else:
        assert pki.key_matches(opened.key, key.public_key())
    assert (opened.cert and _der(opened.cert)) == (cert and _der(cert))
    assert [_der(c) for c in opened.others] == [_der(c) for c in others]
    if password:
        with pytest.raises(PkiError, match="Wrong password") as exc:
            pki.open_pkcs12(data, password + "x", "files", "password")
        assert exc.value.field == "password"


def test_an_empty_password_is_tried_as_no_bytes_and_as_an_empty_string():
    data = p12(KEY, CERT, [], None)
    for given in (None, ""):
        opened = pki.open_pkcs12(data, given, "files", "password")
        assert opened.cert == CERT and pki.key_matches(opened.key, KEY.public_key())
    with pytest.raises(PkiError, match="enter its password"):
        pki.open_pkcs12(p12(KEY, CERT, [], "pw-1"), None, "files", "password")


def test_a_file_changed_after_its_mac_was_made_is_refused():
    data = bytearray(p12(None, CERT, [], None))
    spot = bytes(data).index(b"open.example.com")
    data[spot] ^= 0x01  # one letter of the certificate's name, inside the MAC's content
    with pytest.raises(PkiError, match="damaged"):
        pki.read_certificates(bytes(data), "")
    with pytest.raises(PkiError, match="damaged"):
        pki.read_certificates(bytes(data), "a password")
    with pytest.raises(kdfcost.Unreadable, match="MAC does not match"):
        kdfcost.open_pkcs12(bytes(data), None)


def test_an_encrypted_pkcs8_key_opens_here_pem_and_der():
    for fmt_password in ("pw-1", "pässwörd"):
        pem = key_pem(KEY, fmt_password)
        der = KEY.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(fmt_password.encode()),
        )
        assert kdfcost.open_pkcs8(der, fmt_password.encode()) is not None
        for data in (pem, der):
            assert pki.key_matches(pki.load_private_key(data, fmt_password), KEY.public_key())
            with pytest.raises(PkiError, match="Wrong password") as exc:
                pki.load_private_key(data, "not it")
            assert exc.value.field == "key_password"
            with pytest.raises(PkiError, match="enter its password"):
                pki.load_private_key(data, None)
    unencrypted = KEY.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert kdfcost.open_pkcs8(unencrypted, b"pw") is None  # not encrypted: the loader's to read


def _longest_pause(work) -> tuple[float, float]:
    """(the longest another thread waited for its turn while ``work`` ran, how long it ran)."""
    stop, pauses = threading.Event(), []

    def ticker():
        last = time.perf_counter()
        while not stop.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            pauses.append(now - last)
            last = now

    thread = threading.Thread(target=ticker)
    thread.start()
    time.sleep(0.01)
    started = time.perf_counter()
    try:
        work()
    finally:
        took = time.perf_counter() - started
        stop.set()
        thread.join()
    return max(pauses), took


def test_a_costly_file_lets_other_threads_run_while_it_opens():
    # Within the bounds, about half a second of key derivation each. The library's loaders hold
    # the interpreter lock for all of it; here another thread is never held up for long.
    costly_p12 = _p12("pw-1", cert_alg=PBES.PBESv2SHA256AndAES256CBC, rounds=1_500_000)
    costly_key = hostile.pem(hostile.encrypted_pkcs8(KEY, "pw-1", stated=2_500_000))
    for work in (
        lambda: pki.read_certificates(costly_p12, "pw-1"),
        lambda: pki.load_private_key(costly_key, "pw-1"),
    ):
        pause, took = _longest_pause(work)
        assert took > 0.1  # the work was done, not skipped
        assert pause < took / 4, (pause, took)


def test_the_work_of_every_part_is_counted_once_and_summed(monkeypatch):
    # Its certificates and its key each within the bound, together beyond it (the MAC: 2,048).
    monkeypatch.setattr(kdfcost, "MAX_ROUNDS", 100_000)
    within = _p12("pw-1", cert_alg=PBES.PBESv2SHA256AndAES256CBC, rounds=48_000)
    beyond = _p12("pw-1", cert_alg=PBES.PBESv2SHA256AndAES256CBC, rounds=50_000)
    assert pki.read_certificates(within, "pw-1").key is not None
    with pytest.raises(PkiError, match="102,048 rounds of password hashing"):
        pki.read_certificates(beyond, "pw-1")
