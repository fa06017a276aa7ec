"""Rows for every list, inserted in bulk: the scaling benchmark's instances (bench/scaling.py)
and the populated database the query-plan tests explain their queries on.

``fill(n)`` writes n rows of every list (certificates with their names, CSRs with theirs,
orders with theirs, organizations, domains, users, audit events, then n failed sign-ins) and the
counters CertDesk keeps beside them, then ANALYZEs, so that the planner sees realistic
statistics.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

PASSWORD = "bench-password-1"
ISSUERS = [
    "Entrust Certification Authority - L1K",
    "Entrust OV TLS Issuing RSA CA 1",
    "Entrust DV TLS Issuing RSA CA 1",
    "Internal Issuing CA",
    "Let's Encrypt R11",
]
SOURCES = ["imported", "entrust", "entrust_import"]
DOMAIN_STATUSES = ["APPROVED"] * 12 + ["PENDING", "EXPIRED", "EXPIRING", "RE_VERIFICATION"]
METHODS = ["DNS", "WEB_SERVER", "EMAIL", "MANUAL"]
ORG_STATUSES = ["APPROVED"] * 6 + ["PENDING", "EXPIRED", "DECLINED"]
ORDER_STATUSES = [("ACTIVE", "issued")] * 11 + [
    ("EXPIRED", "expired"),
    ("EXPIRED", "expired"),
    ("REVOKED", "revoked"),
    ("PENDING", "pending"),
    ("SUSPENDED", "suspended"),
    ("RENEWED", "replaced"),
    ("DECLINED", "declined"),
]
ORDER_PRODUCTS = ["STANDARD_SSL", "ADVANTAGE_SSL", "UC_SSL", "EV_SSL", "WILDCARD_SSL"]
REQUESTERS = ["Jane Smith", "Omar Haddad", "Li Wei", "Ann Admin"]
AUDIT_ACTIONS = ["certificate.add", "csr.create", "catalog.sync", "user.create", "settings.update"]


def _batched(rows, size=5000):
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def fill(n: int, quiet: bool = False) -> None:
    """N rows of every list, inserted in batches (the app context is open on the database)."""
    from sqlalchemy import insert, text, update

    from webapp.audit.models import AuditEvent, AuditHead
    from webapp.auth import service as auth
    from webapp.auth.models import User
    from webapp.catalog.models import CatalogDomain, CatalogOrganization, CatalogProduct
    from webapp.certificates import service as certificate_service
    from webapp.certificates.models import Certificate, CertificateName
    from webapp.credentials.models import EcsCredential
    from webapp.csrs import models as csr_models
    from webapp.csrs.models import Csr
    from webapp.extensions import db
    from webapp.jobs.models import Job
    from webapp.keys.models import PrivateKey

    rng = random.Random(5)
    now = datetime.now(UTC)
    started = time.perf_counter()

    def put(model, rows):
        # Only the columns the schema has: the benchmark fills older versions too.
        columns = set(model.__table__.c.keys())
        for batch in _batched(rows):
            batch = [{k: v for k, v in row.items() if k in columns} for row in batch]
            db.session.execute(insert(model), batch)

    auth.create_user(None, "bench", PASSWORD, "admin", full_name="Bench Admin")
    put(
        User,
        (
            {
                "username": f"user{i:06d}",
                "full_name": f"User {i}",
                "email": f"user{i}@example.com",
                "password_hash": "!",  # no password: these accounts cannot sign in
                "role": ("admin", "operator", "auditor")[i % 3],
                "active": i % 50 != 0,
                "session_version": 1,
                "created_at": now - timedelta(minutes=i),
                "last_login_at": None if i % 4 else now - timedelta(hours=i % 500),
            }
            for i in range(1, n)
        ),
    )
    put(
        PrivateKey,
        (
            {
                "id": k,
                "key_type": "RSA",
                "key_size": 2048,
                "label": "RSA 2048",
                "public_key_id": f"{k:064x}",
                "sealed_pem": "v1:bench-placeholder",  # never opened by a list
                "origin": "imported",
                "created_at": now,
            }
            for k in range(1, n // 10 + 1)
        ),
    )

    def certificates():
        for i in range(1, n + 1):
            host = f"host{i}.dept{i % 97}.example{i % 13}.com"
            not_after = now + timedelta(days=rng.randint(-200, 500), seconds=rng.randint(0, 86400))
            yield {
                "id": i,
                "fingerprint_sha256": f"{rng.getrandbits(256):064x}",
                "fingerprint_sha1": f"{rng.getrandbits(160):040x}",
                "serial_hex": f"{rng.getrandbits(128):x}",
                "common_name": host,
                "subject": f"CN={host},O=Example",
                "sans": f"{host},www.{host}",
                "issuer": "CN=" + ISSUERS[i % len(ISSUERS)],
                "issuer_cn": ISSUERS[i % len(ISSUERS)],
                # Valid for a year at most, begun by now, but for a few whose validity is
                # still to come (as an imported certificate's can be).
                "not_before": now + timedelta(days=2)
                if i % 700 == 0
                else min(not_after - timedelta(days=365), now - timedelta(days=1)),
                "not_after": not_after,
                "key_type": "RSA",
                "key_size": 2048,
                "key_label": "RSA 2048",
                "signature_algorithm": "sha256WithRSAEncryption",
                "public_key_id": f"{rng.getrandbits(256):064x}",
                "is_ca": i % 1000 == 0,
                "source": SOURCES[i % 3],
                "pem": "-----BEGIN CERTIFICATE-----\n(bench)\n-----END CERTIFICATE-----\n",
                "chain_pem": "",
                "revoked_at": now - timedelta(days=i % 30) if i % 500 == 0 else None,
                "suspended_at": now - timedelta(days=i % 20) if i % 400 == 200 else None,
                "tracking_id": i if i % 3 else None,
                "private_key_id": i // 20 if i % 20 == 0 else None,
                "csr_id": None,
                "created_by_id": None,
                "created_at": now - timedelta(seconds=i),
            }

    put(Certificate, certificates())
    put(
        CertificateName,
        (
            {"certificate_id": i, "kind": "DNS", "value": v, "reversed": v[::-1]}
            for i in range(1, n + 1)
            for v in (
                f"host{i}.dept{i % 97}.example{i % 13}.com",
                f"www.host{i}.dept{i % 97}.example{i % 13}.com",
            )
        ),
    )
    put(
        Csr,
        (
            {
                "id": i,
                "common_name": f"host{i}.csr{i % 89}.example.org",
                "subject": f"CN=host{i}.csr{i % 89}.example.org",
                "sans": f"host{i}.csr{i % 89}.example.org,alt{i}.example.org",
                "key_label": "RSA 2048",
                "signature_algorithm": "sha256WithRSAEncryption",
                "public_key_id": f"{rng.getrandbits(256):064x}",
                "pem": "-----BEGIN CERTIFICATE REQUEST-----\n(bench)\n",
                "source": ("generated", "imported")[i % 2],
                "private_key_id": (i % (n // 10)) + 1 if i % 2 == 0 else None,
                "created_by_id": 1,
                "created_at": now - timedelta(seconds=i),
            }
            for i in range(1, n + 1)
        ),
    )
    if hasattr(csr_models, "CsrName"):
        put(
            csr_models.CsrName,
            (
                {"csr_id": i, "value": v, "reversed": v[::-1]}
                for i in range(1, n + 1)
                for v in (f"host{i}.csr{i % 89}.example.org", f"alt{i}.example.org")
            ),
        )
    for cid, name in ((1, "Main account"), (2, "Second account")):
        db.session.execute(
            insert(EcsCredential).values(
                id=cid,
                name=name,
                api_user="bench",
                api_key_sealed="v1:bench-placeholder",  # never opened: the credential is off
                base_url="http://127.0.0.1:9/",
                enabled=False,
                organizations_synced_at=now,
                domains_synced_at=now,
                products_synced_at=now,
                created_at=now,
                updated_at=now,
            )
        )

    _fill_orders(n, put, rng, now)

    def mirrored(i):
        return {
            "credential_id": 2 if i % 20 == 0 else 1,
            "first_seen_at": now - timedelta(days=30),
            "updated_at": now - timedelta(days=1),
            "gone_at": now - timedelta(days=i % 9) if i % 50 == 0 else None,
            "gone": i % 50 == 0,
        }

    def expiry(i, every=7):
        return None if i % every == 0 else now + timedelta(days=rng.randint(-60, 800))

    put(
        CatalogOrganization,
        (
            {
                **mirrored(i),
                "kind": "client" if i % 100 == 0 else "organization",
                "client_id": i // 100 + 1,
                "client_name": f"Client {i // 100 + 1:05d} Group",
                "name": _org_name(i),
                "name_key": _org_name(i).lower(),
                "client_key": f"client {i // 100 + 1:05d} group",
                "verification_status": ORG_STATUSES[i % len(ORG_STATUSES)],
                "ov_expiry": expiry(i),
                "ev_status": ("APPROVED", "", "PENDING")[i % 3],
                "ev_expiry": expiry(i, 3),
            }
            for i in range(1, n + 1)
        ),
    )
    put(
        CatalogDomain,
        (
            {
                **mirrored(i),
                "client_id": i % 50 + 1,
                "client_name": f"Client {i % 50 + 1:05d} Group",
                "name": f"host{i}.zone{i % 97}.example{i % 13}.com",
                "name_reversed": f"host{i}.zone{i % 97}.example{i % 13}.com"[::-1],
                "verification_status": DOMAIN_STATUSES[i % len(DOMAIN_STATUSES)],
                "verification_method": METHODS[i % len(METHODS)],
                "ov_eligible": i % 3 != 0,
                "ev_eligible": i % 5 == 0,
                "ov_expiry": expiry(i),
                "ev_expiry": expiry(i, 2),
            }
            for i in range(1, n + 1)
        ),
    )
    put(
        CatalogProduct,
        (
            {
                **mirrored(i),
                "credential_id": cred,
                "gone_at": None,
                "gone": False,
                "product_type": f"PRODUCT_TYPE_{i:02d}",
                "consumption_type": "UNLIMITED" if i % 7 == 0 else "LIMITED",
                "total_count": 100 * i,
                "used_count": 60 * i,
                "remaining_count": 40 * i if i % 4 else 0,
            }
            for cred in (1, 2)
            for i in range(1, 21)
        ),
    )

    # Background jobs: a status check every 15 minutes, N/10 of them.
    jobs = n // 10
    put(
        Job,
        (
            {
                "kind": "orders.poll",
                "title": "Check Order Status (scheduled)",
                "state": "succeeded" if i % 50 else "failed",
                "progress": 1,
                "total": 1,
                "created_at": now - timedelta(minutes=15 * (jobs - i)),
                "finished_at": now - timedelta(minutes=15 * (jobs - i)),
            }
            for i in range(1, jobs + 1)
        ),
    )

    # The audit trail: N events of day-to-day work, then N failed sign-ins (the most recent).
    base = db.session.get(AuditHead, 1).seq  # creating the bench user wrote the first events

    def events():
        for seq in range(base + 1, base + 2 * n + 1):
            failed = seq > base + n
            yield {
                "seq": seq,
                "at": now - timedelta(seconds=base + 2 * n - seq),
                "actor_id": None if failed else 1,
                "actor_name": "mallory" if failed else ("bench", "alice", "bob")[seq % 3],
                "action": "auth.login_failed" if failed else AUDIT_ACTIONS[seq % 5],
                "object_type": "user" if failed else "certificate",
                "object_id": "mallory" if failed else str(seq % (n // 2)),
                "outcome": "failure" if failed else "success",
                "detail": "{}",
                "address": "192.0.2.7",
                "prev_hash": "0" * 64,
                "hash": f"{seq:064x}",  # a bench trail: not a valid chain
            }

    put(AuditEvent, events())
    db.session.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(seq=base + 2 * n, last_hash=f"{base + 2 * n:064x}")
    )
    db.session.commit()
    if hasattr(certificate_service, "recount_expiry_days"):
        certificate_service.recount_expiry_days()
    _after_fill(db)
    with db.engine.connect() as conn:
        if db.engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        else:
            conn.execute(text("ANALYZE"))
            conn.commit()
    if not quiet:
        print(f"  filled {n:,} rows per list in {time.perf_counter() - started:.1f} s", flush=True)


def _order_fields(i: int) -> dict:
    """Order i's placement and the fields its search texts come from."""
    placement = "unknown" if i % 2000 == 7 else "not_placed" if i % 3000 == 11 else "placed"
    placed = placement == "placed"
    host = f"host{i}.shop{i % 89}.example{i % 11}.net"
    return {
        "placement": placement,
        "ca_order_id": str(5_000_000 + i) if placed else None,
        "common_name": host,
        "sans": f"{host},www.{host}",
        "requester_name": REQUESTERS[i % len(REQUESTERS)],
        "requester_email": "",
        "serial": f"{i * 0x9E3779B97F4A7C15 % (1 << 120):x}" if placed else "",
        "friendly_name": "",
    }


