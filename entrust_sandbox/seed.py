"""Deterministic seed data: an account with clients, organizations, OUs, domains in every
verification status, inventory (FLEX included), custom fields, and N existing certificates.

The same `seed` value gives the same data (relative to the sandbox clock at seeding time).
Certificate rows go in with one executemany in one transaction; their PEMs are signed lazily on
first read, which is what lets 100,000 certificates seed in seconds. About one in 200 rows is a
third-party certificate (trackingId 0), whose PEM is made now because its thumbprint is its key.
"""

from __future__ import annotations

import json
import random
from datetime import timedelta

from . import ca as ca_mod
from .clock import fmt
from .orders import RENEW_MIN_AGE, date_vetting, insert_domain
from .store import bar_key

CLIENTS = [
    {
        "clientId": 1,
        "clientName": "CertDesk Demo Corp",
        "friendlyClientName": "Demo Corp",
        "verificationStatus": "APPROVED",
        "evVerificationStatus": "APPROVED",
        "address": {
            "street1": "1000 Innovation Drive",
            "city": "Ottawa",
            "stateOrProvince": "Ontario",
            "zipOrPostalCode": "K2K 3E7",
            "country": "CA",
        },
        "authContact": {
            "name": "Jane Smith",
            "position": "IT Director",
            "phone": "555-555-0100",
            "emailAddress": "jane.smith@example.com",
        },
    },
    {
        "clientId": 2,
        "clientName": "Example Subsidiary Ltd",
        "friendlyClientName": "Subsidiary",
        "verificationStatus": "APPROVED",
        "address": {"street1": "1 Main Street", "city": "Leeds", "country": "GB"},
        "authContact": {"name": "Sam Jones", "emailAddress": "sam.jones@example.org"},
    },
    {
        "clientId": 3,
        "clientName": "Pending Holdings Inc",
        "friendlyClientName": "Pending Holdings",
        "verificationStatus": "PENDING",
        "address": {"city": "Austin", "stateOrProvince": "Texas", "country": "US"},
    },
]
ORGANIZATIONS = [
    (1, "CertDesk Demo Corp", "APPROVED"),
    (1, "CertDesk Labs", "APPROVED"),
    (1, "Old Name Inc", "EXPIRED"),
    (1, "Future Ventures", "PENDING"),
    (2, "Example Subsidiary Ltd", "APPROVED"),
    (3, "Pending Holdings Inc", "PENDING"),
]
ORG_UNITS = [
    (1, "IT", "APPROVED"),
    (1, "Marketing", "APPROVED"),
    (1, "Legacy Systems", "DECLINED"),
    (2, "Operations", "APPROVED"),
]
# (client, domain, method, status, evEligible)
DOMAINS = [
    (1, "example.com", "DNS", "APPROVED", True),
    (1, "example.org", "WEB_SERVER", "APPROVED", False),
    (1, "example.net", "DNS", "RE_VERIFICATION", False),
    (1, "expiring.example", "EMAIL", "EXPIRING", False),
    (1, "pending.example", "DNS", "INITIAL_VERIFICATION", False),
    (1, "declined.example", "MANUAL", "DECLINED", False),
    (1, "cancelled.example", "EMAIL", "CANCELLED", False),
    (1, "expired.example", "DNS", "EXPIRED", False),
    (2, "subsidiary.example", "DNS", "APPROVED", False),
    (2, "example.com", "DNS", "APPROVED", False),
]
# (productType, remaining, consumptionType)
INVENTORY = [
    ("STANDARD_SSL", 50, None),
    ("ADVANTAGE_SSL", 25, None),
    ("UC_SSL", 10, None),
    ("EV_SSL", 10, None),
    ("WILDCARD_SSL", 10, None),
    ("PRIVATE_SSL", 0, "UNLIMITED"),
    ("PD_SSL", 0, None),
    ("CODE_SIGNING", 5, None),
    ("EV_CODE_SIGNING", 2, None),
    ("SMIME_ENT", 20, None),
    ("CDS_INDIVIDUAL", 5, None),
    ("FLEX", 100, None),
    ("CMS_1_ADMIN", 5, None),
]
STATUS_WEIGHTS = [
    ("ACTIVE", 52),
    ("EXPIRED", 15),
    ("REVOKED", 7),
    ("PENDING", 4),
    ("SUSPENDED", 3),
    ("RENEWED", 5),
    ("REISSUED", 4),
    ("DECLINED", 2),
    ("APPROVED", 1),
    ("DEACTIVATED", 2),
    ("READY", 2),
    ("PENDING_QUORUM", 1),
    ("NA", 1),
    ("RENEWING", 1),
]
TYPE_WEIGHTS = [
    ("STANDARD_SSL", 38),
    ("ADVANTAGE_SSL", 15),
    ("UC_SSL", 10),
    ("EV_SSL", 8),
    ("WILDCARD_SSL", 10),
    ("PRIVATE_SSL", 7),
    ("CODE_SIGNING", 4),
    ("SMIME_ENT", 4),
    ("CDS_INDIVIDUAL", 4),
]
KEYS = [(("RSA", 2048), 70), (("RSA", 3072), 10), (("RSA", 4096), 8), (("EC", 256), 12)]
REQUESTERS = [
    ("Jane Smith", "jane.smith@example.com", "555-555-0100"),
    ("Omar Haddad", "omar.haddad@example.com", "555-555-0101"),
    ("Li Wei", "li.wei@example.org", "555-555-0102"),
]
HOSTS = ("www", "api", "mail", "portal", "vpn", "shop", "intranet", "app", "cdn", "auth")
UNISSUED = ("PENDING", "APPROVED", "DECLINED", "PENDING_QUORUM", "NA")
CERT_COLUMNS = (
    "tracking_id",
    "status",
    "dn",
    "serial",
    "san_json",
    "san_text",
    "san_key",
    "issue_dt",
    "expires_after",
    "signing_alg",
    "eku",
    "key_size",
    "key_type",
    "org",
    "ou_json",
    "ou_key",
    "cert_type",
    "tracking_json",
    "tracking_info",
    "requester_name",
    "requester_email",
    "requester_phone",
    "emails_key",
    "deactivated",
    "deactivated_on",
    "domain_used",
    "is_third_party",
    "thumbprint",
    "client_id",
    "cert_pem",
    "creator_name",
    "decline_reason",
    "pickup_token",
    "inventory_pool",
    "created_at",
)
FIRST_TRACKING_ID = 5000001


