"""Building the ECS client for a credential: the only place a credential's secrets are opened.

The transport tunables (request budget, timeouts, default proxy) are registered here, and read at
each client construction, so a change in Admin > Settings applies to the next call.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from flask import current_app

from webapp import turns, validation
from webapp.credentials.models import EcsCredential
from webapp.ecs import EcsClient, budget_for
from webapp.ecs.client import RATE_WAIT_MAX, in_clear_across_network
from webapp.ecs.transport import scrub
from webapp.security.secretbox import context_for, current_box
from webapp.settings import service as settings

API_KEY_CTX = context_for(EcsCredential, "api_key_sealed")
CLIENT_KEY_CTX = context_for(EcsCredential, "client_key_sealed")
TEST_TIMEOUT_CAP = 20.0  # Test Login answers within this, whatever the settings say
# A read a page waits for before it is shown (the custom fields on Order Certificate): each try
# bounded by this, and two tries at most, so a hanging Entrust holds the page for about 20 s,
# not four reads of the settings' read timeout (minutes).
INTERACTIVE_TIMEOUT_CAP = 10.0
INTERACTIVE_GET_ATTEMPTS = 2

# Extra keyword arguments for every EcsClient built here (tests pass a no-op ``sleep``).
CLIENT_OPTIONS: dict = {}


def rate_wait_max() -> float:
    """The longest a call waits in its credential's request budget before it is sent (one that
    would wait longer is refused unsent): ECS_RATE_WAIT_MAX_SECONDS, by default the client's."""
    return float(current_app.config.get("ECS_RATE_WAIT_MAX_SECONDS", RATE_WAIT_MAX))


def _proxy_url(raw: str) -> str:
    parts = validation.http_url(raw)
    if parts is None:
        raise ValueError(
            "A proxy URL starts with http:// or https://, then the host and, if any, a port "
            "from 1 to 65535."
        )
    if parts.password:
        raise ValueError("The proxy URL must not contain a password: settings are stored in clear.")
    return raw


REQUESTS_PER_MINUTE = settings.register(
    "ecs.requests_per_minute",
    120,
    "ECS request budget per credential (requests per minute)",
    "Shared by sync, import and status polling of one credential in this process.",
    minimum=1,
    maximum=6000,
)
CONNECT_TIMEOUT = settings.register(
    "ecs.connect_timeout_seconds",
    10,
    "Connect timeout (seconds)",
    "How long to wait for a connection to Entrust (or the proxy).",
    minimum=1,
    maximum=120,
)
READ_TIMEOUT = settings.register(
    "ecs.read_timeout_seconds",
    60,
    "Read timeout (seconds)",
    "How long to wait for each part of Entrust's answer.",
    minimum=1,
    maximum=600,
)
DEFAULT_PROXY = settings.register(
    "ecs.default_proxy",
    "",
    "Default HTTPS proxy",
    "Used by credentials without their own proxy, e.g. http://proxy.example.com:3128. Empty: none.",
    validate=_proxy_url,
    shown=lambda v: scrub(str(v)) if v else v,
)


class ClientUnavailable(Exception):
    """The credential cannot be used to build a client; the message says why, in words."""


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


def build(
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
    interactive: bool = False,
) -> EcsClient:
    """An EcsClient with the timeouts, default proxy and request budget from Settings.

    ``for_test``: one attempt with a short deadline (the user is waiting for the answer).
    ``interactive``: reads a page waits for, with shorter deadlines and fewer tries
    (INTERACTIVE_TIMEOUT_CAP, INTERACTIVE_GET_ATTEMPTS).
    Raises ValueError or ssl.SSLError for unusable TLS material."""
    connect = float(settings.get(CONNECT_TIMEOUT))
    read = float(settings.get(READ_TIMEOUT))
    options = {}
    if for_test:
        connect, read = min(connect, TEST_TIMEOUT_CAP), min(read, TEST_TIMEOUT_CAP)
        options["max_get_attempts"] = 1
    elif interactive:
        cap = INTERACTIVE_TIMEOUT_CAP
        connect, read = min(connect, cap), min(read, cap)
        options["max_get_attempts"] = INTERACTIVE_GET_ATTEMPTS
    if budget_key is not None:
        options["rate_budget"] = budget_for(budget_key, float(settings.get(REQUESTS_PER_MINUTE)))
        options["rate_wait_max"] = rate_wait_max()
    options["waiting"] = turns.outside  # a request waiting on Entrust lets the next one run
    options.update(CLIENT_OPTIONS)
    return EcsClient(
        base_url,
        api_user,
        api_key,
        client_cert_pem=cert_pem or None,
        client_key_pem=key_pem or None,
        proxy=proxy or settings.get(DEFAULT_PROXY) or None,
        verify=_ca_file(ca_bundle) if ca_bundle else True,
        connect_timeout=connect,
        read_timeout=read,
        **options,
    )


def open_secrets(cred: EcsCredential) -> tuple[str, str | None]:
    """(API key, client key PEM or None) of a stored credential. Raises ClientUnavailable."""
    box = current_box()
    try:
        api_key = box.open_text(cred.api_key_sealed, API_KEY_CTX)
        key_pem = None
        if cred.client_key_sealed:
            key_pem = box.open_text(cred.client_key_sealed, CLIENT_KEY_CTX)
    except Exception:
        raise ClientUnavailable(
            f"The stored secrets of {cred.name!r} cannot be opened; enter the API key again."
        ) from None
    return api_key, key_pem


def client_for(
    cred: EcsCredential, *, for_test: bool = False, interactive: bool = False
) -> EcsClient:
    """The ECS client for a stored credential: its secrets opened here and only here, the
    process-wide request budget of this credential, timeouts and default proxy from Settings.

    Raises ClientUnavailable when the credential is deleted or its secrets or TLS material
    cannot be used. Close the client when done (or use it as a context manager)."""
    if cred.deleted_at is not None:
        raise ClientUnavailable(f"The credential {cred.name!r} was deleted.")
    api_key, key_pem = open_secrets(cred)
    try:  # HTTP Basic sends both as Latin-1 (keys saved before that was checked may not be)
        f"{cred.api_user}:{api_key}".encode("latin-1")
    except UnicodeEncodeError:
        raise ClientUnavailable(
            f"The API user name or key stored for {cred.name!r} holds characters HTTP cannot "
            "send; enter the API key again (and check the user name) on the credential's form."
        ) from None
    if in_clear_across_network(cred.base_url):  # saved before the host was read as requests does
        raise ClientUnavailable(
            f"The base URL of {cred.name!r} would send the API key over plain http:// off this "
            "machine; enter an https:// base URL on the credential's form."
        )
    try:
        return build(
            base_url=cred.base_url,
            api_user=cred.api_user,
            api_key=api_key,
            cert_pem=cred.client_cert_pem,
            key_pem=key_pem,
            proxy=cred.proxy,
            ca_bundle=cred.ca_bundle_pem,
            budget_key=("ecs_credential", cred.id),
            for_test=for_test,
            interactive=interactive,
        )
    except Exception as exc:  # a bad client certificate or CA bundle in the SSL context
        raise ClientUnavailable(
            f"The TLS settings of {cred.name!r} cannot be used: {exc}"
        ) from None
