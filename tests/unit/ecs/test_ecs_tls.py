"""Client certificates: private temp files that never outlive loading, and the SSL context."""

from __future__ import annotations

import datetime as dt
import os
import ssl
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from webapp.ecs import EcsClient, transport


def make_cert_pair() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api-user")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def test_private_files_are_0600_in_a_0700_dir_and_removed():
    cert, key = make_cert_pair()
    with transport.private_pem_files(cert, key) as (cert_path, key_path):
        folder = os.path.dirname(cert_path)
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
        for path in (cert_path, key_path):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with open(key_path, "rb") as fh:
            assert fh.read() == key
    assert not os.path.exists(folder)


def test_files_are_removed_even_when_loading_fails(monkeypatch):
    created = []
    real = transport.private_pem_files

    def spy(*args):
        cm = real(*args)

        class Wrapper:
            def __enter__(self):
                paths = cm.__enter__()
                created.append(os.path.dirname(paths[0]))
                return paths

            def __exit__(self, *exc):
                return cm.__exit__(*exc)

        return Wrapper()

    monkeypatch.setattr(transport, "private_pem_files", spy)
    with pytest.raises(ssl.SSLError):
        transport.build_ssl_context(True, b"not a cert", b"not a key")
    assert created and not os.path.exists(created[0])


def test_the_key_is_written_encrypted_under_a_password_of_its_own(monkeypatch):
    """A file left behind (the process killed while loading) or its blocks on the disk hold no
    readable key."""
    import contextlib

    cert, key = make_cert_pair()
    written = []
    real = transport.private_pem_files

    @contextlib.contextmanager
    def spy(cert_pem, key_pem):
        with real(cert_pem, key_pem) as (cert_path, key_path):
            with open(key_path, "rb") as fh:
                written.append(fh.read())
            yield cert_path, key_path

    monkeypatch.setattr(transport, "private_pem_files", spy)
    transport.build_ssl_context(True, cert, key)
    transport.build_ssl_context(True, cert, key)
    first, second = written
    assert b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in first
    assert key.split(b"-----")[2] not in first
    assert first != second  # a new password for every load
    with pytest.raises(TypeError):  # it opens with no password
        serialization.load_pem_private_key(first, None)


def test_ssl_context_loads_client_cert_and_verify_modes(tmp_path):
    cert, key = make_cert_pair()
    ctx = transport.build_ssl_context(True, cert, key)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    insecure = transport.build_ssl_context(False)
    assert insecure.verify_mode == ssl.CERT_NONE and not insecure.check_hostname
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(cert)
    custom = transport.build_ssl_context(str(ca_file))
    assert custom.cert_store_stats()["x509"] == 1  # only our CA, not the public bundle


def test_client_keeps_no_key_material_and_no_temp_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cert, key = make_cert_pair()
    client = EcsClient(
        "https://ecs.test/enterprise/v2/",
        "u",
        "k",
        client_cert_pem=cert.decode(),
        client_key_pem=key,
    )
    assert client.has_client_cert
    assert list(tmp_path.iterdir()) == []
    assert key.decode() not in repr(vars(client))
    client.close()


def test_key_without_cert_is_refused():
    with pytest.raises(ValueError):
        EcsClient("https://ecs.test/", "u", "k", client_key_pem=b"key")
    with pytest.raises(ValueError):
        EcsClient("ftp://ecs.test/", "u", "k")


@pytest.mark.parametrize(
    "base_url",
    [
        "http://ecs.example/enterprise/v2/",
        # urlsplit reads 127.0.0.1; the HTTP client connects to ecs.example (or 192.0.2.2).
        "http://ecs.example\\@127.0.0.1/enterprise/v2/",
        "http://192.0.2.2\\@127.0.0.1:8443/enterprise/v2/",
        # and the other way round
        "http://127.0.0.1\\@ecs.example/enterprise/v2/",
    ],
)
def test_plain_http_elsewhere_than_this_machine_is_refused(base_url):
    """An API key goes over plain http:// only to this machine, by the host the HTTP client
    itself connects to, whatever another parser reads."""
    with pytest.raises(ValueError, match="http:// only on this machine"):
        EcsClient(base_url, "u", "k")


def test_plain_http_to_this_machine_is_allowed():
    for base_url in ("http://127.0.0.1:8443/", "http://localhost/", "http://[::1]:8443/v2/"):
        EcsClient(base_url, "u", "k").close()