def _custom_fields(api_mandatory=()) -> dict:
    """The account's custom fields: four enabled, "Application" mandatory on Entrust's own
    request form only (EFORM), so API requests without custom fields are accepted; the fields
    in ``api_mandatory`` are made mandatory for the API as well (BOTH)."""
    fields = {}
    for i in range(1, 16):
        fields[f"text{i}"] = {"enabled": False, "eformVisible": False, "mandatory": "NOT_MANDATORY"}
    for kind in ("number", "date", "email", "dropdown"):
        for i in range(1, 6):
            fields[f"{kind}{i}"] = {
                "enabled": False,
                "eformVisible": False,
                "mandatory": "NOT_MANDATORY",
            }
    fields["text1"] = {
        "enabled": True,
        "label": "Cost center",
        "eformVisible": True,
        "mandatory": "NOT_MANDATORY",
        "order": 1,
        "multiline": False,
    }
    fields["text2"] = {
        "enabled": True,
        "label": "Application",
        "eformVisible": True,
        "mandatory": "EFORM",
        "order": 2,
        "multiline": False,
    }
    fields["dropdown1"] = {
        "enabled": True,
        "label": "Environment",
        "eformVisible": True,
        "mandatory": "NOT_MANDATORY",
        "order": 3,
        "options": "production,staging,development",
    }
    fields["date1"] = {"enabled": True, "label": "Review date", "mandatory": "NOT_MANDATORY"}
    for name in api_mandatory:
        fields[name] = {**fields[name], "enabled": True, "mandatory": "BOTH"}
        fields[name].setdefault("label", name)
    return fields


