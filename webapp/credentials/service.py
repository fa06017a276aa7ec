"""Entrust credentials: create, edit, disable and delete them, test them, and build the ECS client
for one. :func:`client_for` is the only place that opens a credential's sealed secrets."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy import update as sql_update

from webapp.audit import service as audit
from webapp.credentials import tunables
from webapp.credentials.models import DEFAULT_BASE_URL, EcsCredential
from webapp.dbtypes import utcnow
from webapp.ecs import EcsClient, budget_for, errors
from webapp.ecs.errors import ConnectionProblem
from webapp.ecs.transport import scrub
from webapp.extensions import db
from webapp.security import rbac
from webapp.security.secretbox import context_for, current_box
from webapp.settings import service as settings

log = logging.getLogger(__name__)

API_KEY_CTX = context_for(EcsCredential, "api_key_sealed")
CLIENT_KEY_CTX = context_for(EcsCredential, "client_key_sealed")
TEST_TIMEOUT_CAP = 20.0  # Test Login answers within this, whatever the settings say

# Extra keyword arguments for every EcsClient built here (tests pass a no-op ``sleep``).
CLIENT_OPTIONS: dict = {}

# Features whose rows refer to a credential register a counter here; a delete then says what
# is kept read-only. Each returns (count, label), e.g. (12, "orders").
REFERENCE_COUNTERS: list[Callable[[EcsCredential], tuple[int, str]]] = []


class CredentialError(Exception):
    """Invalid input or a refused change; ``field`` names the form field to show it next to."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


@dataclass
class CredentialInput:
    """What the form sends. Empty secret fields mean "keep what is stored"."""

    name: str = ""
    api_user: str = ""
    api_key: str = ""
    base_url: str = DEFAULT_BASE_URL
    proxy: str = ""
    is_admin: bool = True
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    pkcs12: bytes | None = None
    pkcs12_password: str = ""
    ca_bundle_pem: bytes | None = None
    remove_client_cert: bool = False
    remove_ca_bundle: bool = False


@dataclass
class LoginResult:
    ok: bool
    message: str
    version: str = ""
    details: dict = field(default_factory=dict)


# --- queries ------------------------------------------------------------------------------------


def list_credentials(include_deleted: bool = False) -> list[EcsCredential]:
    stmt = select(EcsCredential).order_by(func.lower(EcsCredential.name))
    if not include_deleted:
        stmt = stmt.where(EcsCredential.deleted_at.is_(None))
    return list(db.session.execute(stmt).scalars())


def usable_credentials() -> list[EcsCredential]:
    return [c for c in list_credentials() if c.enabled]


def get(credential_id: int, include_deleted: bool = False) -> EcsCredential | None:
    cred = db.session.get(EcsCredential, credential_id)
    if cred is None or (cred.deleted_at is not None and not include_deleted):
        return None
    return cred


def references(cred: EcsCredential) -> list[tuple[int, str]]:
    return [r for r in (counter(cred) for counter in REFERENCE_COUNTERS) if r[0]]


# --- validation ---------------------------------------------------------------------------------


def _url(value: str, field_name: str, what: str) -> str:
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CredentialError(f"Enter the {what} as an http:// or https:// URL.", field_name)
    if parts.password:
        # This field is stored and shown in clear; a password in it would leak.
        raise CredentialError(
            f"The {what} must not contain a password: CertDesk stores it in clear. Use a proxy "
            "that admits this host without a password.",
            field_name,
        )
    return value


