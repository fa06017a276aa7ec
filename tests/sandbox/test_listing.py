"""GET /certificates: paging, filters, sort, fields, hidden statuses, serial search."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from .conftest import SEED_CERTIFICATES, assert_error


def _all(api, limit, **params):
    """Page through the list like A2C and Keyfactor: offset += limit until summary.total."""
    items, offset, pages = [], 0, 0
    while True:
        body = api.get("certificates", params={**params, "limit": limit, "offset": offset}).json()
        items += body["certificates"]
        pages += 1
        assert body["summary"]["offset"] == offset and body["summary"]["limit"] == limit
        offset += limit
        if offset >= body["summary"]["total"]:
            return items, body["summary"]["total"], pages


@pytest.mark.parametrize("limit", [200, 1000])
def test_paging_until_total(api, sb, limit):
    sb.seed(certificates=1500, seed=3)
    items, total, pages = _all(api, limit)
    assert len(items) == total
    assert pages == -(-total // limit)
    keys = [(i["trackingId"], i["uri"]) for i in items]
    assert len(set(keys)) == total, "a page repeated or skipped items"


def test_defaults_and_summary(api):
    body = api.get("certificates").json()
    summary = body["summary"]
    assert summary["offset"] == 0 and summary["limit"] == 25 and len(body["certificates"]) == 25
    assert set(summary) == {"timestamp", "elapsed", "offset", "limit", "total", "sort"}
    assert summary["timestamp"].endswith("Z")
    item = body["certificates"][-1]
    default = {"trackingId", "dn", "serialNumber", "expiresAfter", "signingAlg", "eku", "status"}
    assert set(item) == default | {"uri"}
    assert item["uri"] == f"/enterprise/v2/certificates/{item['trackingId']}"


def test_limit_bounds(api):
    assert_error(api.get("certificates", params={"limit": 1001}), 400, "limit")
    assert_error(api.get("certificates", params={"limit": 0}), 400, "limit")
    assert_error(api.get("certificates", params={"offset": -1}), 400, "offset")
    assert len(api.get("certificates", params={"limit": 1000}).json()["certificates"]) > 25


def test_fields_selector(api):
    only = api.get("certificates", params={"fields": "uri,dn", "limit": 5}).json()
    assert all(set(i) == {"uri", "dn"} for i in only["certificates"])
    params = {"fields": "*", "limit": 5, "isThirdParty": "false"}
    every = api.get("certificates", params=params).json()["certificates"]
    assert all({"tracking", "certType", "subjectAltName", "isThirdParty"} <= set(i) for i in every)


def test_approved_and_declined_left_out(api):
    seen = {i["status"] for i in _all(api, 1000)[0]}
    assert "APPROVED" not in seen and "DECLINED" not in seen
    assert_one = api.get("certificates", params={"status": "DECLINED"}).json()
    assert assert_one["summary"]["total"] == 0


def test_declined_still_readable_by_id(api, sb):
    tracking_id = api.order("www.example.com", queueForApproval=True).json()["trackingId"]
    api.patch(f"certificates/{tracking_id}", {"operation": "DECLINE", "declineReason": "no"})
    detail = api.get(f"certificates/{tracking_id}").json()
    assert detail["status"] == "DECLINED" and detail["declineReason"] == "no"
    ids = {i["trackingId"] for i in _all(api, 1000)[0]}
    assert tracking_id not in ids


def test_status_filters(api):
    active = api.get("certificates", params={"status": "ACTIVE", "limit": 1000}).json()
    assert active["certificates"] and all(i["status"] == "ACTIVE" for i in active["certificates"])
    both = api.get("certificates", params={"status": "in:ACTIVE,REVOKED", "limit": 1000}).json()
    statuses = {i["status"] for i in both["certificates"]}
    assert statuses == {"ACTIVE", "REVOKED"}
    assert_error(api.get("certificates", params={"status": "con:ACT"}), 400, "status")


def test_tracking_id_in(api):
    ids = [5000001 + i for i in range(0, 150, 3)]
    body = api.get(
        "certificates",
        params={"trackingId": "in:" + ",".join(map(str, ids)), "limit": 1000, "fields": "*"},
    ).json()
    got = {i["trackingId"] for i in body["certificates"]}
    assert got and got <= set(ids)
    assert body["summary"]["total"] == len(got)


def test_serial_search_ignores_leading_zeros(api):
    items = api.get("certificates", params={"limit": 1000, "status": "ACTIVE"}).json()
    serials = [i["serialNumber"] for i in items["certificates"]]
    assert all(s == s.upper() and not s.startswith("0") for s in serials)
    short = min(serials, key=len)  # a serial whose 16-byte form has leading zero bytes
    assert len(short) < 32
    padded = short.rjust(32, "0")
    for query in (short, padded, "00" + short, short.lower()):
        found = api.get("certificates", params={"serialNumber": query}).json()["certificates"]
        assert [i["serialNumber"] for i in found] == [short], query
    found = api.get("certificates", params={"serialNumber": "in:00" + short + ",ABC"}).json()
    assert len(found["certificates"]) == 1


def test_a_serial_contains_search_keeps_the_zeros_it_is_given(api):
    """Leading zeros are dropped from a whole serial, not from a part of one: "con:0A3" finds
    the serials that contain 0A3, not every serial that contains A3."""
    params = {"limit": 1000, "fields": "serialNumber"}
    serials = [
        i["serialNumber"]
        for i in api.get("certificates", params=params).json()["certificates"]
        if "serialNumber" in i
    ]
    digits = "0123456789ABCDEF"
    part = next(
        "0" + a + b
        for a in digits
        for b in digits
        if any("0" + a + b in s for s in serials)
        and any(a + b in s and "0" + a + b not in s for s in serials)
    )
    for query in (part, part.lower()):
        found = api.get("certificates", params={**params, "serialNumber": "con:" + query})
        shown = sorted(i["serialNumber"] for i in found.json()["certificates"])
        assert shown == sorted(s for s in serials if part in s), query


def test_empty_search_is_200(api):
    body = api.get("certificates", params={"serialNumber": "DEADBEEF"})
    assert body.status_code == 200 and body.json()["certificates"] == []


def test_text_and_range_filters(api):
    dn = api.get("certificates", params={"dn": "con:example.org", "fields": "*"}).json()
    assert dn["certificates"] and all("example.org" in i["dn"] for i in dn["certificates"])
    cutoff = "2027-01-01T00:00:00.000Z"
    later = api.get("certificates", params={"expiresAfter": "ge:" + cutoff, "limit": 1000}).json()
    assert all(i["expiresAfter"] >= "2027-01-01T00:00:00Z" for i in later["certificates"])
    small = api.get("certificates", params={"keySize": "lt:3000", "fields": "*"}).json()
    assert all(i["keySize"] < 3000 for i in small["certificates"])
    ev = api.get("certificates", params={"certType": "in:EV_SSL", "fields": "*"}).json()
    assert ev["certificates"] and {i["certType"] for i in ev["certificates"]} == {"EV_SSL"}
    info = api.get("certificates", params={"tracking.trackingInfo": "SEED-000007"}).json()
    assert [i["trackingId"] for i in info["certificates"]] == [5000008]
    custom = api.get(
        "certificates", params={"tracking.customFields.text1": "CC-107", "limit": 100}
    ).json()
    assert custom["summary"]["total"] >= 1
    third = api.get("certificates", params={"isThirdParty": "false", "limit": 1000}).json()
    assert all(i["trackingId"] > 0 for i in third["certificates"])
    assert_error(api.get("certificates", params={"keySize": "con:20"}), 400, "keySize")
    assert_error(api.get("certificates", params={"expiresAfter": "gt:soon"}), 400, "expiresAfter")


def test_a_time_with_a_fraction_of_a_second_is_compared_exactly(api):
    """Times are kept in whole seconds; a bound half a second after one is after it, whatever
    the operator (ge and eq found the certificate, lt missed it)."""
    item = api.get("certificates", params={"status": "ACTIVE", "fields": "*"}).json()
    cert = item["certificates"][1]
    expiry, issued = cert["expiresAfter"], cert["issueDateTime"]  # YYYY-MM-DDTHH:MM:SSZ
    for name, moment in (("expiresAfter", expiry), ("issueDateTime", issued)):
        later = moment[:-1] + ".5Z"
        found = {}
        for op in ("eq", "ge", "gt", "le", "lt"):
            params = {"trackingId": cert["trackingId"], name: f"{op}:{later}"}
            body = api.get("certificates", params=params).json()
            found[op] = body["summary"]["total"]
        assert found == {"eq": 0, "ge": 0, "gt": 0, "le": 1, "lt": 1}, (name, found)
        exact = {"trackingId": cert["trackingId"], name: moment[:-1] + ".000Z"}
        assert api.get("certificates", params=exact).json()["summary"]["total"] == 1


def test_subject_alt_name_filter(api):
    item = api.get(
        "certificates", params={"certType": "ADVANTAGE_SSL", "fields": "*", "status": "ACTIVE"}
    ).json()["certificates"][0]
    names = [s["value"] for s in item["subjectAltName"]]
    assert len(names) == 2
    joined = api.get("certificates", params={"subjectAltName": ", ".join(names)}).json()
    assert item["trackingId"] in [i["trackingId"] for i in joined["certificates"]]
    one = api.get("certificates", params={"subjectAltName": names[1]}).json()
    assert item["trackingId"] not in [i["trackingId"] for i in one["certificates"]]
    anyof = api.get("certificates", params={"subjectAltName": "in:" + names[1]}).json()
    assert item["trackingId"] in [i["trackingId"] for i in anyof["certificates"]]


def test_sort(api):
    desc = api.get("certificates", params={"sort": "trackingId:desc", "limit": 50}).json()
    ids = [i["trackingId"] for i in desc["certificates"]]
    assert ids == sorted(ids, reverse=True) and desc["summary"]["sort"] == "trackingId:desc"
    by_exp = api.get("certificates", params={"sort": "expiresAfter:asc", "limit": 100}).json()
    dates = [i["expiresAfter"] for i in by_exp["certificates"]]
    assert dates == sorted(dates)
    assert_error(api.get("certificates", params={"sort": "uri:asc"}), 400, "sort")
    # Every field but uri sorts: the names, the OUs and the tracking data too.
    for name in ("subjectAltName", "ou", "tracking.requesterName", "tracking.additionalEmails"):
        response = api.get("certificates", params={"sort": f"{name}:desc", "limit": 5})
        assert response.status_code == 200, (name, response.text)
        assert response.json()["summary"]["sort"] == f"{name}:desc"
    by_requester = api.get(
        "certificates", params={"sort": "tracking.requesterName:asc", "fields": "*", "limit": 200}
    ).json()["certificates"]
    names = [i["tracking"].get("requesterName") or "" for i in by_requester]
    assert names == sorted(names) and len(set(names)) > 1
    assert_error(api.get("certificates", params={"sort": "trackingId:sideways"}), 400, "sort")


def test_custom_fields_sort_like_the_other_tracking_data(api):
    """The spec lets every field but uri sort; a custom number field sorts as a number."""
    values = [("9", "b"), ("100", "c"), ("10", "a")]
    ids = []
    for number, text in values:
        tracking = {"customFields": {"number1": number, "text4": text}}
        response = api.order(tracking=tracking)
        assert response.status_code == 201, response.text
        ids.append(response.json()["trackingId"])

    def ordered(sort):
        params = {"trackingId": "in:" + ",".join(map(str, ids)), "sort": sort, "fields": "*"}
        response = api.get("certificates", params=params)
        assert response.status_code == 200, response.text
        assert response.json()["summary"]["sort"] == sort
        return [i["tracking"]["customFields"] for i in response.json()["certificates"]]

    numbers = [f["number1"] for f in ordered("tracking.customFields.number1:asc")]
    assert numbers == [9, 10, 100]
    texts = [f["text4"] for f in ordered("tracking.customFields.text4:desc")]
    assert texts == ["c", "b", "a"]
    assert_error(api.get("certificates", params={"sort": "tracking.customFields.text16:asc"}), 400)


def test_custom_number_and_date_fields_filter_by_range(api):
    """The spec gives the numberN and dateN filters eq, gt, ge, lt and le (its examples:
    number1=gt:0, date1=gt:2018-01-01); eq, con and in still work as on the text fields."""
    sent = [(8, "2027-03-01"), (12.5, "2027-03-15"), (100, "2028-01-01")]
    ids = []
    for number, day in sent:
        tracking = {"customFields": {"number3": number, "date3": day}}
        response = api.order(tracking=tracking)
        assert response.status_code == 201, response.text
        ids.append(response.json()["trackingId"])

    def found(name, value):
        params = {f"tracking.customFields.{name}": value, "fields": "trackingId", "limit": 1000}
        response = api.get("certificates", params=params)
        assert response.status_code == 200, response.text
        return [i["trackingId"] for i in response.json()["certificates"]]

    assert found("number3", "gt:0") == ids
    assert found("number3", "gt:8") == ids[1:]
    assert found("number3", "ge:12.5") == ids[1:]
    assert found("number3", "lt:100") == ids[:2]
    assert found("number3", "le:8") == ids[:1]
    assert found("number3", "8") == found("number3", "eq:8") == ids[:1]
    assert found("number3", "in:8,100") == [ids[0], ids[2]]
    assert found("date3", "gt:2018-01-01") == ids
    assert found("date3", "ge:2027-03-15") == ids[1:]
    assert found("date3", "lt:2027-03-15") == ids[:1]
    assert found("date3", "le:2027-12-31") == ids[:2]
    assert found("date3", "2027-03-15") == found("date3", "eq:2027-03-15") == ids[1:2]
    assert found("date3", "con:2027") == ids[:2]
    for name, value in (("number3", "gt:many"), ("date3", "lt:next week")):
        assert_error(api.get("certificates", params={f"tracking.customFields.{name}": value}), 400)


def test_third_party_and_thumbprint(api):
    items = api.get("certificates", params={"isThirdParty": "true", "fields": "*"}).json()
    item = items["certificates"][0]
    assert item["trackingId"] == 0 and item["isThirdParty"] is True
    assert "/thumbprints/" in item["uri"]
    thumb = item["uri"].rsplit("/", 1)[1]
    assert len(thumb) == 40
    detail = api.get(f"certificates/thumbprints/{thumb.lower()}").json()
    assert detail["serialNumber"] == item["serialNumber"]
    assert detail["endEntityCert"].startswith("-----BEGIN CERTIFICATE-----")
    assert_error(api.get("certificates/thumbprints/" + "0" * 40), 404)
    assert_error(api.get("certificates/0"), 404)


def test_seed_is_deterministic(api, sb):
    first = api.get("certificates", params={"fields": "*", "limit": 100}).json()["certificates"]
    sb.seed(certificates=SEED_CERTIFICATES, seed=42)
    second = api.get("certificates", params={"fields": "*", "limit": 100}).json()["certificates"]
    assert first == second  # dates too: seeded times are anchored to the day
    sb.seed(certificates=SEED_CERTIFICATES, seed=43)
    other = api.get("certificates", params={"fields": "*", "limit": 100}).json()["certificates"]
    assert [i.get("serialNumber") for i in other] != [i.get("serialNumber") for i in first]


def test_seeded_orders_happened_before_now(api, sb):
    # No seeded order is issued or deactivated later than the moment the list is read.
    sb.seed(certificates=2000, seed=5)
    page = api.get("certificates", params={"fields": "*", "limit": 1000}).json()
    now = page["summary"]["timestamp"][:19] + "Z"  # whole seconds, as the items write it
    items = page["certificates"]
    deactivated = [i for i in items if i["tracking"]["deactivated"]]
    assert deactivated and all(i["tracking"]["deactivatedOn"] <= now for i in deactivated)
    assert all(i["issueDateTime"] <= now for i in items if "issueDateTime" in i)
    assert all(i["issueDateTime"] <= i["tracking"]["deactivatedOn"] for i in deactivated)


def test_seeded_renewed_orders_were_at_least_30_days_old(api, sb):
    # ECS renews a certificate only once it is 30 days old, so no renewed one is younger.
    sb.seed(certificates=2000, seed=5)
    page = api.get("certificates", params={"status": "RENEWED", "fields": "*", "limit": 1000})
    renewed = page.json()["certificates"]
    month_ago = datetime.now(UTC) - timedelta(days=30)
    assert renewed and all(datetime.fromisoformat(i["issueDateTime"]) <= month_ago for i in renewed)


def test_seed_covers_statuses_and_types(api, sb):
    sb.seed(certificates=2000, seed=5)
    rows = sb.sandbox.store.query("SELECT DISTINCT status, cert_type FROM certificates")
    statuses = {r["status"] for r in rows}
    assert statuses >= {"ACTIVE", "EXPIRED", "REVOKED", "PENDING", "SUSPENDED", "RENEWED"}
    assert statuses >= {"REISSUED", "DECLINED", "APPROVED", "DEACTIVATED", "READY"}
    types = {r["cert_type"] for r in rows}
    assert types >= {"STANDARD_SSL", "EV_SSL", "WILDCARD_SSL", "CODE_SIGNING", "SMIME_ENT"}
