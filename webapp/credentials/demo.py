"""The demo sandbox that `make run` starts beside the portal: shown on the empty Manage page and
added as a credential with one click."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app

from webapp.credentials import service


def demo_sandbox() -> dict | None:
    """The sandbox that `make run` started beside the portal, if any: url, user, key, and the
    file that holds the key (shown on the empty Manage page; the key itself never is)."""
    cfg = current_app.config
    url, user, key = (cfg.get(f"DEMO_SANDBOX_{k}") for k in ("URL", "USER", "KEY"))
    if url and user and key:
        key_file = str(cfg.get("DEMO_SANDBOX_KEY_FILE") or "instance/sandbox/api-key")
        return {"url": str(url), "user": str(user), "key": str(key), "key_file": key_file}
    return None


def startup_line() -> str | None:
    """What `certdesk serve` says about the demo sandbox at start (`make run` reads it to say
    what to do next): the credential (not deleted) that already reaches it, and otherwise whether
    the Credentials tab is empty (where "Add the sandbox credential" is offered). None without a
    demo sandbox."""
    demo = demo_sandbox()
    if demo is None:
        return None
    creds = service.list_credentials()
    url = demo["url"].rstrip("/")
    for cred in creds:
        if cred.base_url.rstrip("/") == url and cred.api_user == demo["user"]:
            return f"Demo sandbox: linked as the credential {cred.name}"
    for cred in creds:
        if cred.api_user == demo["user"] and _moved_sandbox(cred.base_url, url):
            return f"Demo sandbox: moved from {cred.base_url} in the credential {cred.name}"
    if creds:
        return "Demo sandbox: not linked; other credentials exist"
    return "Demo sandbox: no credentials yet"


def _moved_sandbox(base_url: str, demo_url: str) -> bool:
    """Whether ``base_url`` is the demo sandbox's address on this machine with another port (a
    `make run` with another SANDBOX_PORT): the credential added before needs its Base URL
    changed, not a second credential for the same sandbox user."""
    before, now = urlsplit(base_url.rstrip("/")), urlsplit(demo_url)
    return (
        before.scheme == now.scheme == "http"
        and before.hostname in ("127.0.0.1", "localhost")
        and before.path == now.path
        and before.port != now.port
    )


class LinkedAlready(service.CredentialError):
    """A credential for the demo sandbox's user exists already: none is added."""


def add_demo_credential(actor):
    """One click: add the demo sandbox as a credential (its first sync starts); returns
    (credential, job). Raises CredentialError when no demo sandbox is configured, LinkedAlready
    when a credential reaches its user already."""
    demo = demo_sandbox()
    if demo is None:
        raise service.CredentialError("No demo sandbox is configured.")
    creds = service.list_credentials()
    url = demo["url"].rstrip("/")
    for cred in creds:
        if cred.base_url.rstrip("/") == url and cred.api_user == demo["user"]:
            # A second click of the button, or the button of a page opened before: one
            # credential for one sandbox user, one first sync.
            raise LinkedAlready(
                f"The sandbox is linked already, as the credential {cred.name} (added by an "
                "earlier click, here or in another tab); nothing was added."
            )
    existing = {c.name.lower() for c in creds}
    name, n = "Entrust sandbox", 2
    while name.lower() in existing:
        name = f"Entrust sandbox {n}"
        n += 1
    data = service.CredentialInput(
        name=name, api_user=demo["user"], api_key=demo["key"], base_url=demo["url"], is_admin=True
    )
    return service.create(actor, data)