def _load_client_cert(data: CredentialInput) -> tuple[str, str] | None:
    """(certificate PEM, unencrypted PKCS#8 key PEM) from the uploads, or None if none given."""
    if data.pkcs12:
        password = data.pkcs12_password.encode() if data.pkcs12_password else None
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data.pkcs12, password)
        except ValueError:
            raise CredentialError(
                "The PKCS#12 file could not be opened: wrong password, or not a PKCS#12 file.",
                "pkcs12",
            ) from None
        if key is None or cert is None:
            raise CredentialError(
                "The PKCS#12 file must hold the client certificate and its private key.", "pkcs12"
            )
        chain = [cert, *(extra or [])]
    elif data.client_cert_pem or data.client_key_pem:
        if not (data.client_cert_pem and data.client_key_pem):
            which = "client_key" if data.client_cert_pem else "client_cert"
            raise CredentialError(
                "Upload the client certificate and its private key together.", which
            )
        try:
            chain = x509.load_pem_x509_certificates(data.client_cert_pem)
        except ValueError:
            raise CredentialError(
                "The client certificate is not a PEM certificate.", "client_cert"
            ) from None
        try:
            key = serialization.load_pem_private_key(data.client_key_pem, password=None)
        except TypeError:
            raise CredentialError(
                "The private key is encrypted: upload it unencrypted, or upload a PKCS#12 file "
                "with its password.",
                "client_key",
            ) from None
        except ValueError:
            raise CredentialError("The private key is not a PEM key.", "client_key") from None
        cert = chain[0]
    else:
        return None
    if cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise CredentialError(
            "The private key does not belong to the client certificate.",
            "pkcs12" if data.pkcs12 else "client_key",
        )
    cert_pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert_pem, key_pem


def _load_ca_bundle(raw: bytes) -> str:
    try:
        certs = x509.load_pem_x509_certificates(raw)
    except ValueError:
        raise CredentialError("The CA bundle must hold PEM certificates.", "ca_bundle") from None
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def _clean(data: CredentialInput, existing: EcsCredential | None) -> dict:
    name = data.name.strip()
    if not name:
        raise CredentialError("Enter a credential name.", "name")
    if len(name) > 100:
        raise CredentialError("At most 100 characters.", "name")
    clash = select(EcsCredential.id).where(
        func.lower(EcsCredential.name) == name.lower(), EcsCredential.deleted_at.is_(None)
    )
    if existing is not None:
        clash = clash.where(EcsCredential.id != existing.id)
    if db.session.execute(clash).first():
        raise CredentialError(f"A credential named {name!r} already exists.", "name")
    api_user = data.api_user.strip()
    if not api_user:
        raise CredentialError("Enter the API user name from Entrust.", "api_user")
    if existing is None and not data.api_key:
        raise CredentialError("Enter the API key.", "api_key")
    base_url = _url(data.base_url or DEFAULT_BASE_URL, "base_url", "base URL")
    if not base_url.endswith("/"):
        base_url += "/"
    proxy = _url(data.proxy, "proxy", "HTTPS proxy") if data.proxy.strip() else ""
    return {
        "name": name,
        "api_user": api_user,
        "base_url": base_url,
        "proxy": proxy,
        "is_admin": bool(data.is_admin),
        "cert": _load_client_cert(data),
        "ca_bundle": _load_ca_bundle(data.ca_bundle_pem) if data.ca_bundle_pem else None,
    }


def _apply(cred: EcsCredential, data: CredentialInput, clean: dict) -> list[str]:
    """Set the fields; return the names of what changed (for the audit event)."""
    box = current_box()
    changed = []
    for attr in ("name", "api_user", "base_url", "proxy", "is_admin"):
        if getattr(cred, attr) != clean[attr]:
            setattr(cred, attr, clean[attr])
            changed.append(attr)
    if clean["is_admin"] and "is_admin" in changed:
        cred.admin_note = ""
    if data.api_key:
        cred.api_key_sealed = box.seal(data.api_key, API_KEY_CTX)
        changed.append("api_key")
    if clean["cert"] is not None:
        cert_pem, key_pem = clean["cert"]
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        cred.client_cert_pem = cert_pem
        cred.client_key_sealed = box.seal(key_pem, CLIENT_KEY_CTX)
        cred.client_cert_subject = cert.subject.rfc4514_string()[:500]
        cred.client_cert_expires_at = cert.not_valid_after_utc
        changed.append("client_certificate")
    elif data.remove_client_cert and cred.client_cert_pem:
        cred.client_cert_pem = cred.client_key_sealed = cred.client_cert_subject = ""
        cred.client_cert_expires_at = None
        changed.append("client_certificate_removed")
    if clean["ca_bundle"] is not None:
        cred.ca_bundle_pem = clean["ca_bundle"]
        changed.append("ca_bundle")
    elif data.remove_ca_bundle and cred.ca_bundle_pem:
        cred.ca_bundle_pem = ""
        changed.append("ca_bundle_removed")
    return changed


