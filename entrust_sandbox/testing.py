"""A harness that runs the real sandbox server in a background thread, for tests and benchmarks.

    with SandboxServer() as sb:
        sb.seed(certificates=50, seed=7)
        requests.get(sb.base_url + "certificates", auth=(sb.api_user, sb.api_key))

The server listens on a free loopback port. Its defaults suit tests: the duplicate-DN guard is
off and domain validation values appear at once (pass `settings=Settings(...)` to change that).
With `https=True`, verify against `ca_cert_path`; with `require_client_cert_user=True` the
administrator user needs the client certificate in `client_cert` (a (cert, key) file pair that
`requests` takes as `cert=`). Helpers wrap the control API and raise on a non-2xx answer; a few
read the account's orders over the ECS API as any API client would (`orders`, `held`, `order`,
`status`): those requests are logged and meet fault rules like any other.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections import Counter
from urllib.parse import quote

import requests

from .app import Sandbox, create_app
from .auth import create_user
from .listing import MAX_LIMIT
from .server import make_server
from .settings import Settings

TEST_SETTINGS = Settings(duplicate_dn_window_seconds=0, dcv_delay_seconds=0)


class SandboxServer:
    """The sandbox on a background thread; a context manager, or call start() and stop()."""

    def __init__(
        self,
        https: bool = False,
        require_client_cert_user: bool = False,
        *,
        state_path: str | None = None,
        settings: Settings | None = None,
        api_user: str = "sandbox-admin",
        api_key: str = "sandbox-admin-key",
        quiet: bool = True,
    ):
        if require_client_cert_user and not https:
            raise ValueError("a client certificate needs https=True")
        self.https = https
        self.require_client_cert_user = require_client_cert_user
        self.state_path = state_path
        self.settings = settings or TEST_SETTINGS
        self.api_user = api_user
        self.api_key = api_key
        self.quiet = quiet
        self.sandbox: Sandbox | None = None
        self.client_cert: tuple[str, str] | None = None
        self.ca_cert_path: str | None = None
        self.root_url = ""
        self.base_url = ""
        self._server = None
        self._thread: threading.Thread | None = None
        self._tmp: str | None = None
        self._session = requests.Session()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> SandboxServer:
        """Create the sandbox, its administrator user and the server, and start serving."""
        self._tmp = tempfile.mkdtemp(prefix="entrust-sandbox-")
        self.sandbox = Sandbox(self.state_path, self.settings)
        user = create_user(
            self.sandbox,
            self.api_user,
            self.api_key,
            "administrator",
            self.require_client_cert_user,
        )
        self.sandbox.keep_users = [self.api_user]
        if self.require_client_cert_user:
            self.client_cert = self.write_client_cert(user)
        self.ca_cert_path = os.path.join(self._tmp, "sandbox-root.pem")
        with open(self.ca_cert_path, "w") as fh:
            fh.write(self.sandbox.store.ca.root_pem)
        app = create_app(self.sandbox)
        self._server = make_server(
            app, self.sandbox.store, "127.0.0.1", 0, https=self.https, quiet=self.quiet
        )
        port = self._server.server_port
        scheme = "https" if self.https else "http"
        self.root_url = f"{scheme}://127.0.0.1:{port}/"
        self.base_url = self.root_url + "enterprise/v2/"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="entrust-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release held fault responses, and remove temporary files."""
        if self._server is not None:
            self.sandbox.stop_event.set()
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self.sandbox.store.close()
            self._server = None
        self._session.close()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- control API helpers ------------------------------------------------------------------

    def _control(self, method: str, path: str, body=None):
        # verify is passed per call: requests lets REQUESTS_CA_BUNDLE override session.verify.
        response = self._session.request(
            method,
            self.root_url + "_sandbox/" + path,
            json=body,
            timeout=120,
            verify=self.ca_cert_path,
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def reset(self) -> None:
        """Back to an empty account with no faults, an empty log, real time, initial settings."""
        self._control("POST", "reset")

    def seed(self, certificates: int = 100, seed=1, api_mandatory=()) -> dict:
        """Replace the account with deterministic data and `certificates` existing certificates;
        `api_mandatory` names custom fields every API order must fill in (e.g. ("text2",))."""
        body = {"certificates": certificates, "seed": seed, "apiMandatory": list(api_mandatory)}
        return self._control("POST", "seed", body)

    def add_user(
        self,
        username: str,
        api_key: str | None = None,
        role: str = "administrator",
        require_client_cert: bool = False,
    ) -> dict:
        """Create an API user; for mTLS users the dict has clientCert/clientKey PEM and
        `client_cert_files`, a (cert path, key path) pair for `requests`' `cert=`."""
        user = self._control(
            "POST",
            "users",
            {
                "username": username,
                "apiKey": api_key,
                "role": role,
                "requireClientCert": require_client_cert,
            },
        )
        if require_client_cert:
            user["client_cert_files"] = self.write_client_cert(user)
        return user

    def write_client_cert(self, user: dict) -> tuple[str, str]:
        """Write a user's client certificate and key to files; return (cert path, key path)."""
        cert_path = os.path.join(self._tmp, f"{user['username']}.crt")
        key_path = os.path.join(self._tmp, f"{user['username']}.key")
        with open(cert_path, "w") as fh:
            fh.write(user["clientCert"])
        with open(key_path, "w") as fh:
            fh.write(user["clientKey"])
        return cert_path, key_path

    def faults(self, rules: list[dict]) -> list[dict]:
        """Replace the fault rules (see entrust_sandbox.traffic for the kinds)."""
        return self._control("POST", "faults", {"rules": rules})["rules"]

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self._control("DELETE", "faults")

    def requests(self) -> list[dict]:
        """The request log: time, method, path, query, headers, body, user, status, fault."""
        return self._control("GET", "requests")["requests"]

    def clear_requests(self) -> None:
        """Empty the request log."""
        self._control("DELETE", "requests")

    def advance_clock(self, days: float) -> dict:
        """Move sandbox time forward by `days`."""
        return self._control("POST", "clock", {"advance_days": days})

    def set_domain_status(self, name: str, status: str, client_id: int | None = None) -> dict:
        """Set a domain's verificationStatus (e.g. APPROVED, EXPIRED)."""
        body = {"verificationStatus": status}
        if client_id is not None:
            body["clientId"] = client_id
        return self._control("POST", f"domains/{name}", body)

    def add_domain(
        self,
        client_id: int,
        name: str,
        status: str = "APPROVED",
        method: str = "DNS",
        ev_eligible: bool = False,
    ) -> dict:
        """Add a domain to a client with its validation in `status` (done, by default)."""
        body = {
            "clientId": client_id,
            "domainName": name,
            "verificationStatus": status,
            "verificationMethod": method,
            "evEligible": ev_eligible,
        }
        return self._control("POST", "domains", body)

    def remove_domain(self, name: str, client_id: int | None = None) -> None:
        """Take a domain away from every client that has it (or from `client_id` only)."""
        body = {} if client_id is None else {"clientId": client_id}
        self._control("DELETE", f"domains/{quote(name, safe='')}", body)

    def set_certificate_status(self, tracking_id: int, status: str) -> dict:
        """Set a certificate's status as an Entrust administrator would."""
        return self._control("POST", f"certificates/{tracking_id}", {"status": status})

    def add_organization(self, client_id: int, name: str, status: str = "APPROVED") -> dict:
        """Add an organization to a client (`name` exactly as it is to be listed)."""
        body = {"clientId": client_id, "name": name, "verificationStatus": status}
        return self._control("POST", "organizations", body)

    def rename_client(
        self, client_id: int, name: str | None = None, friendly_name: str | None = None
    ) -> dict:
        """Change a client's clientName and/or friendlyClientName."""
        body = {"clientName": name, "friendlyClientName": friendly_name}
        return self._control(
            "POST", f"clients/{client_id}", {k: v for k, v in body.items() if v is not None}
        )

    def vet_client(self, client_id: int, status: str = "APPROVED", ev: str | None = None) -> dict:
        """Set a client's verificationStatus (and its evVerificationStatus, if given), as
        Entrust's vetting team does for a client added over the API."""
        body = {"verificationStatus": status} | ({"evVerificationStatus": ev} if ev else {})
        return self._control("POST", f"clients/{client_id}", body)

    def remove_organization(self, client_id: int, name: str) -> None:
        """Take an organization away from a client, as Entrust would."""
        self._control("DELETE", "organizations", {"clientId": client_id, "name": name})

    def set_product(
        self, product_type: str, remaining: int, consumption_type: str | None = None
    ) -> dict:
        """Give the account a product, or set how many of it remain (as a purchase does)."""
        body = {"remainingCount": remaining, "consumptionType": consumption_type}
        return self._control("POST", f"products/{quote(product_type, safe='')}", body)

    def remove_product(self, product_type: str) -> None:
        """Take a product (its inventory) away from the account."""
        self._control("DELETE", f"products/{quote(product_type, safe='')}")

    def set_custom_field(self, name: str, **settings) -> dict:
        """Set up or change a custom field as in Entrust's portal (e.g. `enabled=True,
        label="Owner team", mandatory="BOTH"`): its whole settings; returns them."""
        return self._control("POST", f"custom-fields/{quote(name, safe='')}", settings)[name]

    def remove_custom_field(self, name: str) -> None:
        """Turn a custom field off."""
        self._control("DELETE", f"custom-fields/{quote(name, safe='')}")

    def set_rate_limit(self, limit: int | None) -> dict:
        """Requests per 30 s per API user, or None for no limit."""
        return self._control("POST", "rate-limit", {"limit": limit})

    def update_settings(self, **changes) -> dict:
        """Change settings; `fidelity={...}` flips the live-versus-spec switches."""
        return self._control("POST", "settings", changes)

    # -- the account's orders, read over the ECS API --------------------------------------------

    def _api_get(self, path: str, params: dict | None = None, timeout: float = 30) -> dict:
        response = requests.get(
            self.base_url + path,
            params=params,
            auth=(self.api_user, self.api_key),
            timeout=timeout,
            verify=self.ca_cert_path,
            cert=self.client_cert,
        )
        response.raise_for_status()
        return response.json()

    def orders(self, fields: str = "trackingId,tracking", *, timeout: float = 30) -> list[dict]:
        """Every order the account lists (GET /certificates with `fields`), a page of 1000 at a
        time until `summary.total`: one request while it holds fewer. `timeout` is per page."""
        out: list[dict] = []
        while True:
            page = self._api_get(
                "certificates",
                {"limit": MAX_LIMIT, "offset": len(out), "fields": fields},
                timeout,
            )
            out += page["certificates"]
            if not page["certificates"] or len(out) >= page["summary"]["total"]:
                return out

    def held(self, *, timeout: float = 30) -> Counter:
        """How many orders the account lists per `tracking.trackingInfo` (CertDesk's request id;
        None for an order without one)."""
        return Counter(
            (o.get("tracking") or {}).get("trackingInfo") for o in self.orders(timeout=timeout)
        )

    def order(self, ca_order_id) -> dict:
        """One order as GET /certificates/{trackingId} answers it."""
        return self._api_get(f"certificates/{ca_order_id}")

    def status(self, ca_order_id) -> str:
        """One order's status at the sandbox (ACTIVE, SUSPENDED, REVOKED, ...)."""
        return self.order(ca_order_id)["status"]
