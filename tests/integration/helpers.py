"""CSRs, a second credential and small helpers for the integration tests."""

from __future__ import annotations

import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from webapp.ecs import types


def make_csr(common_name: str, sans: list[str] | None = None) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    )
    names = sans or [common_name]
    builder = builder.add_extension(
        x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
    )
    csr = builder.sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def new_request(host: str = "www.example.com", **kwargs) -> types.NewCertificateRequest:
    """An order that the seeded account accepts, tagged with a fresh CertDesk request id."""
    kwargs.setdefault("cert_type", types.CertType.STANDARD_SSL)
    kwargs.setdefault("cert_lifetime", "P1Y")
    kwargs.setdefault(
        "tracking",
        types.Tracking(
            tracking_info=f"certdesk:{uuid.uuid4()}",
            requester_name="Ann Admin",
            requester_email="ann@example.com",
            requester_phone="555-0100",
        ),
    )
    return types.NewCertificateRequest(csr=make_csr(host), subject_alt_names=[host], **kwargs)


def pem_certificate(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


SECOND_KEY = "second-user-key-0123456789"


def second_credential(user, sandbox, start_sync: bool = True):
    """A second credential, of another API user of the sandbox's account ("Second user"), linked
    by the admin; its sync is started unless ``start_sync`` is False."""
    from webapp.credentials import service as credentials

    sandbox.add_user("second-user", api_key=SECOND_KEY)
    second, _job = credentials.create(
        user["admin"],
        credentials.CredentialInput(
            name="Second user",
            api_user="second-user",
            api_key=SECOND_KEY,
            base_url=sandbox.base_url,
        ),
        start_sync=start_sync,
    )
    return second
