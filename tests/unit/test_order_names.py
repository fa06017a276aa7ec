"""The names an order or a renewal asks for: host names only, at least one, at most what one
certificate holds (orders.checks)."""

import pytest

from webapp.csrs.service import MAX_SANS
from webapp.orders.checks import OrderInputError, counted, dns_names


def test_typed_host_names_are_kept_in_order_without_repeats():
    assert dns_names("www.example.com, shop.example.com\nwww.example.com") == [
        "www.example.com",
        "shop.example.com",
    ]


@pytest.mark.parametrize(
    ("text", "named"),
    [("www.example.com 192.0.2.1", "192.0.2.1"), ("ops@example.com www.example.com", "ops@")],
)
def test_other_kinds_of_names_are_refused(text, named):
    with pytest.raises(OrderInputError, match="DNS names only") as exc:
        dns_names(text)
    assert named in str(exc.value) and exc.value.field == "sans"


def test_a_name_that_is_no_host_is_refused():
    with pytest.raises(OrderInputError) as exc:
        dns_names("www.example.com not_a_host")
    assert "not_a_host" in str(exc.value) and exc.value.field == "sans"


def test_no_names_or_too_many_are_refused():
    names = [f"h{i}.example.com" for i in range(MAX_SANS)]
    assert counted(names, "none") == names
    with pytest.raises(OrderInputError, match=f"At most {MAX_SANS} names"):
        counted([*names, "one.more.example.com"], "none")
    with pytest.raises(OrderInputError, match="Enter them"):
        counted([], "Enter them")
