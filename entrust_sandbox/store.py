"""SQLite storage of the sandbox's state: one connection guarded by a lock.

The server is threaded; sqlite3 connections are not safe to share without a guard, and one
connection is what makes `:memory:` state possible, so every access goes through `Store.lock`.
Times are stored as `YYYY-MM-DDTHH:MM:SSZ` text, which sorts and compares like the instants.
Multi-valued columns used by filters (`san_key`, `ou_key`, `emails_key`) are stored as
`|a|b|` so that "any value equals x" is a LIKE on `%|x|%`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager

from cryptography import x509

from . import ca as ca_mod
from .clock import Clock, fmt, parse_datetime

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY, api_key TEXT NOT NULL, role TEXT NOT NULL,
    require_client_cert INTEGER NOT NULL DEFAULT 0, cert_fingerprint TEXT
);
CREATE TABLE IF NOT EXISTS clients (
    client_id INTEGER PRIMARY KEY, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS organizations (
    id INTEGER PRIMARY KEY, client_id INTEGER NOT NULL, name TEXT NOT NULL,
    verification_status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS org_units (
    id INTEGER PRIMARY KEY, client_id INTEGER NOT NULL, name TEXT NOT NULL,
    verification_status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS domains (
    id INTEGER PRIMARY KEY, client_id INTEGER NOT NULL, domain_name TEXT NOT NULL,
    verification_method TEXT NOT NULL, verification_status TEXT NOT NULL,
    ov_eligible INTEGER NOT NULL, ev_eligible INTEGER NOT NULL,
    ov_expiry TEXT, ev_expiry TEXT, dcv_value TEXT, dcv_ready_at TEXT, emails TEXT,
    UNIQUE (client_id, domain_name)
);
-- GET /domains lists by domainName (then id, the rowid): a page is an index range, not a sort of
-- every domain; one client's domains page through the (client_id, domain_name) unique index.
CREATE INDEX IF NOT EXISTS ix_domains_name ON domains (domain_name);
-- Domain validations run out with time (orders.age_domains): the statuses that can, by expiry.
CREATE INDEX IF NOT EXISTS ix_domains_status_expiry ON domains (verification_status, ov_expiry);
CREATE TABLE IF NOT EXISTS inventories (
    product_type TEXT PRIMARY KEY, total_count INTEGER NOT NULL, remaining_count INTEGER NOT NULL,
    used_count INTEGER NOT NULL, consumption_type TEXT
);
CREATE TABLE IF NOT EXISTS custom_fields (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS certificates (
    id INTEGER PRIMARY KEY,
    tracking_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    dn TEXT NOT NULL,
    serial TEXT NOT NULL,
    san_json TEXT NOT NULL,
    san_text TEXT NOT NULL,
    san_key TEXT NOT NULL,
    issue_dt TEXT,
    expires_after TEXT,
    signing_alg TEXT,
    eku TEXT,
    key_size INTEGER,
    key_type TEXT,
    org TEXT,
    ou_json TEXT NOT NULL DEFAULT '[]',
    ou_key TEXT NOT NULL DEFAULT '',
    cert_type TEXT NOT NULL,
    tracking_json TEXT NOT NULL DEFAULT '{}',
    tracking_info TEXT,
    requester_name TEXT,
    requester_email TEXT,
    requester_phone TEXT,
    emails_key TEXT NOT NULL DEFAULT '',
    deactivated INTEGER NOT NULL DEFAULT 0,
    deactivated_on TEXT,
    domain_used TEXT,
    is_third_party INTEGER NOT NULL DEFAULT 0,
    thumbprint TEXT,
    client_id INTEGER NOT NULL DEFAULT 1,
    cert_pem TEXT,
    csr_pem TEXT,
    creator_name TEXT,
    decline_reason TEXT,
    pickup_token TEXT,
    inventory_pool TEXT,
    created_at TEXT NOT NULL,
    eku_request TEXT
);
-- (tracking_id, status) covers the default list order and its status filter, so paging to a
-- deep offset walks the index only.
DROP INDEX IF EXISTS ix_cert_tracking;
CREATE INDEX IF NOT EXISTS ix_cert_tracking_status ON certificates (tracking_id, status);
CREATE INDEX IF NOT EXISTS ix_cert_status_exp ON certificates (status, expires_after);
CREATE INDEX IF NOT EXISTS ix_cert_serial ON certificates (serial);
CREATE INDEX IF NOT EXISTS ix_cert_expires ON certificates (expires_after);
CREATE INDEX IF NOT EXISTS ix_cert_issue ON certificates (issue_dt);
CREATE INDEX IF NOT EXISTS ix_cert_tracking_info ON certificates (tracking_info);
CREATE INDEX IF NOT EXISTS ix_cert_thumbprint ON certificates (thumbprint);
CREATE INDEX IF NOT EXISTS ix_cert_dn ON certificates (dn);
CREATE INDEX IF NOT EXISTS ix_cert_type ON certificates (cert_type);
CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, body TEXT NOT NULL);
-- GET /auditLogs: what the account's API users changed, in the order it happened.
CREATE TABLE IF NOT EXISTS audit_logs (
    id INTEGER PRIMARY KEY, activity_date TEXT NOT NULL, activity TEXT NOT NULL,
    user_name TEXT NOT NULL, user_role TEXT NOT NULL, comments TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_audit_logs_date ON audit_logs (activity_date);
"""

