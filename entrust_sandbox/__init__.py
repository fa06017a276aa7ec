"""entrust_sandbox: a faithful stand-in for the Entrust ECS Enterprise API v2.

Module map: `app` (factory and runtime state), `api` (the /enterprise/v2 endpoints), `orders`
(certificate rules and issuance), `listing` (paging, filters, sort, fields), `control` (the
/_sandbox control API), `seed` (deterministic data), `store` (SQLite), `ca` (test CA),
`traffic` (request log, faults, rate limit), `server` (HTTP(S) server), `settings` (switches),
`testing` (SandboxServer harness), `cli` (`certdesk sandbox`).
"""

from .app import Sandbox, create_app

__all__ = ["Sandbox", "create_app"]