def _weighted(rng: random.Random, table, n: int) -> list:
    values, weights = zip(*table, strict=True)
    return rng.choices(values, weights=weights, k=n)


def seed_account(store, certificates: int, seed=1, api_mandatory=()) -> dict:
    """Replace the account with deterministic data; return counts of what was made.
    ``api_mandatory``: custom fields (such as "text2") every API order must fill in."""
    rng = random.Random(f"entrust-sandbox:{seed}")
    # Anchor seeded times to midnight, so seeding twice on one day gives identical data.
    now = store.clock.now().replace(hour=0, minute=0, second=0)
    store.wipe_account()
    rows, type_counts = _certificate_rows(store, rng, certificates, now)
    with store.tx() as conn:
        for client in CLIENTS:
            client = dict(client)
            # A client's vetting dates carry milliseconds (certificate and domain times do not).
            date_vetting(client, client, now)
            conn.execute(
                "INSERT INTO clients VALUES (?, ?)", (client["clientId"], json.dumps(client))
            )
        conn.executemany(
            "INSERT INTO organizations (client_id, name, verification_status) VALUES (?, ?, ?)",
            ORGANIZATIONS,
        )
        conn.executemany(
            "INSERT INTO org_units (client_id, name, verification_status) VALUES (?, ?, ?)",
            ORG_UNITS,
        )
        for client_id, name, method, status, ev in DOMAINS:
            dcv_value = f"{rng.getrandbits(128):032X}"
            insert_domain(conn, client_id, name, method, status, ev, now=now, dcv_value=dcv_value)
        for product, remaining, consumption in INVENTORY:
            used = type_counts.get(product, 0)
            conn.execute(
                "INSERT INTO inventories VALUES (?, ?, ?, ?, ?)",
                (product, used + remaining, remaining, used, consumption),
            )
        for name, body in _custom_fields(api_mandatory).items():
            conn.execute("INSERT INTO custom_fields VALUES (?, ?)", (name, json.dumps(body)))
        marks = ", ".join("?" * len(CERT_COLUMNS))
        conn.executemany(
            f"INSERT INTO certificates ({', '.join(CERT_COLUMNS)}) VALUES ({marks})",  # noqa: S608
            rows,
        )
        conn.execute(
            "INSERT OR REPLACE INTO meta VALUES ('next_tracking_id', ?)",
            (json.dumps(FIRST_TRACKING_ID + certificates + 1000),),
        )
    store._last_expiry_sweep = None
    return {
        "clients": len(CLIENTS),
        "organizations": len(ORGANIZATIONS),
        "domains": len(DOMAINS),
        "certificates": len(rows),
        "thirdParty": sum(1 for r in rows if r[26]),
    }