def _summary(cred: EcsCredential) -> dict:
    return {
        "name": cred.name,
        "user": cred.api_user,
        "base_url": cred.base_url,
        "proxy": scrub(cred.proxy) if cred.proxy else "",
        "client_certificate": cred.client_cert_subject or "",
        "administrator_rights": cred.is_admin,
    }


# --- use cases ----------------------------------------------------------------------------------


def create(actor, data: CredentialInput, *, start_sync: bool = True):
    """Store a new credential (audited) and start its full sync; returns (credential, job).

    Raises CredentialError for invalid input; nothing is stored then."""
    rbac.check(actor, rbac.CREDENTIALS_MANAGE)
    clean = _clean(data, None)
    cred = EcsCredential(created_by_id=actor.id if actor else None)
    _apply(cred, data, clean)
    db.session.add(cred)
    db.session.flush()
    audit.record(
        "credential.create",
        object_type="credential",
        object_id=cred.id,
        detail=_summary(cred),
        actor=actor,
    )
    db.session.commit()
    log.info("credential %s (%s) created", cred.id, cred.name)
    job = None
    if start_sync:
        from webapp.catalog import service as catalog

        job = catalog.start_sync(actor, [cred.id], catalog.KINDS, reason="new credential")
    return cred, job


def update(actor, cred: EcsCredential, data: CredentialInput) -> list[str]:
    """Change a credential; empty secret fields keep the stored ones. Returns what changed."""
    rbac.check(actor, rbac.CREDENTIALS_MANAGE)
    clean = _clean(data, cred)
    changed = _apply(cred, data, clean)
    if changed:
        audit.record(
            "credential.update",
            object_type="credential",
            object_id=cred.id,
            detail={"changed": changed, **_summary(cred)},
            actor=actor,
        )
    db.session.commit()
    return changed


def set_enabled(actor, cred: EcsCredential, enabled: bool) -> None:
    """Disable (no sync, no new orders, kept for history) or enable again."""
    rbac.check(actor, rbac.CREDENTIALS_MANAGE)
    if cred.enabled != enabled:
        cred.enabled = enabled
        audit.record(
            "credential.enable" if enabled else "credential.disable",
            object_type="credential",
            object_id=cred.id,
            detail={"name": cred.name},
            actor=actor,
        )
    db.session.commit()


def delete(actor, cred: EcsCredential, *, confirmed: bool) -> dict:
    """Delete a credential after explicit confirmation.

    The row stays (marked deleted, secrets erased) so orders and other records that refer to it
    keep their history read-only; its organizations, domains and products are marked gone.
    Returns counts. Raises CredentialError when not confirmed."""
    rbac.check(actor, rbac.CREDENTIALS_MANAGE)
    refs = references(cred)
    if not confirmed:
        kept = ", ".join(f"{n} {label}" for n, label in refs)
        raise CredentialError(
            "Tick the box to confirm the deletion"
            + (f": {kept} refer to this credential and will be kept read-only." if kept else "."),
            "confirm",
        )
    from webapp.catalog.models import CatalogDomain, CatalogOrganization, CatalogProduct

    now = utcnow()
    marked = 0
    for model in (CatalogOrganization, CatalogDomain, CatalogProduct):
        res = db.session.execute(
            sql_update(model)
            .where(model.credential_id == cred.id, model.gone_at.is_(None))
            .values(gone_at=now)
        )
        marked += res.rowcount
    name = cred.name
    cred.deleted_at = now
    cred.enabled = False
    cred.api_key_sealed = ""
    cred.client_key_sealed = ""
    detail = {"name": name, "catalog_rows_marked_gone": marked}
    detail.update({label: n for n, label in refs})
    audit.record(
        "credential.delete", object_type="credential", object_id=cred.id, detail=detail, actor=actor
    )
    db.session.commit()
    return detail


