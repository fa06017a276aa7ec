"""The ECS Enterprise API v2 client.

Every call goes through :meth:`EcsClient._request`, which applies the rate budget, the timeouts,
the retry policy (GET only), the logging, and turns every failure into a typed
:mod:`webapp.ecs.errors` exception.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import math
import random
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import urllib3.exceptions
import urllib3.util

from . import errors, types
from .errors import ConnectionProblem
from .ratelimit import RateBudget
from .transport import EcsAdapter, build_ssl_context, scrub

__all__ = ["DEFAULT_BASE_URL", "EcsClient"]

DEFAULT_BASE_URL = "https://api.entrust.net/enterprise/v2/"
MAX_PAGE_SIZE = 1000
# The page size a listing falls back to when ECS will not answer its first page at a larger one.
SMALL_PAGE_SIZE = 100
log = logging.getLogger("webapp.ecs")

_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_STATE_WORDS = (
    "cannot be",
    "can not be",
    "state",
    "status",
    "not allowed",
    "already",
    "only valid",
    "not eligible",
    "30 days",
)


@dataclass
class _Reply:
    status: int
    headers: Mapping[str, str]
    body: Any  # parsed JSON, or None for an empty body


def _is_loopback(host: str | None) -> bool:
    """Whether ``host`` is this machine (where plain http:// is allowed: a local sandbox)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def in_clear_across_network(base_url: str) -> bool:
    """Whether requests to ``base_url`` would carry the API key in clear text off this machine
    (plain http:// to another host). The host is the one the HTTP client connects to, and the
    one ``urlsplit`` reads, when the two differ: both must be this machine."""
    if not base_url.startswith("http://"):
        return False
    try:
        connects_to = (urllib3.util.parse_url(base_url).host or "").strip("[]")
        hosts = {urlsplit(base_url).hostname, connects_to}
    except (ValueError, urllib3.exceptions.LocationParseError):
        return True
    return not all(_is_loopback(host) for host in hosts)


# The longest a call waits in CertDesk's own request budget before it is sent; a call that would
# wait longer is refused unsent (RateLimitedError).
RATE_WAIT_MAX = 120.0


class EcsClient:
    """Client for one ECS API user.

    ``client_cert_pem``/``client_key_pem`` are held in memory by the caller; they are loaded into
    an SSL context once (see :mod:`webapp.ecs.transport`). ``verify`` is True, False or the path
    of a CA bundle. ``proxy`` is an ``http(s)://host:port`` URL used for every request; proxy
    settings from the environment are ignored so behaviour does not depend on the process.
    ``rate_budget`` should come from :func:`webapp.ecs.ratelimit.budget_for` keyed by credential
    (never by the key itself) so every caller in the process shares it.

    Retries: GETs get up to ``max_get_attempts`` attempts on timeouts, connection failures, 429
    and 5xx, with exponential backoff (``backoff_base * 2**n`` capped at ``backoff_max``, with
    jitter); a ``Retry-After`` on 429/503 is honoured up to ``max_retry_after`` seconds, and a
    longer one is raised at once as the error's ``retry_after``. POST, PUT and PATCH are sent once.

    The timeouts bound the connect and each socket read. A client holds a ``requests.Session``;
    give each thread its own client (they can share one ``RateBudget``).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_user: str = "",
        api_key: str = "",
        *,
        client_cert_pem: bytes | str | None = None,
        client_key_pem: bytes | str | None = None,
        client_key_password: bytes | str | None = None,
        proxy: str | None = None,
        verify: bool | str = True,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        rate_budget: RateBudget | None = None,
        rate_wait_max: float | None = RATE_WAIT_MAX,
        max_get_attempts: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        max_retry_after: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        user_agent: str = "CertDesk-ECS/1",
        waiting: Callable[[], AbstractContextManager] = nullcontext,
    ) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise ValueError("base_url must be an http(s) URL")
        if in_clear_across_network(base_url):
            raise ValueError("Entrust is reached over https://; http:// only on this machine")
        plain = base_url.startswith("http://")
        if client_key_pem and not client_cert_pem:
            raise ValueError("client_key_pem given without client_cert_pem")
        self.base_url = base_url.rstrip("/") + "/"
        self.api_user = api_user
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.rate_budget = rate_budget
        self.rate_wait_max = rate_wait_max
        self.max_get_attempts = max(1, int(max_get_attempts))
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        # Entered around each call, its retries and waits: the caller's code gives up what it
        # holds while this thread only waits (webapp.turns).
        self._waiting = waiting
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security

        session = requests.Session()
        session.trust_env = False
        session.auth = requests.auth.HTTPBasicAuth(api_user, api_key)
        session.headers.update(
            {
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": user_agent,
            }
        )
        if proxy and not plain:  # a proxy would see a plain request, key and all
            session.proxies = {"http": proxy, "https": proxy}
        if self.base_url.startswith("https://"):
            ctx = build_ssl_context(verify, client_cert_pem, client_key_pem, client_key_password)
            session.mount("https://", EcsAdapter(ctx))
        self._session = session
        self.has_client_cert = bool(client_cert_pem)

    # --- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    def __enter__(self) -> EcsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EcsClient(base_url={self.base_url!r}, api_user={self.api_user!r})"

    # --- the one request method ---------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self.base_url + path.lstrip("/")

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
    ) -> _Reply:
        """Send one API call and return its status, headers and parsed JSON body.

        Raises the matching :mod:`errors` class for every failure. GETs are retried as the
        class docstring says; anything else is attempted exactly once.
        """
        with self._waiting():
            return self._request_waiting(method, path, params, json_body)

    def _request_waiting(self, method: str, path: str, params, json_body) -> _Reply:
        method = method.upper()
        retryable = method not in _MUTATING
        attempts = self.max_get_attempts if retryable else 1
        for attempt in range(1, attempts + 1):
            if self.rate_budget is not None:
                self.rate_budget.acquire(self.rate_wait_max)
            try:
                return self._send_once(method, path, params, json_body)
            except errors.EcsError as exc:
                if not retryable or not self._transient(exc):
                    raise
                delay = self._retry_delay(attempt, exc)
                if delay is None or attempt == attempts:
                    raise
                log.warning(
                    "ECS %s %s attempt %d/%d failed (%s); retrying in %.2f s",
                    method,
                    path,
                    attempt,
                    attempts,
                    type(exc).__name__,
                    delay,
                )
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _transient(exc: errors.EcsError) -> bool:
        if isinstance(exc, errors.EcsTimeout):
            return True
        if isinstance(exc, errors.EcsConnectionError):
            return exc.problem in (
                ConnectionProblem.RESET,
                ConnectionProblem.REFUSED,
                ConnectionProblem.UNREACHABLE,
                ConnectionProblem.OTHER,
            )
        if isinstance(exc, errors.MalformedResponseError):
            return getattr(exc, "truncated", False)
        return exc.status in _RETRY_STATUSES

    def _retry_delay(self, attempt: int, exc: errors.EcsError) -> float | None:
        """Seconds to wait before the next attempt, or None to give up now."""
        if exc.status in (429, 503) and exc.retry_after is not None:
            if exc.retry_after > self.max_retry_after:
                return None
            return max(0.0, exc.retry_after)
        backoff = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return backoff * (0.5 + 0.5 * self._rng.random())

    def _send_once(
        self, method: str, path: str, params: Mapping[str, Any] | None, json_body: Any
    ) -> _Reply:
        mutating = method in _MUTATING
        ctx = {"method": method, "path": "/" + path.lstrip("/")}
        start = self._clock()
        try:
            resp = self._session.request(
                method,
                self._url(path),
                params=params,
                json=json_body,
                timeout=(self.connect_timeout, self.read_timeout),
                allow_redirects=False,
                stream=True,
            )
        except requests.exceptions.ConnectTimeout as e:
            raise errors.EcsTimeout(
                f"no connection within {self.connect_timeout:g} s ({_describe(e)})",
                phase="connect",
                **ctx,
            ) from None
        except requests.exceptions.ReadTimeout:
            raise errors.EcsTimeout(
                f"no answer within {self.read_timeout:g} s",
                phase="read",
                outcome_unknown=mutating,
                **ctx,
            ) from None
        except requests.exceptions.ProxyError as e:
            raise errors.EcsConnectionError(
                _describe(e), problem=ConnectionProblem.PROXY, **ctx
            ) from None
        except requests.exceptions.SSLError as e:
            raise errors.EcsConnectionError(
                _describe(e), problem=ConnectionProblem.TLS, **ctx
            ) from None
        except requests.exceptions.ConnectionError as e:
            problem = _classify(e)
            raise errors.EcsConnectionError(
                _describe(e),
                problem=problem,
                outcome_unknown=mutating
                and problem in (ConnectionProblem.RESET, ConnectionProblem.OTHER),
                **ctx,
            ) from None
        except requests.exceptions.RequestException as e:
            raise errors.EcsConnectionError(_describe(e), **ctx) from None

        status = resp.status_code
        ctx["status"] = status
        try:
            raw = resp.content
        except requests.exceptions.ConnectionError as e:
            if _find(e, urllib3.exceptions.ReadTimeoutError, socket.timeout, TimeoutError):
                raise errors.EcsTimeout(
                    f"the response body did not arrive within {self.read_timeout:g} s",
                    phase="read",
                    outcome_unknown=mutating,
                    **ctx,
                ) from None
            raise self._truncated(ctx, mutating, e) from None
        except requests.exceptions.RequestException as e:  # ChunkedEncodingError, decode errors
            raise self._truncated(ctx, mutating, e) from None
        finally:
            resp.close()
        elapsed_ms = (self._clock() - start) * 1000.0

        ctype = resp.headers.get("Content-Type", "")
        body: Any = None
        parse_error: str | None = None
        if raw.strip():
            if ctype and "json" not in ctype.lower():
                parse_error = f"expected JSON, got {ctype.split(';')[0].strip()}"
            else:
                try:
                    body = json.loads(raw)
                except ValueError:
                    parse_error = "the body is not valid JSON"
                    if _looks_cut_off(raw):
                        parse_error = "the body is not valid JSON (it looks cut off)"

        ecs_elapsed = None
        if isinstance(body, Mapping) and isinstance(body.get("summary"), Mapping):
            ecs_elapsed = body["summary"].get("elapsed")
        log.info(
            "ECS %s %s -> %s in %.0f ms (ECS elapsed %s ms)",
            method,
            ctx["path"],
            status,
            elapsed_ms,
            ecs_elapsed if ecs_elapsed is not None else "-",
        )

        if 200 <= status < 300:
            if parse_error is not None:
                raise errors.MalformedResponseError(
                    parse_error, outcome_unknown=mutating, **ctx
                ) from None
            if isinstance(body, Mapping) and body.get("errors") and _int(body.get("status")):
                raise _error_from_envelope(
                    _int(body.get("status")), body, resp.headers, ctx, mutating
                )
            return _Reply(status, resp.headers, body)
        if 300 <= status < 400:
            raise errors.MalformedResponseError(
                f"unexpected redirect to {scrub(resp.headers.get('Location', '?'))}; "
                "check the base URL and any proxy",
                outcome_unknown=False,
                **ctx,
            )
        if parse_error is not None or not isinstance(body, Mapping):
            body = None
        raise _error_from_envelope(status, body, resp.headers, ctx, mutating, ctype)

    @staticmethod
    def _truncated(ctx: dict, mutating: bool, exc: Exception) -> errors.MalformedResponseError:
        err = errors.MalformedResponseError(
            f"the response body was cut off ({_describe(exc)})",
            outcome_unknown=mutating,
            **ctx,
        )
        err.truncated = True
        return err

    # --- helpers shared by the operations -----------------------------------------------------

    def _get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        reply = self._request("GET", path, params=params)
        if not isinstance(reply.body, Mapping):
            raise errors.MalformedResponseError(
                "expected a JSON object", method="GET", path="/" + path, status=reply.status
            )
        return reply.body

    def _parse(self, reply_or_body: Any, parser: Callable[[Any], Any], method: str, path: str):
        """Run a types parser; a body of the wrong shape becomes MalformedResponseError."""
        try:
            return parser(reply_or_body)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise errors.MalformedResponseError(
                f"unexpected JSON shape: {type(e).__name__}: {scrub(str(e), 120)}",
                method=method,
                path="/" + path.lstrip("/"),
                outcome_unknown=method in _MUTATING,
            ) from None

    def _list(self, path: str, keys: tuple[str, ...], parser, params=None) -> list:
        body = self._get_json(path, params)
        for key in keys:
            if key in body:
                items = body[key]
                break
        else:
            raise errors.MalformedResponseError(
                f"no {keys[0]!r} in the response", method="GET", path="/" + path, status=200
            )
        if not isinstance(items, list):
            raise errors.MalformedResponseError(
                f"{keys[0]!r} is not a list", method="GET", path="/" + path, status=200
            )
        return [self._parse(item, parser, "GET", path) for item in items]

    def _paginate(
        self,
        path: str,
        key: str,
        parser: Callable[[Any], Any],
        params: Mapping[str, Any] | None,
        page_size: int,
        empty_on_404: bool = False,
        smaller_on_failure: bool = False,
    ) -> Iterator[Any]:
        """Yield every item of a paginated listing, page by page.

        ``offset`` is the index of the first item; the loop stops at ``summary.total``. An empty
        or repeated page before the total raises :class:`errors.PagingError`, so a misbehaving
        server cannot make this loop forever.

        ECS's largest page (1000) "is subject to change", and some accounts' domain listings fail
        at 1000 and answer at 100. With ``smaller_on_failure`` (domain listings), a first page
        refused at a larger size (400, 5xx or a timeout) is asked for once more at
        ``SMALL_PAGE_SIZE``, and the listing goes on at that size.
        """
        limit = max(1, min(int(page_size), MAX_PAGE_SIZE))
        offset = 0
        previous: str | None = None
        while True:
            query = dict(params or {})
            query.update(offset=offset, limit=limit)
            try:
                body = self._get_json(path, query)
            except errors.NotFoundError:
                # Some ECS versions answer an empty certificate search with 404.
                if empty_on_404 and offset == 0:
                    return
                raise
            except (errors.ValidationError, errors.ServerError, errors.EcsTimeout):
                if smaller_on_failure and offset == 0 and limit > SMALL_PAGE_SIZE:
                    limit = SMALL_PAGE_SIZE
                    continue
                raise
            items = body.get(key)
            if not isinstance(items, list):
                raise errors.MalformedResponseError(
                    f"no {key!r} list in the page at offset {offset}",
                    method="GET",
                    path="/" + path,
                    status=200,
                )
            summary = body.get("summary") if isinstance(body.get("summary"), Mapping) else {}
            total = _int(summary.get("total"))
            fingerprint = json.dumps(items, sort_keys=True, default=str)
            if not items:
                if total is not None and offset < total:
                    raise errors.PagingError(
                        f"empty page at offset {offset} of {total}",
                        method="GET",
                        path="/" + path,
                        status=200,
                    )
                return
            if fingerprint == previous:
                raise errors.PagingError(
                    f"the page at offset {offset} repeats the previous page",
                    method="GET",
                    path="/" + path,
                    status=200,
                )
            previous = fingerprint
            for item in items:
                yield self._parse(item, parser, "GET", path)
            offset += len(items)
            if total is None:
                if len(items) < limit:
                    return
            elif offset >= total:
                return

    # --- application, clients, organizations --------------------------------------------------

    def get_version(self) -> str:
        """ECS application version; also the credential check. Raises AuthenticationError."""
        body = self._get_json("application/version")
        version = body.get("version")
        if not isinstance(version, str | int | float) or version == "":
            raise errors.MalformedResponseError(
                "no version in the response", method="GET", path="/application/version"
            )
        return str(version)

    def list_clients(self) -> list[types.Client]:
        """All clients of the account (clientId 1 is the primary)."""
        return self._list("clients", ("clients",), types.Client.from_json)

    def get_client(self, client_id: int) -> types.Client:
        """One client with address, contact and (primary only) organizations. 404: NotFoundError."""
        path = f"clients/{_id(client_id)}"
        return self._parse(self._get_json(path), types.Client.from_json, "GET", path)

    def list_organizations(self, client_id: int | None = None) -> list[types.Organization]:
        """Organizations of every client, or of one client (then without ``client_id``)."""
        path = "organizations" if client_id is None else f"clients/{_id(client_id)}/organizations"
        return self._list(path, ("organizations",), types.Organization.from_json)

    def list_organizational_units(
        self, client_id: int | None = None
    ) -> list[types.OrganizationalUnit]:
        """Organizational units of every client, or of one client."""
        path = (
            "organizationalUnits"
            if client_id is None
            else f"clients/{_id(client_id)}/organizationalUnits"
        )
        # the live key is all lower case; the spec's schema says "organizations"
        return self._list(
            path,
            ("organizationalunits", "organizationalUnits", "organizations"),
            types.OrganizationalUnit.from_json,
        )

    # --- domains ------------------------------------------------------------------------------

    def iter_domains(
        self,
        client_id: int | None = None,
        filters: Mapping[str, Any] | None = None,
        page_size: int = MAX_PAGE_SIZE,
        sort: str | None = None,
    ) -> Iterator[types.Domain]:
        """Every domain of the account or of one client, following pages."""
        path = "domains" if client_id is None else f"clients/{_id(client_id)}/domains"
        params = _filters(filters)
        if sort:
            params["sort"] = sort
        return self._paginate(
            path, "domains", types.Domain.from_json, params, page_size, smaller_on_failure=True
        )

    def get_domain(self, client_id: int, domain: str) -> types.Domain:
        """A domain with its validation challenge (DNS record, web file, or e-mail addresses)."""
        path = f"clients/{_id(client_id)}/domains/{_seg(domain)}"
        return self._parse(self._get_json(path), types.Domain.from_json, "GET", path)

    def add_domain(
        self,
        client_id: int,
        domain: str,
        verification_method: str = "DNS",
        *,
        email_source: str | None = None,
        email: str | None = None,
    ) -> types.DomainValidationStarted:
        """Add a domain and start its validation (POST, never retried)."""
        body: dict[str, Any] = {
            "domainName": domain,
            **_dcv(verification_method, email_source, email),
        }
        path = f"clients/{_id(client_id)}/domains"
        reply = self._request("POST", path, json_body=body)
        return _validation_started(client_id, domain, reply)

    def reverify_domain(
        self,
        client_id: int,
        domain: str,
        verification_method: str = "DNS",
        *,
        email_source: str | None = None,
        email: str | None = None,
    ) -> types.DomainValidationStarted:
        """Re-verify a domain or change its validation method (PUT, never retried)."""
        path = f"clients/{_id(client_id)}/domains/{_seg(domain)}"
        reply = self._request("PUT", path, json_body=_dcv(verification_method, email_source, email))
        return _validation_started(client_id, domain, reply)

    # --- catalogue ----------------------------------------------------------------------------

    def list_inventories(self) -> list[types.Product]:
        """The products the account can order, with counts (``FLEX`` is pooled SSL inventory)."""
        return self._list("inventories", ("inventories", "inventory"), types.Product.from_json)

    def get_custom_fields(self) -> types.CustomFields:
        """The custom tracking fields; ``available=False`` when ECS answers 404 "Not enabled"."""
        try:
            body = self._get_json("customFields")
        except errors.NotFoundError as e:
            if e.messages:  # an ECS error envelope, not a wrong URL
                return types.CustomFields(fields={}, available=False)
            raise
        return self._parse(body, types.CustomFields.from_json, "GET", "customFields")

    # --- certificates: reading ----------------------------------------------------------------

    def iter_certificates(
        self,
        filters: Mapping[str, Any] | None = None,
        fields: Iterable[str] | str | None = None,
        sort: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[types.Certificate]:
        """Every certificate matching ``filters`` (see :func:`types.filter_value`), page by page.

        ``fields`` selects the returned fields (``"*"`` for all; ECS's default is a short set).
        Note that ECS leaves APPROVED and DECLINED orders out of this list.
        """
        params = _filters(filters)
        if fields:
            params["fields"] = fields if isinstance(fields, str) else ",".join(fields)
        if sort:
            params["sort"] = sort
        return self._paginate(
            "certificates",
            "certificates",
            types.Certificate.from_json,
            params,
            page_size,
            empty_on_404=True,
        )

    def certificates_page(
        self,
        offset: int = 0,
        limit: int = MAX_PAGE_SIZE,
        filters: Mapping[str, Any] | None = None,
        fields: Iterable[str] | str | None = None,
        sort: str | None = None,
    ) -> tuple[list[types.Certificate], int | None]:
        """One page of the certificate list from ``offset`` (an item index): (items, total).

        For listings that must carry on from where they stopped; ``iter_certificates`` follows
        every page itself."""
        params = _filters(filters)
        params.update(offset=max(0, int(offset)), limit=max(1, min(int(limit), MAX_PAGE_SIZE)))
        if fields:
            params["fields"] = fields if isinstance(fields, str) else ",".join(fields)
        if sort:
            params["sort"] = sort
        try:
            body = self._get_json("certificates", params)
        except errors.NotFoundError:
            if offset == 0:  # some ECS versions answer an empty search with 404
                return [], 0
            raise
        items = body.get("certificates")
        if not isinstance(items, list):
            raise errors.MalformedResponseError(
                f"no 'certificates' list in the page at offset {offset}",
                method="GET",
                path="/certificates",
                status=200,
            )
        summary = body.get("summary") if isinstance(body.get("summary"), Mapping) else {}
        parsed = [self._parse(i, types.Certificate.from_json, "GET", "certificates") for i in items]
        return parsed, _int(summary.get("total"))

    def get_certificate(self, tracking_id: int) -> types.Certificate:
        """Full detail of one order: status, PEM certificate, chain, CSR. 404: NotFoundError."""
        path = f"certificates/{_id(tracking_id)}"
        return self._parse(self._get_json(path), types.Certificate.from_json, "GET", path)

    def get_certificate_by_thumbprint(self, thumbprint: str) -> types.Certificate:
        """Detail of a third-party (discovered) certificate, which has trackingId 0."""
        tp = thumbprint.replace(":", "").strip()
        path = f"certificates/thumbprints/{_seg(tp)}"
        return self._parse(self._get_json(path), types.Certificate.from_json, "GET", path)

    def get_statuses(
        self,
        tracking_ids: Iterable[int],
        chunk_size: int = 100,
        fields: Iterable[str] | str | None = None,
        fetch_missing: bool = True,
    ) -> dict[int, types.Certificate]:
        """Current state of many orders, with ``trackingId=in:`` lists of ``chunk_size`` ids.

        ECS leaves APPROVED and DECLINED orders out of list results, so ids missing from the
        lists are fetched one by one when ``fetch_missing`` is set; ids ECS does not know are
        left out of the result.
        """
        ids = list(dict.fromkeys(_id(t) for t in tracking_ids))
        chunk_size = max(1, min(int(chunk_size), MAX_PAGE_SIZE))
        found: dict[int, types.Certificate] = {}
        for i in range(0, len(ids), chunk_size):
            chunk = ids[i : i + chunk_size]
            filters = {"trackingId": "in:" + ",".join(str(t) for t in chunk)}
            for cert in self.iter_certificates(filters, fields=fields, page_size=chunk_size):
                if cert.tracking_id in chunk:
                    found[cert.tracking_id] = cert
        if fetch_missing:
            for tid in ids:
                if tid not in found:
                    try:
                        found[tid] = self.get_certificate(tid)
                    except errors.NotFoundError:
                        continue
        return found

    def find_certificates_by_tracking_info(self, info: str) -> list[types.Certificate]:
        """Orders whose ``tracking.trackingInfo`` equals ``info`` (to settle an unknown outcome)."""
        return list(self.iter_certificates({"tracking.trackingInfo": "eq:" + info}, fields="*"))

    # --- certificates: ordering ---------------------------------------------------------------

    def new_certificate(
        self, request: types.NewCertificateRequest | Mapping[str, Any]
    ) -> types.OrderResult:
        """Place a new order (POST, sent once).

        Returns an :class:`types.OrderResult` whose ``outcome`` is ISSUED (201), PENDING (202,
        queued for approval) or VALIDATED (200 with ``validateOnly``). A timeout, reset, 5xx or
        unreadable answer raises with ``outcome_unknown=True``: reconcile with
        :meth:`find_certificates_by_tracking_info` before ordering again.
        """
        return self._order("certificates", _body(request))

    def reissue(
        self, tracking_id: int, request: types.ReissueRequest | Mapping[str, Any] | None = None
    ) -> types.OrderResult:
        """Reissue (POST, sent once): a new trackingId with the same expiry; the old is revoked."""
        return self._order(f"certificates/{_id(tracking_id)}/reissues", _body(request))

    def renew(
        self, tracking_id: int, request: types.RenewRequest | Mapping[str, Any] | None = None
    ) -> types.OrderResult:
        """Renew (POST, sent once): a new trackingId. ECS refuses certs under 30 days old."""
        return self._order(f"certificates/{_id(tracking_id)}/renewals", _body(request))

    def _order(self, path: str, body: dict[str, Any]) -> types.OrderResult:
        try:
            reply = self._request("POST", path, json_body=body)
            return self._parse(
                reply.body,
                lambda b: types.OrderResult.from_response(reply.status, b),
                "POST",
                path,
            )
        except errors.EcsError as exc:
            if body.get("validateOnly"):
                exc.outcome_unknown = False  # a validation places nothing, whatever happened
            raise

    # --- certificates: lifecycle --------------------------------------------------------------

    def _patch(self, tracking_id: int, body: dict[str, Any]) -> _Reply:
        return self._request("PATCH", f"certificates/{_id(tracking_id)}", json_body=body)

    def approve(self, tracking_id: int) -> types.OrderResult:
        """Approve a PENDING order: ISSUED (201 with the certificate) or ACCEPTED (200, no body)."""
        reply = self._patch(tracking_id, {"operation": "APPROVE"})
        if reply.status == 201 and reply.body:
            return self._parse(
                reply.body,
                lambda b: types.OrderResult.from_response(201, b),
                "PATCH",
                f"certificates/{tracking_id}",
            )
        return types.OrderResult(
            outcome=types.OrderOutcome.ACCEPTED, status_code=reply.status, tracking_id=tracking_id
        )

    def decline(self, tracking_id: int, reason: str) -> None:
        """Decline a PENDING order with a reason (at most 254 characters)."""
        self._patch(tracking_id, {"operation": "DECLINE", "declineReason": reason})

    def suspend(self, tracking_id: int) -> None:
        """Suspend a READY or ACTIVE certificate."""
        self._patch(tracking_id, {"operation": "SUSPEND"})

    def unsuspend(self, tracking_id: int) -> None:
        """Resume a SUSPENDED certificate."""
        self._patch(tracking_id, {"operation": "UNSUSPEND"})

    def revoke(
        self,
        tracking_id: int,
        reason: types.RevocationReason | str = types.RevocationReason.UNSPECIFIED,
        comment: str | None = None,
    ) -> None:
        """Revoke. ECS today accepts the reasons ``unspecified`` and ``keyCompromise``."""
        body: dict[str, Any] = {"crlReason": str(reason)}
        if comment:
            body["revocationComment"] = comment
        self._request("POST", f"certificates/{_id(tracking_id)}/revocations", json_body=body)

    def deactivate(self, tracking_id: int) -> None:
        """Deactivate an ACTIVE certificate (in test accounts this frees the inventory token)."""
        self._request("POST", f"certificates/{_id(tracking_id)}/deactivations")

    def replace_tracking(
        self, tracking_id: int, tracking: types.Tracking | Mapping[str, Any]
    ) -> None:
        """Replace ALL tracking data of a certificate (an empty value erases it)."""
        body = tracking.to_json() if isinstance(tracking, types.Tracking) else dict(tracking)
        self._request("PUT", f"certificates/{_id(tracking_id)}/tracking", json_body=body)


# --- module helpers -------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


def _id(value: Any) -> int:
    """A tracking or client id as an int (ids go into paths, so nothing else is allowed)."""
    if isinstance(value, bool):
        raise TypeError("an id must be an integer")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"not a valid ECS id: {value!r}") from None
    if number < 0:
        raise ValueError(f"not a valid ECS id: {value!r}")
    return number


def _seg(value: str) -> str:
    """One path segment, percent-encoded (a domain or thumbprint can never add a path)."""
    if not value or value in (".", ".."):
        raise ValueError("empty or relative path segment")
    return quote(str(value), safe="")


def _filters(filters: Mapping[str, Any] | None) -> dict[str, str]:
    return {k: types.filter_value(v) for k, v in (filters or {}).items() if v is not None}


def _body(request: Any) -> dict[str, Any]:
    if request is None:
        return {}
    if hasattr(request, "to_json"):
        return request.to_json()
    if isinstance(request, Mapping):
        return dict(request)
    raise TypeError(f"cannot send {type(request).__name__} as a request body")


def _dcv(method: str, email_source: str | None, email: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"verificationMethod": str(method).upper()}
    if email_source or email:
        body["emailMethod"] = {
            k: v for k, v in (("emailSource", email_source), ("email", email)) if v is not None
        }
    return body


def _validation_started(
    client_id: int, domain: str, reply: _Reply
) -> types.DomainValidationStarted:
    check_after = None
    header = reply.headers.get("Retry-After")
    if header:
        check_after = _retry_after_date(header)
    return types.DomainValidationStarted(
        client_id=client_id,
        domain_name=domain,
        location=reply.headers.get("Location"),
        check_after=check_after,
    )


def _retry_after_date(value: str) -> datetime | None:
    """``Retry-After`` as a time (None: none, or one beyond the calendar)."""
    value = value.strip()
    if value.isdigit():
        try:
            return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=int(value))
        except (ValueError, OverflowError):  # too many digits, or past the year 9999
            return None
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: an integer, or an HTTP-date measured from now."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # "inf", "nan" and "1e999" read as floats, but tell no number of seconds.
        return max(0.0, seconds) if math.isfinite(seconds) else None
    when = _retry_after_date(value)
    if when is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _looks_cut_off(raw: bytes) -> bool:
    text = raw.strip()
    return text[:1] in (b"{", b"[") and text[-1:] not in (b"}", b"]")


# What is kept of an error body's messages: they go into pages, flashed notices (a cookie of at
# most 4 KB), logs and the database, and a server may send anything. ECS's own are one line each.
MESSAGE_CHARS = 500
MESSAGES_KEPT = 20


def _clip(text: str) -> str:
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def _envelope(body: Mapping[str, Any] | None) -> tuple[list[str], dict[str, list[str]]]:
    """Messages and field errors from ``{"status", "errors": [{message, field, cause}]}``: at
    most ``MESSAGES_KEPT``, each cut to ``MESSAGE_CHARS`` characters."""
    messages: list[str] = []
    fields: dict[str, list[str]] = {}
    items = body.get("errors") if isinstance(body, Mapping) else None
    if isinstance(items, Mapping):
        items = [items]
    if not isinstance(items, list):
        if isinstance(body, Mapping) and isinstance(body.get("message"), str):
            messages.append(_clip(body["message"]))
        return messages, fields
    for item in items:
        if len(messages) == MESSAGES_KEPT:
            break
        if isinstance(item, str):
            messages.append(_clip(item))
            continue
        if not isinstance(item, Mapping):
            continue
        message = str(item.get("message") or "").strip()
        cause = item.get("cause")
        while isinstance(cause, Mapping) and cause.get("message") and len(message) < MESSAGE_CHARS:
            message = f"{message} ({cause['message']})" if message else str(cause["message"])
            cause = cause.get("cause")
        if not message:
            continue
        message = _clip(message)
        messages.append(message)
        if item.get("field"):
            fields.setdefault(_clip(str(item["field"])), []).append(message)
    return messages, fields


def _error_from_envelope(
    status: int,
    body: Mapping[str, Any] | None,
    headers: Mapping[str, str],
    ctx: dict[str, Any],
    mutating: bool,
    ctype: str = "",
) -> errors.EcsError:
    messages, fields = _envelope(body)
    detail = None
    if body is None:
        kind = ctype.split(";")[0].strip() or "no content type"
        detail = f"the response was not an ECS error body ({kind})"
    kwargs: dict[str, Any] = dict(ctx, status=status, messages=messages, field_errors=fields)
    kwargs["status"] = status
    if status in (401, 403):
        return errors.AuthenticationError(detail, **kwargs)
    if status == 404:
        return errors.NotFoundError(detail, **kwargs)
    if status == 409:
        return errors.ConflictError(detail, **kwargs)
    if status == 429:
        return errors.RateLimitedError(
            detail, retry_after=_retry_after_seconds(headers.get("Retry-After")), **kwargs
        )
    if status in (400, 422):
        # ECS answers state errors ("Certificate cannot be revoked", "Operation APPROVE is not
        # valid for a certificate in status ACTIVE") with 400 too; tell them apart by wording,
        # unless the message is tied to an input field other than the operation itself.
        text = " ".join(messages).lower()
        input_fields = set(fields) - {"operation"}
        if not input_fields and any(w in text for w in _STATE_WORDS):
            return errors.ConflictError(detail, **kwargs)
        return errors.ValidationError(detail, **kwargs)
    if status >= 500:
        retry_after = _retry_after_seconds(headers.get("Retry-After")) if status == 503 else None
        return errors.ServerError(
            detail, retry_after=retry_after, outcome_unknown=mutating, **kwargs
        )
    return errors.EcsError(detail, **kwargs)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps (args, reason, cause, context), without loops."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        stack.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
        for attr in ("reason", "__cause__", "__context__"):
            inner = getattr(e, attr, None)
            if isinstance(inner, BaseException):
                stack.append(inner)


def _find(exc: BaseException, *classes: type) -> BaseException | None:
    for e in _chain(exc):
        if isinstance(e, classes):
            return e
    return None


def _classify(exc: BaseException) -> ConnectionProblem:
    if _find(exc, urllib3.exceptions.ProxyError):
        return ConnectionProblem.PROXY
    if _find(exc, urllib3.exceptions.SSLError, ssl.SSLError):
        return ConnectionProblem.TLS
    if _find(exc, urllib3.exceptions.NameResolutionError, socket.gaierror):
        return ConnectionProblem.DNS
    if _find(exc, ConnectionRefusedError):
        return ConnectionProblem.REFUSED
    if _find(exc, urllib3.exceptions.NewConnectionError):
        os_err = _find(exc, OSError)
        if os_err is not None and getattr(os_err, "errno", None) == errno.ECONNREFUSED:
            return ConnectionProblem.REFUSED
        return ConnectionProblem.UNREACHABLE
    if _find(
        exc,
        urllib3.exceptions.ProtocolError,
        ConnectionResetError,
        ConnectionAbortedError,
        BrokenPipeError,
    ):
        return ConnectionProblem.RESET
    return ConnectionProblem.OTHER


def _describe(exc: BaseException) -> str:
    """A short, credential-free description of a transport failure."""
    innermost = exc
    for e in _chain(exc):
        innermost = e
    text = str(innermost) or type(innermost).__name__
    return scrub(f"{type(innermost).__name__}: {text}", 200)