def _certificate_rows(store, rng: random.Random, n: int, now) -> tuple[list[tuple], dict]:
    statuses = _weighted(rng, STATUS_WEIGHTS, n)
    types = _weighted(rng, TYPE_WEIGHTS, n)
    keys = _weighted(rng, KEYS, n)
    domains1 = ["example.com", "example.org", "example.net", "expiring.example"]
    rows: list[tuple] = []
    type_counts: dict[str, int] = {}
    created = fmt(now - timedelta(days=2))
    for i in range(n):
        status, cert_type, (key_type, key_size) = statuses[i], types[i], keys[i]
        third_party = i % 200 == 199
        client_id = 2 if i % 10 == 9 and cert_type in ("STANDARD_SSL", "ADVANTAGE_SSL") else 1
        domain = "subsidiary.example" if client_id == 2 else domains1[i % len(domains1)]
        if cert_type == "EV_SSL":
            domain = "example.com"  # the one EV-eligible domain: its orders can be reissued
        org = "Example Subsidiary Ltd" if client_id == 2 else "CertDesk Demo Corp"
        if third_party:
            cn = f"{HOSTS[i % len(HOSTS)]}{i}.elsewhere.example"
            sans = [cn]
        elif cert_type == "WILDCARD_SSL":
            cn = f"*.{domain}"
            sans = [cn, domain]
        elif cert_type in ("CODE_SIGNING", "CDS_INDIVIDUAL", "SMIME_ENT"):
            cn = org if cert_type == "CODE_SIGNING" else f"{REQUESTERS[i % 3][0]}"
            sans = [REQUESTERS[i % 3][1]] if cert_type == "SMIME_ENT" else []
            domain = None
        else:
            cn = f"{HOSTS[i % len(HOSTS)]}{i}.{domain}"
            sans = [cn] + ([f"alt{i}.{domain}"] if cert_type in ("ADVANTAGE_SSL", "UC_SSL") else [])
        ssl = cert_type.endswith("_SSL")
        place = "C=CA,ST=Ontario,L=Ottawa" if client_id == 1 else "C=GB,L=Leeds"
        ou = ["IT"] if client_id == 1 and i % 7 == 0 else []
        ou_part = f",OU={ou[0]}" if ou else ""
        dn = f"{place},O={org}{ou_part},CN={cn}"
        if status == "EXPIRED":
            issued = now - timedelta(days=400 + rng.randrange(800), seconds=rng.randrange(86400))
        else:
            issued = now - timedelta(days=rng.randrange(1, 390), seconds=rng.randrange(86400))
        if status == "RENEWED":  # a renewal waits until the certificate is 30 days old
            issued = min(issued, now - RENEW_MIN_AGE - timedelta(seconds=i % 86400))
        expires = issued + timedelta(days=397)
        serial_int = rng.getrandbits(128) >> (8 if i % 16 == 0 else 0)
        serial = ca_mod.serial_hex(serial_int or 1)
        requester = REQUESTERS[i % len(REQUESTERS)]
        tracking = {
            "trackingInfo": f"SEED-{i:06d}",
            "requesterName": requester[0],
            "requesterEmail": requester[1],
            "requesterPhone": requester[2],
            "customFields": {"text1": f"CC-{100 + i % 20}"},
        }
        unissued = status in UNISSUED
        thumb, pem, tracking_id = None, None, FIRST_TRACKING_ID + i
        if third_party:
            status = "EXPIRED" if expires < now else "ACTIVE"
            pem = ca_mod.third_party_certificate(cn, serial_int or 1, issued, expires)
            thumb = ca_mod.thumbprint(ca_mod.load_cert(pem))
            tracking_id, cert_type, tracking = 0, "", {}
            key_type, key_size = "EC", 256
            ssl, unissued = True, False
            dn = f"CN={cn}"
            org, ou = None, []
        elif not unissued:
            type_counts[cert_type] = type_counts.get(cert_type, 0) + 1
        san_values = [{"type": "rfc822Name" if "@" in s else "dNSName", "value": s} for s in sans]
        rows.append(
            (
                tracking_id,
                status,
                dn,
                "" if unissued else serial,
                json.dumps(san_values),
                ", ".join(sans),
                bar_key(sans),
                None if unissued else fmt(issued),
                fmt(expires),
                "SHA-2",
                "SERVER_AND_CLIENT_AUTH" if ssl and not third_party else None,
                key_size,
                key_type,
                org,
                json.dumps(ou),
                bar_key(ou),
                cert_type,
                json.dumps(tracking),
                tracking.get("trackingInfo"),
                tracking.get("requesterName"),
                tracking.get("requesterEmail"),
                tracking.get("requesterPhone"),
                "",
                1 if status == "DEACTIVATED" else 0,
                # deactivated a month after issue, or today for one issued since
                fmt(min(issued + timedelta(days=30), now)) if status == "DEACTIVATED" else None,
                domain if ssl and not third_party else None,
                1 if third_party else 0,
                thumb,
                client_id,
                pem,
                "seed",
                "Not approved by the security team" if status == "DECLINED" else None,
                f"{rng.getrandbits(64):016X}",
                None if third_party or unissued else cert_type,
                created,
            )
        )
    return rows, type_counts