def note_admin_refused(cred: EcsCredential, exc: errors.EcsError | None = None, actor=None) -> str:
    """Entrust answered 403 to an administrator operation: clear the credential's administrator
    flag, record why (audited, committed) and return the message to show."""
    when = utcnow().strftime("%Y-%m-%d %H:%M UTC")
    said = f" ({'; '.join(exc.messages)})" if exc is not None and exc.messages else ""
    message = (
        f"Entrust refused an administrator operation for credential {cred.name!r}{said}; its "
        f'"has Entrust administrator rights" setting was cleared on {when}. Ask your Entrust '
        "account administrator for the rights, then tick it again."
    )
    if cred.is_admin:
        cred.is_admin = False
        cred.admin_note = message
        audit.record(
            "credential.admin_rights_cleared",
            object_type="credential",
            object_id=cred.id,
            outcome="failure",
            detail={"name": cred.name, "status": getattr(exc, "status", None)},
            actor=actor,
        )
        db.session.commit()
    return message


# --- the ECS client -----------------------------------------------------------------------------


def _ca_file(pem: str) -> str:
    """A file holding the CA bundle (public data), in the instance folder, named by content."""
    digest = hashlib.sha256(pem.encode()).hexdigest()[:16]
    folder = Path(current_app.instance_path) / "ecs-ca"
    folder.mkdir(exist_ok=True)
    path = folder / f"{digest}.pem"
    if not path.exists():
        tmp = folder / f".{digest}.{os.getpid()}.tmp"
        tmp.write_text(pem)
        tmp.replace(path)
    return str(path)


def _build(
    *,
    base_url: str,
    api_user: str,
    api_key: str,
    cert_pem: str | None,
    key_pem: str | None,
    proxy: str,
    ca_bundle: str,
    budget_key,
    for_test: bool = False,
) -> EcsClient:
    connect = float(settings.get(tunables.CONNECT_TIMEOUT))
    read = float(settings.get(tunables.READ_TIMEOUT))
    options = {}
    if for_test:  # one attempt with a short deadline: the user is waiting for the answer
        connect, read = min(connect, TEST_TIMEOUT_CAP), min(read, TEST_TIMEOUT_CAP)
        options["max_get_attempts"] = 1
    if budget_key is not None:
        options["rate_budget"] = budget_for(
            budget_key, float(settings.get(tunables.REQUESTS_PER_MINUTE))
        )
    options.update(CLIENT_OPTIONS)
    return EcsClient(
        base_url,
        api_user,
        api_key,
        client_cert_pem=cert_pem or None,
        client_key_pem=key_pem or None,
        proxy=proxy or settings.get(tunables.DEFAULT_PROXY) or None,
        verify=_ca_file(ca_bundle) if ca_bundle else True,
        connect_timeout=connect,
        read_timeout=read,
        **options,
    )


def client_for(cred: EcsCredential, *, for_test: bool = False) -> EcsClient:
    """The ECS client for a stored credential: its secrets opened here and only here, the
    process-wide request budget of this credential, timeouts and default proxy from Settings.

    Raises CredentialError when the credential is deleted or its secrets cannot be opened.
    Close the client when done (or use it as a context manager)."""
    if cred.deleted_at is not None:
        raise CredentialError(f"The credential {cred.name!r} was deleted.")
    box = current_box()
    try:
        api_key = box.open_text(cred.api_key_sealed, API_KEY_CTX)
        key_pem = None
        if cred.client_key_sealed:
            key_pem = box.open_text(cred.client_key_sealed, CLIENT_KEY_CTX)
    except Exception:
        raise CredentialError(
            f"The stored secrets of {cred.name!r} cannot be opened; enter the API key again."
        ) from None
    try:
        return _build(
            base_url=cred.base_url,
            api_user=cred.api_user,
            api_key=api_key,
            cert_pem=cred.client_cert_pem,
            key_pem=key_pem,
            proxy=cred.proxy,
            ca_bundle=cred.ca_bundle_pem,
            budget_key=("ecs_credential", cred.id),
            for_test=for_test,
        )
    except Exception as exc:  # a bad client certificate or CA bundle in the SSL context
        raise CredentialError(f"The TLS settings of {cred.name!r} cannot be used: {exc}") from None


