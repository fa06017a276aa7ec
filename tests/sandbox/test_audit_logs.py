"""GET /auditLogs: every change an API user makes is logged, and the log pages, filters, sorts and
selects fields with the same grammar as the certificate list."""

from __future__ import annotations

from . import schema
from .conftest import Api, assert_error

FIELDS = {"activityDate", "activity", "userName", "userRole", "comments"}


def _logs(api, **params) -> dict:
    response = api.get("auditLogs", params=params)
    assert response.status_code == 200, response.text
    schema.check(response, "/auditLogs", "GET")
    return response.json()


def _changes(api, sb) -> dict:
    """Orders, an approval, a revocation, a reissue, a domain: what each made (tracking IDs)."""
    issued = api.order("www.example.com").json()["trackingId"]
    queued = api.order("vpn.example.com", queueForApproval=True).json()["trackingId"]
    assert api.patch(f"certificates/{queued}", {"operation": "APPROVE"}).status_code == 201
    revoked = api.post(f"certificates/{queued}/revocations", {"crlReason": "keyCompromise"})
    assert revoked.status_code == 200, revoked.text
    reissue = api.post(f"certificates/{issued}/reissues", {}).json()["trackingId"]
    client_id = api.get("clients").json()["clients"][0]["clientId"]
    added = api.post(
        f"clients/{client_id}/domains", {"domainName": "Audit.Example", "verificationMethod": "DNS"}
    )
    assert added.status_code == 202, added.text
    return {"issued": issued, "queued": queued, "reissue": reissue, "client": client_id}


def test_changes_are_logged_in_order_with_their_user(api, sb):
    assert _logs(api)["summary"]["total"] == 0  # the seeded account starts with no log
    made = _changes(api, sb)
    # Refused and read-only requests change nothing, and log nothing.
    assert_error(api.patch(f"certificates/{made['queued']}", {"operation": "APPROVE"}), 400)
    assert api.get(f"certificates/{made['issued']}").status_code == 200

    body = _logs(api)
    summary, logs = body["summary"], body["auditLogs"]
    assert summary["total"] == 6 and summary["sort"] == "activityDate:asc"
    assert [(e["activity"], e["comments"]) for e in logs] == [
        ("Certificate requested", f"Tracking ID {made['issued']}, STANDARD_SSL"),
        ("Certificate requested", f"Tracking ID {made['queued']}, STANDARD_SSL"),
        ("Certificate approved", f"Tracking ID {made['queued']}"),
        ("Certificate revoked", f"Tracking ID {made['queued']}, reason keyCompromise"),
        (
            "Certificate reissued",
            f"Tracking ID {made['issued']}, new tracking ID {made['reissue']}",
        ),
        ("Domain added", f"Client ID {made['client']}, audit.example"),
    ]
    assert all(set(e) == FIELDS for e in logs)
    assert {(e["userName"], e["userRole"]) for e in logs} == {(sb.api_user, "Administrator")}
    assert all(e["activityDate"].endswith("Z") for e in logs)

    sb.reset()
    sb.seed(certificates=5, seed=42)
    assert _logs(api)["summary"]["total"] == 0


def test_filters_sort_paging_and_fields(api, sb):
    made = _changes(api, sb)
    sb.add_user("req", "req-key", role="requester")
    ordered = Api(sb, "req", "req-key").order("shop.example.com")
    assert ordered.status_code == 201

    def activities(**params):
        return [e["activity"] for e in _logs(api, **params)["auditLogs"]]

    assert activities(activity="Certificate revoked") == ["Certificate revoked"]
    assert activities(activity="con:requested") == ["Certificate requested"] * 3
    assert activities(activity="in:Domain added,Certificate approved") == [
        "Certificate approved",
        "Domain added",
    ]
    assert activities(userName="req") == ["Certificate requested"]
    assert activities(userRole="Requester") == ["Certificate requested"]
    assert len(activities(userRole="con:Admin")) == 6
    assert activities(comments=f"con:{made['reissue']}") == ["Certificate reissued"]
    first = _logs(api)["auditLogs"][0]["activityDate"]
    assert len(activities(activityDate=f"ge:{first}")) == 7
    assert activities(activityDate=f"lt:{first}") == []

    newest = _logs(api, sort="activityDate:desc", limit=2, offset=1)
    assert newest["summary"]["total"] == 7 and newest["summary"]["offset"] == 1
    assert [e["activity"] for e in newest["auditLogs"]] == ["Domain added", "Certificate reissued"]
    by_user = _logs(api, sort="userName:asc")["auditLogs"]
    assert by_user[0]["userName"] == "req"

    only = _logs(api, fields="activity,comments")["auditLogs"]
    assert only and all(set(e) == {"activity", "comments"} for e in only)
    assert all(set(e) == FIELDS for e in _logs(api, fields="*")["auditLogs"])


def test_bad_requests_get_the_error_envelope(api):
    assert_error(api.get("auditLogs", params={"activityDate": "con:2026"}), 400, "activityDate")
    assert_error(api.get("auditLogs", params={"activityDate": "ge:yesterday"}), 400)
    assert_error(api.get("auditLogs", params={"activity": "gt:x"}), 400, "activity")
    assert_error(api.get("auditLogs", params={"sort": "trackingId:asc"}), 400, "sort")
    assert_error(api.get("auditLogs", params={"limit": 1001}), 400, "limit")
