"""Key files that ask for too much key-derivation work are refused before they are opened.

Each hostile file here would keep a parser busy for half a minute or more; the reader counts the
stated work first and refuses in words.
"""

from __future__ import annotations

import pytest

from tests.unit.certs import hostile
from tests.unit.certs.factory import MiniPki, key_pem, p12
from webapp import kdfcost, pki
from webapp.pki import PkiError

HUGE = 200_000_000
T = MiniPki()
KEY, CERT = T.leaf("kdf.example.com")
ROUNDS_MESSAGE = "200,000,000 rounds of password hashing"


def test_an_edited_pkcs8_key_is_refused_before_decryption_pem_and_der():
    edited = hostile.encrypted_pkcs8(KEY, "pw-123456", stated=HUGE, used=2048)
    for data in (hostile.pem(edited), edited):
        with pytest.raises(PkiError) as exc:
            pki.load_private_key(data, "any password")
        assert exc.value.field == "key" and ROUNDS_MESSAGE in str(exc.value)
        assert "at most 10,000,000" in str(exc.value)


def test_keys_within_the_bound_open():
    fine = hostile.encrypted_pkcs8(KEY, "pw-123456", stated=600_000)
    assert pki.load_private_key(hostile.pem(fine), "pw-123456").public_key() == KEY.public_key()
    assert pki.load_private_key(key_pem(KEY, "pw-123456"), "pw-123456") is not None
    assert pki.load_private_key(key_pem(KEY)) is not None


def test_scrypt_beyond_openssls_memory_ceiling_is_refused():
    with pytest.raises(PkiError, match="scrypt settings"):
        pki.load_private_key(hostile.pem(hostile.scrypt_pkcs8(2**20)), "pw")
    with pytest.raises(PkiError, match="scrypt settings"):
        pki.load_private_key(hostile.pem(hostile.scrypt_pkcs8(2**14, p=64)), "pw")


def test_a_pkcs12_with_an_edited_mac_count_is_refused_with_the_right_password():
    edited = hostile.with_mac_rounds(p12(KEY, CERT, T.chain, "pw-123456"), HUGE)
    with pytest.raises(PkiError) as exc:
        pki.read_certificates(edited, "pw-123456")
    assert exc.value.field == "files" and ROUNDS_MESSAGE in str(exc.value)


def _long_form_outer_length(der: bytes) -> bytes:
    """The same file with its outer length written in 8 bytes (BER; OpenSSL reads it)."""
    content = b"".join(hostile.children(der))
    return b"\x30\x88" + len(content).to_bytes(8, "big") + content


def _long_form_version(der: bytes) -> bytes:
    """The same file with its version's length in long form (BER; OpenSSL reads it)."""
    _version, *rest = hostile.children(der)
    return hostile.seq(b"\x02\x81\x01\x03", *rest)


@pytest.mark.parametrize("reencode", [_long_form_outer_length, _long_form_version])
def test_a_costly_pkcs12_in_another_encoding_is_refused_too(reencode):
    usual = p12(KEY, CERT, T.chain, "pw-123456")
    bundle = pki.read_certificates(reencode(usual), "pw-123456")
    assert bundle.certificates[0] == CERT and bundle.key is not None
    edited = reencode(hostile.with_mac_rounds(usual, 30_000_000))
    with pytest.raises(PkiError, match="30,000,000 rounds of password hashing"):
        pki.read_certificates(edited, "pw-123456")


