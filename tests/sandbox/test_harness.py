"""The harness's readers of the account's orders over the ECS API (`orders`, `held`, `order`,
`status`): the order tests count and read back what the sandbox holds with them, so they must
see every order, page after page, and answer as the API does."""

from __future__ import annotations

from urllib.parse import parse_qs


def _lists(sb) -> list[dict]:
    return [r for r in sb.requests() if r["path"].rstrip("/").endswith("/certificates")]


def test_orders_reads_every_page_until_the_total(api, sb):
    sb.seed(certificates=1500, seed=3)
    total = api.get("certificates", params={"limit": 1}).json()["summary"]["total"]
    assert total > 1000  # more than one page
    sb.clear_requests()
    listed = sb.orders()
    assert len(listed) == total
    assert len({(o["trackingId"], o["uri"]) for o in listed}) == total  # none twice, none missed
    assert all(set(o) <= {"trackingId", "tracking", "uri"} for o in listed)
    offsets = [parse_qs(r["query"])["offset"] for r in _lists(sb)]
    assert offsets == [["0"], ["1000"]]  # stops at the total, without asking for an empty page


def test_orders_with_other_fields_and_one_request_below_a_page(sb):
    sb.clear_requests()
    listed = sb.orders("trackingId,status")
    assert listed and all("status" in o and "tracking" not in o for o in listed)
    assert len(_lists(sb)) == 1


def test_orders_of_an_empty_account(sb):
    sb.reset()
    assert sb.orders() == []
    assert sb.held() == {}


def test_held_counts_orders_per_tracking_info(api, sb):
    created = api.order("held.example.com", tracking={"trackingInfo": "certdesk:one"})
    assert created.status_code == 201, created.text
    again = api.order("held.example.com", tracking={"trackingInfo": "certdesk:one"})
    assert again.status_code == 201, again.text
    held = sb.held()
    assert held["certdesk:one"] == 2 and held["certdesk:two"] == 0
    assert sum(held.values()) == len(sb.orders())
    without = sum(1 for o in sb.orders() if not (o.get("tracking") or {}).get("trackingInfo"))
    assert held[None] == without


def test_order_and_status_read_one_order_back(api, sb):
    created = api.order("status.example.com").json()
    tracking_id = created["trackingId"]
    assert sb.order(tracking_id)["trackingId"] == tracking_id
    assert sb.status(tracking_id) == "ACTIVE"
    sb.set_certificate_status(tracking_id, "SUSPENDED")
    assert sb.status(tracking_id) == "SUSPENDED"
