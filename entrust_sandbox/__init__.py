"""entrust_sandbox: a faithful stand-in for the Entrust ECS Enterprise API v2.

Module map: `app` (factory and runtime state), `api` (the /enterprise/v2 endpoints), `orders`
(certificate rules and issuance), `listing` (paging, filters, sort, fields), `control` (the
/_sandbox control API), `seed` (deterministic data), `store` (SQLite), `ca` (test CA),
`auth` (API users), `traffic` (request log, faults, rate limit), `server` (HTTP(S) server),
`settings` (the live-versus-spec switches), `testing` (SandboxServer harness), `cli` (`certdesk
sandbox`).

Choices where the live API's behaviour is not known:
- `limit` outside 1..1000 or a negative `offset` is a 400 (not clamped), on every paged list.
- The default sort is `trackingId:asc` (`domainName:asc` for domains); several keys may be
  given comma-separated; an unknown filter parameter is ignored, a disallowed operator is a 400.
- Bad credentials and a missing or foreign client certificate are 401 with the error envelope.
- An answer without a body (the 200s and 202s that have none) has no Content-Type either.
- Repeated slashes in a path count as one, and a domain named in a path is trimmed of blanks
  (Entrust's own Go client sends one after it), rather than a redirect or a 404.
- APPROVED and DECLINED certificates are left out of the list even when filtered for
  (switch `list_hides_approved_declined`); GET by trackingId still shows them.
- Revoke works from ACTIVE, READY and SUSPENDED; renew from ACTIVE, READY and EXPIRED; reissue
  from ACTIVE and READY. New orders, approvals, reissues and renewals consume inventory;
  deactivation gives the token back. A time given in certExpiryDate is taken in EST.
- A public SSL type (every SSL type but PRIVATE_SSL) may be ordered or renewed to expire at most
  398 days after the day of the request, by certExpiryDate or certLifetime (P2Y and P3Y are
  refused for them); the 400 names the field that asked. A reissue keeps the original's expiry.
- Async orders are carried out at once; the job is SUCCESS or ERROR when first read.
- The control API has no authentication: the sandbox is meant for loopback.
- GET /auditLogs lists the changes API users made through the API (orders, approvals and the
  other status changes, reissues, renewals, revocations, tracking, clients, domains), oldest
  first unless sorted; the activity and comment texts are the sandbox's own wording.
"""

from .app import Sandbox, create_app

__all__ = ["Sandbox", "create_app"]