ACCOUNT_TABLES = (
    "clients",
    "organizations",
    "org_units",
    "domains",
    "inventories",
    "custom_fields",
    "certificates",
    "jobs",
    "audit_logs",
)

# Statuses that turn EXPIRED once expiresAfter has passed.
EXPIRABLE = ("ACTIVE", "READY", "SUSPENDED")


def bar_key(values) -> str:
    """Encode values as `|a|b|` for "any equals" LIKE filters; empty list gives ''."""
    values = [str(v) for v in values if v not in (None, "")]
    return "|" + "|".join(values) + "|" if values else ""


class Store:
    """The sandbox state in SQLite, with the test CA and the clock offset kept in `meta`."""

    def __init__(self, path: str | None = None):
        self.path = path or ":memory:"
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        if self.path != ":memory:":
            self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)
        self.clock = Clock(float(self.get_meta("clock_offset_days", 0.0)))
        self._last_expiry_sweep: str | None = None
        self._count_cache: dict = {}
        self.ca = self._load_or_create_ca()

    # -- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def tx(self):
        """Hold the lock and run the block in one transaction (rolled back on error)."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def query(self, sql: str, params=()) -> list[sqlite3.Row]:
        """Run a read query under the lock and return all rows."""
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params=()) -> sqlite3.Row | None:
        """Run a read query under the lock and return the first row or None."""
        with self.lock:
            return self.conn.execute(sql, params).fetchone()

    def page(self, table: str, clause: str, params: list, order: str, limit: int, offset: int):
        """(total, rows) of one page: ids first through the indexes, then only those rows.

        `table`, `clause` and `order` come from the sandbox's own field tables, never from input.
        """
        sql_count = f"SELECT COUNT(*) FROM {table}{clause}"  # noqa: S608 - see docstring
        sql_ids = f"SELECT id FROM {table}{clause} ORDER BY {order} LIMIT ? OFFSET ?"  # noqa: S608
        with self.lock:
            # A client pages through one query many times; count it once per state of the data
            # (total_changes moves with every write on this, the only, connection).
            key = (sql_count, tuple(params), self.conn.total_changes)
            total = self._count_cache.get(key)
            if total is None:
                total = self.conn.execute(sql_count, params).fetchone()[0]
                self._count_cache = {key: total}
            ids = [r[0] for r in self.conn.execute(sql_ids, [*params, limit, offset])]
            if not ids:
                return total, []
            marks = ",".join("?" * len(ids))
            sql_rows = f"SELECT * FROM {table} WHERE id IN ({marks})"  # noqa: S608
            by_id = {r["id"]: r for r in self.conn.execute(sql_rows, ids)}
        return total, [by_id[i] for i in ids]

    def get_meta(self, key: str, default=None):
        """A JSON value from `meta`."""
        row = self.query_one("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(row["value"]) if row else default

    def set_meta(self, key: str, value) -> None:
        """Store a JSON value in `meta`."""
        with self.lock:
            self.conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value))
            )

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self.conn.close()

    # -- CA and clock -------------------------------------------------------------------------

    def _load_or_create_ca(self) -> ca_mod.CertificateAuthority:
        stored = self.get_meta("ca")
        if stored:
            return ca_mod.CertificateAuthority(**stored)
        authority = ca_mod.CertificateAuthority.create(self.clock.now())
        self.set_meta(
            "ca",
            {
                "root_pem": authority.root_pem,
                "root_key_pem": authority.root_key_pem,
                "int_pem": authority.intermediate_pem,
                "int_key_pem": authority.intermediate_key_pem,
            },
        )
        return authority

    def advance_clock(self, days: float) -> None:
        """Move sandbox time forward by `days` and persist the offset."""
        self.clock.offset_days += days
        self.set_meta("clock_offset_days", self.clock.offset_days)
        self._last_expiry_sweep = None

    def reset_clock(self) -> None:
        """Back to real time."""
        self.clock.offset_days = 0.0
        self.set_meta("clock_offset_days", 0.0)
        self._last_expiry_sweep = None

    def expire_due(self) -> None:
        """Mark issued certificates past expiresAfter as EXPIRED (at most once per second)."""
        now = fmt(self.clock.now())
        if self._last_expiry_sweep == now:
            return
        with self.lock:
            marks = ",".join("?" * len(EXPIRABLE))
            self.conn.execute(
                f"UPDATE certificates SET status = 'EXPIRED' "  # noqa: S608 - placeholders only
                f"WHERE status IN ({marks}) AND expires_after < ?",
                (*EXPIRABLE, now),
            )
            self._last_expiry_sweep = now

    # -- account ------------------------------------------------------------------------------

    def add_audit_log(self, activity: str, user: dict, comments: str) -> None:
        """Note a change an API user made, for GET /auditLogs (roles as ECS shows them)."""
        with self.tx() as conn:
            conn.execute(
                "INSERT INTO audit_logs (activity_date, activity, user_name, user_role, comments)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    fmt(self.clock.now()),
                    activity,
                    user["username"],
                    user["role"].capitalize(),
                    comments,
                ),
            )

    def wipe_account(self) -> None:
        """Delete clients, orgs, domains, inventory, custom fields, certificates, jobs and the
        audit log."""
        with self.tx() as conn:
            for table in ACCOUNT_TABLES:
                conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            conn.execute("DELETE FROM meta WHERE key = 'next_tracking_id'")

    def next_tracking_id(self) -> int:
        """Allocate a new trackingId (call inside a transaction)."""
        row = self.conn.execute("SELECT MAX(tracking_id) AS m FROM certificates").fetchone()
        floor = int(self.get_meta("next_tracking_id", 7000001))
        value = max(floor, (row["m"] or 0) + 1)
        self.set_meta("next_tracking_id", value + 1)
        return value

    # -- users --------------------------------------------------------------------------------

    def put_user(
        self, username: str, api_key: str, role: str, require_cert: bool, fingerprint=None
    ) -> None:
        """Create or replace an API user."""
        with self.lock:
            self.conn.execute(
                "INSERT OR REPLACE INTO users VALUES (?, ?, ?, ?, ?)",
                (username, api_key, role, int(require_cert), fingerprint),
            )

    def get_user(self, username: str) -> sqlite3.Row | None:
        """One API user by name."""
        return self.query_one("SELECT * FROM users WHERE username = ?", (username,))

    def delete_users_except(self, keep: list[str]) -> None:
        """Remove every API user not named in `keep`."""
        with self.lock:
            marks = ",".join("?" * len(keep)) or "''"
            self.conn.execute(
                f"DELETE FROM users WHERE username NOT IN ({marks})",  # noqa: S608
                keep,
            )

    # -- certificates -------------------------------------------------------------------------

    def certificate_pem(self, row: sqlite3.Row) -> tuple[str | None, str | None]:
        """The PEM and CSR of a certificate, signed now (and kept) if it was seeded lazily.

        Signing happens under the lock and re-reads the row first, so two first reads at once
        still see one and the same certificate. An order that was never issued (no serial: still
        pending, declined, waiting for a quorum, not applicable) has no certificate to sign.
        """
        if row["cert_pem"] or not row["serial"] or not row["issue_dt"]:
            if row["cert_pem"] or row["csr_pem"] or row["is_third_party"]:
                return row["cert_pem"], row["csr_pem"]
            return None, self.order_csr(row)
        with self.lock:
            row = self.conn.execute(
                "SELECT * FROM certificates WHERE id = ?", (row["id"],)
            ).fetchone()
            if row["cert_pem"]:
                return row["cert_pem"], row["csr_pem"]
            key = ca_mod.cached_key(row["key_type"] or "RSA", row["key_size"] or 2048)
            subject = x509.Name.from_rfc4514_string(row["dn"])
            sans = [s["value"] for s in json.loads(row["san_json"])]
            issued = self.ca.sign(
                key.public_key(),
                subject=subject,
                sans=sans,
                not_before=parse_datetime(row["issue_dt"]),
                not_after=parse_datetime(row["expires_after"]),
                serial=int(row["serial"], 16),
                eku=row["eku"],
                cert_type=row["cert_type"],
            )
            csr = self.order_csr(row)
            self.conn.execute(
                "UPDATE certificates SET cert_pem = ?, csr_pem = ? WHERE id = ?",
                (issued.pem, csr, row["id"]),
            )
        return issued.pem, csr

    def order_csr(self, row: sqlite3.Row) -> str:
        """The CSR of an order, made (and kept) for one seeded without it, with the key its
        certificate is or will be signed with: every order ECS holds came with a CSR, a pending
        one as much as an issued one, and its detail shows it (`csr`)."""
        with self.lock:
            row = self.conn.execute(
                "SELECT * FROM certificates WHERE id = ?", (row["id"],)
            ).fetchone()
            if row["csr_pem"]:
                return row["csr_pem"]
            key = ca_mod.cached_key(row["key_type"] or "RSA", row["key_size"] or 2048)
            subject = x509.Name.from_rfc4514_string(row["dn"])
            sans = [s["value"] for s in json.loads(row["san_json"])]
            common_name = ca_mod.csr_common_name_from_name(subject) or sans[0]
            csr = ca_mod.make_csr(common_name, key, sans)[0]
            self.conn.execute("UPDATE certificates SET csr_pem = ? WHERE id = ?", (csr, row["id"]))
        return csr