def describe(exc: errors.EcsError, base_url: str = "", has_cert: bool = False) -> str:
    """An ECS error in words a person can act on."""
    host = urlsplit(base_url).netloc or "the server"
    said = "; ".join(exc.messages)
    if isinstance(exc, errors.AuthenticationError):
        low = said.lower()
        if "client certificate" in low and "required" in low:
            return (
                "Client certificate required: Entrust requires a client certificate for this API "
                "user. Upload the certificate and key (PEM files or PKCS#12)."
            )
        if "client certificate" in low:
            return (
                "Client certificate rejected: Entrust says it does not belong to this API user "
                f"({said}). Upload the certificate issued for this API user."
            )
        if exc.status == 403:
            return (
                "Access refused (HTTP 403): Entrust accepted the login but this API user may not "
                f"do this{': ' + said if said else ''}."
            )
        return (
            "Wrong user name or API key: Entrust refused them (HTTP "
            f"{exc.status or 401}{': ' + said if said else ''}). Check the User Name and API Key."
        )
    if isinstance(exc, errors.EcsConnectionError):
        detail = scrub(exc.detail or "", 200)
        if exc.problem == ConnectionProblem.TLS:
            low = detail.lower()
            if has_cert and any(w in low for w in ("alert", "certificate required", "bad cert")):
                return (
                    f"TLS error: {host} rejected the client certificate during the handshake "
                    f"({detail})."
                )
            return (
                f"TLS error: the secure connection to {host} failed ({detail}). Check that the "
                "base URL is right; if Entrust is reached through a gateway with a private CA, "
                "add its CA bundle."
            )
        if exc.problem == ConnectionProblem.PROXY:
            return (
                f"Proxy refused: the HTTPS proxy refused the connection or could not be reached "
                f"({detail}). Check the proxy URL here or in Admin › Settings."
            )
        if exc.problem == ConnectionProblem.DNS:
            return f"Host unreachable: the host name in {host} was not found. Check the base URL."
        if exc.problem == ConnectionProblem.REFUSED:
            return (
                f"Host unreachable: {host} refused the connection. Check the base URL and that "
                "the service is running."
            )
        if exc.problem == ConnectionProblem.UNREACHABLE:
            return f"Host unreachable: there is no route to {host}. Check the network or proxy."
        if exc.problem == ConnectionProblem.RESET:
            return f"The connection to {host} was cut off ({detail}). Try again."
        return f"Could not connect to {host} ({detail})."
    if isinstance(exc, errors.EcsTimeout):
        if exc.phase == "connect":
            return (
                f"Timeout: no connection to {host} in time ({exc.detail}). A firewall may drop "
                "the traffic, or a proxy may be needed."
            )
        return (
            f"Timeout: {host} did not answer in time ({exc.detail}). Try again later, or raise "
            "the read timeout in Admin › Settings."
        )
    if isinstance(exc, errors.RateLimitedError):
        wait = f" Try again in {exc.retry_after:g} s." if exc.retry_after else " Try again later."
        return f"Rate limit: Entrust refused more requests for now (HTTP 429).{wait}"
    if isinstance(exc, errors.ServerError):
        return (
            f"Entrust server error (HTTP {exc.status}){': ' + said if said else ''}. "
            "Try again later."
        )
    if isinstance(exc, errors.NotFoundError):
        return (
            f"Not found (HTTP 404 for {exc.path}): check that the base URL ends in "
            f"/enterprise/v2/{': ' + said if said else ''}."
        )
    if isinstance(exc, errors.MalformedResponseError):
        return (
            f"{host} answered, but not as the ECS API does ({exc.detail}). Check the base URL "
            "and the proxy."
        )
    return str(exc)


def _login(client: EcsClient, base_url: str, has_cert: bool) -> LoginResult:
    try:
        with client:
            version = client.get_version()
    except errors.EcsError as exc:
        return LoginResult(False, describe(exc, base_url, has_cert), details={"error": repr(exc)})
    return LoginResult(True, f"Login succeeded: Entrust ECS API version {version}.", version)


