"""Shared constants and JSON builders for the ECS client unit tests."""

from __future__ import annotations

BASE = "https://ecs.test/enterprise/v2/"
USER = "api-user"
KEY = "s3cr3t-API-key-value"


def url(path: str) -> str:
    return BASE + path.lstrip("/")


def cert_json(tid: int, **extra) -> dict:
    data = {
        "trackingId": tid,
        "dn": f"CN=host{tid}.example.com",
        "serialNumber": f"{tid:X}",
        "expiresAfter": "2027-01-01T23:59:59Z",
        "signingAlg": "SHA-2",
        "eku": "SERVER_AND_CLIENT_AUTH",
        "status": "ACTIVE",
        "uri": f"/enterprise/v2/certificates/{tid}",
    }
    data.update(extra)
    return data


def page(key: str, items: list, offset: int, limit: int, total: int) -> dict:
    return {
        "summary": {
            "timestamp": "2026-11-27T10:00:00.123Z",
            "elapsed": 12,
            "offset": offset,
            "limit": limit,
            "total": total,
            "sort": "trackingId:asc",
        },
        key: items,
    }
