"""HTTPS with the sandbox CA, Basic alone, and Basic plus a client certificate (mTLS)."""

from __future__ import annotations

import ssl

import pytest
import requests
from cryptography import x509

from entrust_sandbox.ca import make_csr
from entrust_sandbox.testing import SandboxServer

from .conftest import assert_error


@pytest.fixture(scope="module")
def tls():
    with SandboxServer(https=True) as sb:
        sb.seed(certificates=20, seed=1)
        yield sb


@pytest.fixture(scope="module")
def mtls():
    with SandboxServer(https=True, require_client_cert_user=True) as sb:
        yield sb


def test_https_basic_only(tls):
    assert tls.base_url.startswith("https://127.0.0.1:")
    response = requests.get(
        tls.base_url + "certificates", auth=(tls.api_user, tls.api_key), verify=tls.ca_cert_path
    )
    assert response.status_code == 200


def test_server_certificate_needs_the_sandbox_root(tls):
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(tls.base_url + "application/version", auth=(tls.api_user, tls.api_key))


def test_mtls_user_with_and_without_certificate(tls):
    user = tls.add_user("mtls-user", "mtls-key", require_client_cert=True)
    assert user["clientCert"].startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" in user["clientKey"]
    url = tls.base_url + "application/version"
    auth = ("mtls-user", "mtls-key")
    with_cert = requests.get(
        url, auth=auth, verify=tls.ca_cert_path, cert=user["client_cert_files"]
    )
    assert with_cert.status_code == 200
    assert_error(requests.get(url, auth=auth, verify=tls.ca_cert_path), 401)
    # Another user's (valid) certificate does not stand in for this user's.
    other = tls.add_user("mtls-other", "other-key", require_client_cert=True)
    wrong = requests.get(url, auth=auth, verify=tls.ca_cert_path, cert=other["client_cert_files"])
    assert_error(wrong, 401)
    # A client certificate alone is not enough: Basic is still checked.
    no_key = requests.get(
        url, auth=("mtls-user", "bad"), verify=tls.ca_cert_path, cert=user["client_cert_files"]
    )
    assert_error(no_key, 401)


def test_basic_user_may_send_a_certificate(tls):
    user = tls.add_user("mtls-x", "x-key", require_client_cert=True)
    response = requests.get(
        tls.base_url + "application/version",
        auth=(tls.api_user, tls.api_key),
        verify=tls.ca_cert_path,
        cert=user["client_cert_files"],
    )
    assert response.status_code == 200


def test_harness_mtls_admin(mtls):
    url = mtls.base_url + "application/version"
    auth = (mtls.api_user, mtls.api_key)
    ok = requests.get(url, auth=auth, verify=mtls.ca_cert_path, cert=mtls.client_cert)
    assert ok.status_code == 200
    assert_error(requests.get(url, auth=auth, verify=mtls.ca_cert_path), 401)


def test_foreign_client_certificate_fails_the_handshake(tls, tmp_path):
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intruder")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "c.pem", tmp_path / "k.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        requests.get(
            tls.base_url + "application/version",
            auth=(tls.api_user, tls.api_key),
            verify=tls.ca_cert_path,
            cert=(str(cert_file), str(key_file)),
        )


def test_server_chain_and_names(tls):
    context = ssl.create_default_context(cafile=tls.ca_cert_path)
    import socket

    port = int(tls.root_url.rsplit(":", 1)[1].strip("/"))
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as conn,
    ):
        assert conn.version() in ("TLSv1.2", "TLSv1.3")


def test_spec_switch_requires_certificates_for_everyone(tls):
    tls.update_settings(fidelity={"client_cert_required_for_all": True})
    try:
        url = tls.base_url + "application/version"
        response = requests.get(url, auth=(tls.api_user, tls.api_key), verify=tls.ca_cert_path)
        assert_error(response, 401)
    finally:
        tls.update_settings(fidelity={"client_cert_required_for_all": False})


def test_harness_reads_orders_with_its_client_certificate(mtls):
    mtls.seed(certificates=5, seed=1)
    listed = mtls.orders()
    assert len(listed) == sum(mtls.held().values()) > 0
    tracking_id = next(o["trackingId"] for o in listed if o["trackingId"])
    assert mtls.status(tracking_id) == mtls.order(tracking_id)["status"]