def test_login(actor, cred: EcsCredential) -> LoginResult:
    """Call the version endpoint with a stored credential; record the outcome on the row and in
    the audit trail."""
    rbac.check(actor, rbac.CATALOG_SYNC)
    try:
        client = client_for(cred, for_test=True)
    except CredentialError as exc:
        result = LoginResult(False, str(exc))
    else:
        result = _login(client, cred.base_url, cred.has_client_cert)
    cred.last_test_at = utcnow()
    cred.last_test_ok = result.ok
    cred.last_test_message = result.message
    audit.record(
        "credential.test",
        object_type="credential",
        object_id=cred.id,
        outcome="success" if result.ok else "failure",
        detail={"name": cred.name, "result": result.message},
        actor=actor,
    )
    db.session.commit()
    return result


def test_login_input(actor, data: CredentialInput, existing: EcsCredential | None) -> LoginResult:
    """Test Login on the form: the values as entered, with the stored secrets where the secret
    fields were left empty. Nothing is stored but the audit event. Raises CredentialError."""
    rbac.check(actor, rbac.CREDENTIALS_MANAGE)
    if not data.api_user.strip():
        raise CredentialError("Enter the API user name from Entrust.", "api_user")
    base_url = _url(data.base_url or DEFAULT_BASE_URL, "base_url", "base URL")
    proxy = _url(data.proxy, "proxy", "HTTPS proxy") if data.proxy.strip() else ""
    box = current_box()
    api_key = data.api_key
    if not api_key and existing is not None and existing.api_key_sealed:
        api_key = box.open_text(existing.api_key_sealed, API_KEY_CTX)
    if not api_key:
        raise CredentialError("Enter the API key.", "api_key")
    cert = _load_client_cert(data)
    if (
        cert is None
        and existing is not None
        and existing.client_cert_pem
        and not (data.remove_client_cert)
    ):
        cert = (existing.client_cert_pem, box.open_text(existing.client_key_sealed, CLIENT_KEY_CTX))
    ca_bundle = _load_ca_bundle(data.ca_bundle_pem) if data.ca_bundle_pem else ""
    if not ca_bundle and existing is not None and not data.remove_ca_bundle:
        ca_bundle = existing.ca_bundle_pem
    try:
        client = _build(
            base_url=base_url,
            api_user=data.api_user.strip(),
            api_key=api_key,
            cert_pem=cert[0] if cert else None,
            key_pem=cert[1] if cert else None,
            proxy=proxy,
            ca_bundle=ca_bundle,
            budget_key=("ecs_credential", existing.id) if existing is not None else None,
            for_test=True,
        )
    except Exception as exc:
        raise CredentialError(f"The TLS settings cannot be used: {exc}", "ca_bundle") from None
    result = _login(client, base_url, bool(cert))
    audit.record(
        "credential.test",
        object_type="credential",
        object_id=existing.id if existing is not None else "",
        outcome="success" if result.ok else "failure",
        detail={"name": data.name.strip(), "user": data.api_user.strip(), "result": result.message},
        actor=actor,
    )
    db.session.commit()
    return result


# --- the demo -----------------------------------------------------------------------------------


def demo_sandbox() -> dict | None:
    """The sandbox that `make run` started beside the portal, if any: url, user, key."""
    cfg = current_app.config
    url, user, key = (cfg.get(f"DEMO_SANDBOX_{k}") for k in ("URL", "USER", "KEY"))
    if url and user and key:
        return {"url": str(url), "user": str(user), "key": str(key)}
    return None


def add_demo_credential(actor):
    """One click: add the demo sandbox as a credential and start its sync."""
    demo = demo_sandbox()
    if demo is None:
        raise CredentialError("No demo sandbox is configured.")
    name = "Entrust sandbox"
    existing = {c.name.lower() for c in list_credentials()}
    n = 2
    while name.lower() in existing:
        name = f"Entrust sandbox {n}"
        n += 1
    data = CredentialInput(
        name=name, api_user=demo["user"], api_key=demo["key"], base_url=demo["url"], is_admin=True
    )
    return create(actor, data)