def test_an_rsa_key_beyond_8192_bits_is_refused_before_its_primes_are_tested():
    # Opening a real 16,384-bit key takes 25 s (its primes are tested); this one's numbers are
    # not prime, so only the size check stands between it and those tests.
    big = hostile.rsa_key_of(16384)
    for data, password in ((key_pem(big), None), (key_pem(big, "pw-123456"), "pw-123456")):
        with pytest.raises(PkiError, match="RSA 16384 is larger than CertDesk takes"):
            pki.load_private_key(data, password)
    for password in ("pw-123456", None):  # its key shrouded, or in a plain key bag
        with pytest.raises(PkiError, match="RSA key of 16,384 bits"):
            pki.read_certificates(p12(big, None, [], password), password)
    with pytest.raises(PkiError, match="Wrong password"):
        pki.read_certificates(p12(big, None, [], "pw-123456"), "not the password")
    with pytest.raises(PkiError, match="damaged"):
        pki.load_private_key(key_pem(hostile.rsa_key_of(4096)))


def test_a_costly_key_hidden_in_an_encrypted_safe_is_found():
    hidden = hostile.p12_hiding_a_costly_key(KEY, CERT, "pw-123456", HUGE)
    with pytest.raises(PkiError, match="rounds of password hashing"):
        pki.read_certificates(hidden, "pw-123456")
    # the same shape with a usual count opens, certificate and key
    usual = hostile.p12_hiding_a_costly_key(KEY, CERT, "pw-123456", 2048)
    bundle = pki.read_certificates(usual, "pw-123456")
    assert bundle.certificates == [CERT] and bundle.key.public_key() == KEY.public_key()
    with pytest.raises(PkiError, match="Wrong password"):
        pki.read_certificates(usual, "not the password")


def test_a_mac_of_more_rounds_than_are_checked_here_is_refused():
    # The MAC's derivation runs in Python here (it yields the interpreter lock): at most
    # MAX_LEGACY_ROUNDS, though the file's whole work is within MAX_ROUNDS.
    many = hostile.with_mac_rounds(p12(KEY, CERT, T.chain, "pw-123456"), 1_000_001)
    with pytest.raises(PkiError, match="MAC asks for 1,000,001 rounds of password hashing"):
        pki.read_certificates(many, "pw-123456")


def test_legacy_and_modern_pkcs12_files_still_open():
    legacy = pki.read_certificates(hostile.LEGACY_P12, hostile.LEGACY_P12_PASSWORD)
    assert legacy.certificates[0].subject.rfc4514_string() == "CN=legacy.example.com"
    assert legacy.key is not None
    with pytest.raises(PkiError, match="Wrong password"):
        pki.read_certificates(hostile.LEGACY_P12, "wrong")
    modern = pki.read_certificates(p12(KEY, CERT, T.chain, "pw-123456"), "pw-123456")
    assert modern.certificates[0] == CERT and modern.key is not None


def test_rc2_40_of_old_files_is_read_here():
    # The legacy file's certificates are under 40-bit RC2, which cryptography does not offer:
    # reading them to look for keys is this module's own RC2.
    kdfcost.open_pkcs12(hostile.LEGACY_P12, hostile.LEGACY_P12_PASSWORD.encode())
    with pytest.raises(kdfcost.Unreadable, match="password"):
        kdfcost.open_pkcs12(hostile.LEGACY_P12, b"wrong")


def test_a_costly_client_pkcs12_is_refused_for_a_credential(app, user):
    from webapp.credentials import service

    edited = hostile.with_mac_rounds(p12(KEY, CERT, [], "pw-123456"), HUGE)
    data = service.CredentialInput(
        name="c", api_user="u", api_key="k", pkcs12=edited, pkcs12_password="pw-123456"
    )
    with pytest.raises(service.CredentialError) as exc:
        service.create(user["admin"], data, start_sync=False)
    assert exc.value.field == "pkcs12" and ROUNDS_MESSAGE in str(exc.value)


def test_garbage_from_a_wrong_password_is_a_wrong_password(monkeypatch):
    # A wrong key gives random plaintext; about one time in 256 its padding looks valid.
    monkeypatch.setattr(kdfcost, "_decrypt", lambda *args: b"\x30\x03\x02\x01\xff")
    with pytest.raises(PkiError, match="Wrong password"):
        pki.read_certificates(p12(KEY, CERT, T.chain, "pw-123456"), "wrong password")