def test_an_order_names_its_creator_by_the_authenticated_dn(tls):
    """creatorName is "Creator name, or authenticated DN if created via API": the subject of
    the client certificate an mTLS user signs in with; the username of a Basic-only user."""
    user = tls.add_user("mtls-creator", "creator-key", require_client_cert=True)
    subject = x509.load_pem_x509_certificate(user["clientCert"].encode()).subject
    csr, _ = make_csr("www.example.com")
    body = {"certType": "UC_SSL", "csr": csr}
    signed_in = (
        {"auth": ("mtls-creator", "creator-key"), "cert": user["client_cert_files"]},
        {"auth": (tls.api_user, tls.api_key)},
    )
    creators = []
    for options in signed_in:
        options["verify"] = tls.ca_cert_path
        issued = requests.post(tls.base_url + "certificates", json=body, **options)
        assert issued.status_code == 201, issued.text
        tracking_id = issued.json()["trackingId"]
        detail = requests.get(tls.base_url + f"certificates/{tracking_id}", **options)
        creators.append(detail.json()["creatorName"])
    assert creators == [subject.rfc4514_string(), tls.api_user]
    assert "CN=mtls-creator" in creators[0]


def _machine_address() -> str | None:
    """This machine's IPv4 address on its default route (a datagram socket sends nothing)."""
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            address = probe.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def _serve(host: str, bind: str | None = None):
    """An HTTPS sandbox whose certificate is made for ``host``, listening on ``bind`` (``host``
    when not given); (server, root CA PEM, credentials), or a skip where it cannot bind."""
    import threading

    from entrust_sandbox.app import Sandbox, create_app
    from entrust_sandbox.auth import create_user
    from entrust_sandbox.server import SandboxServer as Server
    from entrust_sandbox.server import make_ssl_context

    box = Sandbox()
    create_user(box, "peer", "peer-key", "administrator", False)
    context = make_ssl_context(box.store, host)
    try:
        server = Server(bind or host, 0, create_app(box), ssl_context=context, quiet=True)
    except OSError as exc:
        box.store.close()
        pytest.skip(f"cannot listen on {bind or host}: {exc}")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, box, ("peer", "peer-key")


def _stop(server, box) -> None:
    server.shutdown()
    server.server_close()
    box.store.close()


@pytest.mark.parametrize("host", ["127.0.0.2", "machine"])
def test_a_sandbox_on_another_address_is_verified_at_that_address(host, tmp_path):
    """`--host 192.0.2.2`: a client on another machine connects to that address and verifies
    the server certificate with the sandbox root (the certificate named loopback only)."""
    if host == "machine":
        host = _machine_address() or pytest.skip("no address beyond loopback")
    server, box, auth = _serve(host)
    try:
        ca_file = tmp_path / "root.pem"
        ca_file.write_text(box.store.ca.root_pem)
        url = f"https://{host}:{server.server_port}/enterprise/v2/application/version"
        response = requests.get(url, auth=auth, verify=str(ca_file), timeout=10)
        assert response.status_code == 200
    finally:
        _stop(server, box)


def test_a_sandbox_on_every_address_is_verified_by_the_machine_name_and_address(tmp_path):
    """`--host 0.0.0.0` (or ::): the certificate names the machine's host name and its address
    besides loopback, so a peer verifies whichever it connects by. Served on loopback here, with
    the name to verify given to TLS, so the test does not listen on the network."""
    import socket

    server, box, _ = _serve("0.0.0.0", bind="127.0.0.1")  # noqa: S104 - only the certificate's
    try:
        context = ssl.create_default_context(cadata=box.store.ca.root_pem)
        names = [socket.gethostname(), "localhost", "127.0.0.1"]
        names += [_machine_address()] if _machine_address() else []
        for name in names:
            with (
                socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as raw,
                context.wrap_socket(raw, server_hostname=name) as conn,
            ):
                assert conn.version() in ("TLSv1.2", "TLSv1.3"), name
        with (
            pytest.raises(ssl.SSLCertVerificationError),
            socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as raw,
        ):
            context.wrap_socket(raw, server_hostname="elsewhere.example")
    finally:
        _stop(server, box)


def test_the_served_hosts_of_a_name_an_address_and_a_wildcard():
    import socket

    from entrust_sandbox.server import served_hosts

    loopback = ["127.0.0.1", "localhost", "::1"]
    assert served_hosts("127.0.0.1") == loopback
    assert served_hosts("192.0.2.2") == [*loopback, "192.0.2.2"]
    assert served_hosts("2001:DB8::0:2") == [*loopback, "2001:db8::2"]
    assert served_hosts("Sandbox.Example.") == [*loopback, "sandbox.example"]
    for wildcard in ("0.0.0.0", "::"):  # noqa: S104
        hosts = served_hosts(wildcard)
        assert hosts[:3] == loopback and socket.gethostname().lower() in hosts
        assert "0.0.0.0" not in hosts and "::" not in hosts  # noqa: S104
        assert not any(h.startswith("fe80:") for h in hosts)
