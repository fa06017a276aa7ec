"""TLS plumbing: an SSL context built from in-memory PEM, and a requests adapter that uses it.

``ssl.SSLContext.load_cert_chain`` only reads files, so the client certificate and key are written
to a private temporary directory (mode 0700, files 0600), loaded, and deleted straight away: the
files exist only for the few milliseconds it takes to load them, and never outlive this call. The
key is written encrypted, under a random password made for that one load: a file left behind by
a process killed at that moment, or its blocks on the disk, give nothing away.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import ssl
import tempfile

import requests.certs
from cryptography.hazmat.primitives import serialization
from requests.adapters import HTTPAdapter

__all__ = ["EcsAdapter", "build_ssl_context", "private_pem_files", "scrub"]


@contextlib.contextmanager
def private_pem_files(cert_pem: bytes | str, key_pem: bytes | str | None):
    """Yield ``(cert_path, key_path)`` in a 0700 temp dir; the directory is removed on exit."""
    tmpdir = tempfile.mkdtemp(prefix="certdesk-ecs-")  # mkdtemp creates it with mode 0700
    try:
        os.chmod(tmpdir, 0o700)
        paths = []
        for name, data in (("client.crt", cert_pem), ("client.key", key_pem)):
            if data is None:
                paths.append(None)
                continue
            path = os.path.join(tmpdir, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(_bytes(data))
            paths.append(path)
        yield paths[0], paths[1]
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _sealed_for_loading(
    key_pem: bytes | str | None, password: bytes | str | None
) -> tuple[bytes | str | None, bytes | str | None]:
    """(key PEM, password) to write and load: the key encrypted under a fresh random password.
    A key that cannot be read is passed on as it is, for the loading to refuse."""
    if not key_pem:
        return key_pem, password
    try:
        key = serialization.load_pem_private_key(
            _bytes(key_pem), _bytes(password) if password else None
        )
        once = secrets.token_urlsafe(32).encode()
        sealed = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(once),
        )
    except (TypeError, ValueError):
        return key_pem, password
    return sealed, once


def build_ssl_context(
    verify: bool | str = True,
    client_cert_pem: bytes | str | None = None,
    client_key_pem: bytes | str | None = None,
    client_key_password: bytes | str | None = None,
) -> ssl.SSLContext:
    """An SSL context that verifies as ``verify`` says and presents the client certificate."""
    if verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif isinstance(verify, str) and verify:
        if os.path.isdir(verify):
            ctx = ssl.create_default_context(capath=verify)
        else:
            ctx = ssl.create_default_context(cafile=verify)
    else:
        # the same trust store requests uses by default
        ctx = ssl.create_default_context(cafile=requests.certs.where())
    if client_cert_pem:
        key_pem, password = _sealed_for_loading(client_key_pem, client_key_password)
        with private_pem_files(client_cert_pem, key_pem) as (cert_path, key_path):
            ctx.load_cert_chain(cert_path, key_path, password=password)
    return ctx


class EcsAdapter(HTTPAdapter):
    """An HTTPAdapter whose HTTPS connections all use one prepared SSL context."""

    def __init__(self, ssl_context: ssl.SSLContext, **kwargs) -> None:
        self._ssl_context = ssl_context
        super().__init__(**kwargs)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, _ = super().build_connection_pool_key_attributes(request, verify, None)
        return host_params, {"ssl_context": self._ssl_context}

    def cert_verify(self, conn, url, verify, cert):
        # Everything is in our SSL context; letting requests add its CA bundle here would
        # widen the trust of a client configured with a private CA.
        return


_USERINFO = re.compile(r"(?i)([a-z][a-z0-9+.-]*://)[^/@\s]+@")


def scrub(text: str, limit: int = 300) -> str:
    """Remove ``user:password@`` from URLs (proxy URLs may carry them) and bound the length."""
    text = _USERINFO.sub(r"\1***@", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