def _fill_orders(n: int, put, rng, now) -> None:
    """N orders of the two credentials (SSL > Entrust), with the names the search finds them by;
    one in 2,000 waits for a lost answer, one in 3,000 was not placed."""
    try:
        from webapp.orders import models as order_models
        from webapp.orders import records
    except ImportError:  # a version before orders
        return

    def orders():
        for i in range(1, n + 1):
            values = _order_fields(i)
            tracking = values["ca_order_id"]
            status, phase = ORDER_STATUSES[i % len(ORDER_STATUSES)] if tracking else ("", "")
            expires = now + timedelta(days=rng.randint(-300, 400), seconds=rng.randint(0, 86400))
            values |= {
                "id": i,
                "ca": "entrust",
                "credential_id": 2 if i % 10 == 0 else 1,
                "ca_order_number": int(tracking) if tracking else None,
                "request_id": f"certdesk:bench:{i}",
                "origin": "imported" if i % 4 else "placed",
                "status": status,
                "phase": phase,
                "third_party": False,
                "product": ORDER_PRODUCTS[i % len(ORDER_PRODUCTS)],
                "organization": _org_name(i % 500 + 1),
                "issued_at": expires - timedelta(days=397) if tracking else None,
                "expires_at": expires if tracking else None,
                "status_changed_at": now,
                "last_checked_at": now - timedelta(minutes=rng.randint(0, 100_000)),
                "next_check_at": now if phase == "pending" or not tracking else None,
                "check_interval_minutes": 15,
                "attempted_at": None if tracking else now - timedelta(hours=1),
                "message": "",
                "details": "{}",
                "request": "{}",
                "created_at": now - timedelta(seconds=i),
                "updated_at": now,
            }
            values["search_text"] = records.search_text(values)
            yield values

    put(order_models.Order, orders())
    if hasattr(order_models, "OrderName"):
        put(
            order_models.OrderName,
            (
                name
                for i in range(1, n + 1)
                for name in records.name_rows(i, records.search_text(_order_fields(i)))
            ),
        )


def _org_name(i: int) -> str:
    return f"Org {i:06d} Holdings" if i % 100 else f"Client {i // 100 + 1:05d} Group"


def _after_fill(db) -> None:
    """Bring what CertDesk keeps beside the rows up to date after the bulk inserts."""
    if db.engine.dialect.name == "postgresql":
        # Bulk inserts with explicit ids leave the sequences behind.
        from sqlalchemy import text

        for table in ("certificate", "csr", "private_key", "ecs_credential", "ca_order"):
            db.session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) "  # noqa: S608
                    f"FROM {table}"
                )
            )
        db.session.commit()
