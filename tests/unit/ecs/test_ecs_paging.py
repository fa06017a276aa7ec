"""Paging: offset is an item index, limit up to 1000, stop at summary.total, guard bad pages."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from webapp.ecs import errors

from .helpers import cert_json, page, url


def serve(rsps, total: int, *, broken_at: int | None = None, mode: str = "ok"):
    """A listing of `total` certificates; from offset `broken_at` it misbehaves as `mode` says."""
    seen: list[tuple[int, int]] = []

    def callback(request):
        q = parse_qs(urlsplit(request.url).query)
        offset, limit = int(q["offset"][0]), int(q["limit"][0])
        seen.append((offset, limit))
        start = offset
        if broken_at is not None and offset >= broken_at:
            if mode == "empty":
                return 200, {}, json.dumps(page("certificates", [], offset, limit, total))
            if mode == "repeat":
                start = offset - limit
        items = [cert_json(i + 1) for i in range(start, min(start + limit, total))]
        return 200, {}, json.dumps(page("certificates", items, offset, limit, total))

    rsps.add_callback(
        responses.GET, url("certificates"), callback=callback, content_type="application/json"
    )
    return seen


def test_pages_until_total(client, rsps):
    seen = serve(rsps, 7)
    ids = [c.tracking_id for c in client.iter_certificates(page_size=3)]
    assert ids == list(range(1, 8))
    assert seen == [(0, 3), (3, 3), (6, 3)]


def test_exact_multiple_of_page_size_needs_no_extra_request(client, rsps):
    seen = serve(rsps, 6)
    assert len(list(client.iter_certificates(page_size=3))) == 6
    assert seen == [(0, 3), (3, 3)]


def test_empty_listing(client, rsps):
    seen = serve(rsps, 0)
    assert list(client.iter_certificates()) == []
    assert seen == [(0, 1000)]


def test_it_is_a_lazy_generator(client, rsps):
    seen = serve(rsps, 10)
    iterator = client.iter_certificates(page_size=2)
    assert seen == []
    assert next(iterator).tracking_id == 1
    assert seen == [(0, 2)]


def test_short_page_advances_by_items_received(client, rsps):
    """A server that returns fewer items than asked: the next offset is the next item index."""
    calls = []

    def callback(request):
        q = parse_qs(urlsplit(request.url).query)
        offset = int(q["offset"][0])
        calls.append(offset)
        items = [cert_json(i + 1) for i in range(offset, min(offset + 2, 5))]  # caps at 2
        return 200, {}, json.dumps(page("certificates", items, offset, 1000, 5))

    rsps.add_callback(
        responses.GET, url("certificates"), callback=callback, content_type="application/json"
    )
    assert [c.tracking_id for c in client.iter_certificates()] == [1, 2, 3, 4, 5]
    assert calls == [0, 2, 4]


def test_empty_page_before_total_raises(client, rsps):
    serve(rsps, 10, broken_at=4, mode="empty")
    got = []
    with pytest.raises(errors.PagingError) as info:
        for cert in client.iter_certificates(page_size=2):
            got.append(cert.tracking_id)
    assert got == [1, 2, 3, 4]
    assert "empty page at offset 4 of 10" in str(info.value)
    assert isinstance(info.value, errors.MalformedResponseError)


def test_repeated_page_raises(client, rsps):
    seen = serve(rsps, 10, broken_at=4, mode="repeat")
    with pytest.raises(errors.PagingError) as info:
        list(client.iter_certificates(page_size=2))
    assert "repeats the previous page" in str(info.value)
    assert len(seen) == 3  # it stops at once, it does not loop


def test_missing_total_stops_on_short_page(client, rsps):
    rsps.get(url("certificates"), json={"certificates": [cert_json(1), cert_json(2)]})
    assert len(list(client.iter_certificates(page_size=5))) == 2
    assert len(rsps.calls) == 1


def test_page_without_the_list_is_malformed(client, rsps):
    rsps.get(url("domains"), json={"summary": {"total": 3}})
    with pytest.raises(errors.MalformedResponseError):
        list(client.iter_domains())


def test_a_bad_item_is_malformed(client, rsps):
    rsps.get(url("certificates"), json=page("certificates", [{"status": "ACTIVE"}], 0, 1000, 1))
    with pytest.raises(errors.MalformedResponseError) as info:
        list(client.iter_certificates())
    assert "trackingId" in str(info.value)


def test_empty_certificate_search_answered_with_404_is_empty(client, rsps):
    rsps.get(
        url("certificates"),
        status=404,
        json={"status": 404, "errors": [{"message": "No certificates found"}]},
    )
    assert client.find_certificates_by_tracking_info("nothing") == []


def test_404_on_a_client_domain_listing_is_raised(client, rsps):
    rsps.get(
        url("clients/9/domains"),
        status=404,
        json={"status": 404, "errors": [{"message": "Unknown clientId"}]},
    )
    with pytest.raises(errors.NotFoundError):
        list(client.iter_domains(9))


def test_a_first_page_refused_at_1000_is_asked_for_again_at_100(client, rsps):
    """Some accounts' domain listings fail at limit=1000 and answer at 100: the listing goes on
    in pages of 100."""
    seen = []

    def callback(request):
        q = parse_qs(urlsplit(request.url).query)
        offset, limit = int(q["offset"][0]), int(q["limit"][0])
        seen.append((offset, limit))
        if limit > 100:
            return 400, {}, json.dumps({"status": 400, "errors": [{"message": "Invalid limit"}]})
        names = [f"d{i}.example" for i in range(offset, min(offset + limit, 150))]
        items = [{"domainName": n, "verificationStatus": "APPROVED"} for n in names]
        return 200, {}, json.dumps(page("domains", items, offset, limit, 150))

    rsps.add_callback(
        responses.GET, url("clients/1/domains"), callback=callback, content_type="application/json"
    )
    domains = list(client.iter_domains(1))
    assert len(domains) == 150 and domains[-1].domain_name == "d149.example"
    assert seen == [(0, 1000), (0, 100), (100, 100)]


def test_a_refusal_at_the_small_page_size_is_raised(client, rsps):
    rsps.get(
        url("domains"),
        status=400,
        json={"status": 400, "errors": [{"message": "Invalid filter", "field": "ovExpiry"}]},
    )
    with pytest.raises(errors.ValidationError):
        list(client.iter_domains(filters={"ovExpiry": "lt:soon"}))
    limits = [parse_qs(urlsplit(c.request.url).query)["limit"] for c in rsps.calls]
    assert limits == [["1000"], ["100"]]  # asked once more at 100, then given up
    with pytest.raises(errors.ValidationError):
        list(client.iter_domains(page_size=50))  # already small: not asked again
    assert len(rsps.calls) == 3


def test_a_certificate_search_refused_is_not_asked_again_at_a_smaller_size(client, rsps):
    """Only domain listings are known to fail at 1000: a certificate search that fails is the
    caller's to handle (a reconcile counts it as not answered), not asked once more."""
    rsps.get(url("certificates"), status=500, json={"status": 500, "errors": []})
    with pytest.raises(errors.ServerError):
        list(client.iter_certificates(filters={"trackingInfo": "certdesk:x"}))
    limits = {parse_qs(urlsplit(c.request.url).query)["limit"][0] for c in rsps.calls}
    assert limits == {"1000"}
