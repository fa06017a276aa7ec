"""The control hooks that change the account as Entrust's portal or its staff would: an
organization added or taken away, a client renamed or vetted, a domain added or taken away, a
product bought, run out or taken away, a custom field set up, changed or turned off. The ECS API
then answers as the changed account; a hook refused changes nothing."""

from __future__ import annotations

import re

import pytest
import requests

from tests.sandbox.conftest import assert_error


def _control(sb, method: str, path: str, body=None, **kw):
    return requests.request(method, sb.root_url + "_sandbox/" + path, json=body, timeout=10, **kw)


def _org_names(api, client_id: int) -> list[str]:
    return [
        o["name"] for o in api.get(f"clients/{client_id}/organizations").json()["organizations"]
    ]


def test_an_organization_taken_away_is_no_longer_listed_nor_ordered_for(api, sb):
    assert "CertDesk Labs" in _org_names(api, 1)
    assert api.order("www.example.com", clientId=1, org="CertDesk Labs").status_code == 201
    sb.remove_organization(1, "CertDesk Labs")
    assert "CertDesk Labs" not in _org_names(api, 1)
    assert "CertDesk Demo Corp" in _org_names(api, 1)  # the client's others stay
    everyone = api.get("organizations").json()["organizations"]
    assert "CertDesk Labs" not in [o["name"] for o in everyone]
    assert_error(api.order("www.example.com", clientId=1, org="CertDesk Labs"), 400, "org")


def test_an_organization_hook_refuses_what_it_cannot_find_or_read(api, sb):
    before = api.get("organizations").json()
    resp = _control(sb, "DELETE", "organizations", {"clientId": 2, "name": "CertDesk Labs"})
    assert_error(resp, 404)  # another client's
    assert_error(_control(sb, "DELETE", "organizations", {"clientId": "1", "name": "x"}), 400)
    assert_error(_control(sb, "DELETE", "organizations", {"clientId": 1}), 400, "name")
    assert api.get("organizations").json() == before


def _account(api) -> dict:
    """What the ECS API answers about the account's clients, organizations and domains."""
    return {
        "clients": api.get("clients").json(),
        "client2": api.get("clients/2").json(),
        "organizations": api.get("organizations").json(),
        "domains": api.get("domains", params={"limit": 100}).json()["domains"],
    }


ODD_NAMES = ['שלום עולם בע"מ', "Acme 🚀 <b>bold</b>", "Acme", "ACME", "Acme ", "Acme.", "Ö" * 500]


def test_organizations_added_to_a_client_are_listed_as_given_and_ordered_for(api, sb):
    for name in ODD_NAMES:
        assert sb.add_organization(1, name) == {
            "clientId": 1,
            "name": name,
            "verificationStatus": "APPROVED",
        }
    sb.add_organization(2, "Vetting Ltd", "PENDING")
    listed = _org_names(api, 1)
    seeded = ["CertDesk Demo Corp", "CertDesk Labs", "Old Name Inc", "Future Ventures"]
    assert listed == seeded + ODD_NAMES  # each its own, exactly as given
    everyone = api.get("organizations").json()["organizations"]
    assert {"name": "Vetting Ltd", "verificationStatus": "PENDING", "clientId": 2} in everyone
    assert api.get("clients/1").json()["organizations"][-1]["name"] == ODD_NAMES[-1]
    assert api.order("www.example.com", clientId=1, org="Acme ").status_code == 201
    # Not approved yet: listed, not ordered for.
    assert_error(api.order("www.subsidiary.example", clientId=2, org="Vetting Ltd"), 400, "org")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"clientId": 1, "name": "CertDesk Labs"}, 400, "name"),  # the client has it already
        ({"clientId": 9, "name": "Acme"}, 404, None),
        ({"clientId": "1", "name": "Acme"}, 400, "clientId"),
        ({"clientId": True, "name": "Acme"}, 400, "clientId"),
        ({"clientId": 1}, 400, "name"),
        ({"clientId": 1, "name": "   "}, 400, "name"),
        ({"clientId": 1, "name": ["Acme"]}, 400, "name"),
        ({"clientId": 1, "name": "Acme\nInc"}, 400, "name"),
        ({"clientId": 1, "name": "x" * 1001}, 400, "name"),
        ({"clientId": 1, "name": "Acme", "verificationStatus": "OK"}, 400, "verificationStatus"),
        ({"clientId": 1, "name": "Acme", "status": "APPROVED"}, 400, "status"),
    ],
)
def test_an_organization_added_with_bad_input_changes_nothing(api, sb, body, status, field):
    before = _account(api)
    assert_error(_control(sb, "POST", "organizations", body), status, field)
    assert _account(api) == before


def test_a_renamed_client_is_listed_under_its_new_name(api, sb):
    long_name = "عميل " + "y" * 400
    assert sb.rename_client(2, long_name) == {"clientId": 2, "clientName": long_name}
    client = api.get("clients/2").json()
    assert client["clientName"] == long_name and client["friendlyClientName"] == "Subsidiary"
    listed = {c["clientId"]: c for c in api.get("clients").json()["clients"]}
    assert listed[2]["clientName"] == long_name
    assert listed[1]["clientName"] == "CertDesk Demo Corp"  # the others stay
    sb.rename_client(2, friendly_name="Sub")
    client = api.get("clients/2").json()
    assert client["clientName"] == long_name and client["friendlyClientName"] == "Sub"


def test_a_renamed_client_orders_for_its_own_organization_under_the_new_name(api, sb):
    """An order without `org` is for the client's organization (the spec's `org`): the one of
    the client's name follows a rename, vetting kept; the client's others stay as they are.
    It kept the old name, and every such order was refused as "not approved"."""
    sb.rename_client(2, "Subsidiary Renamed plc")
    assert _org_names(api, 2) == ["Subsidiary Renamed plc"]
    issued = api.order("www.subsidiary.example", clientId=2)
    assert issued.status_code == 201, issued.text
    detail = api.get(f"certificates/{issued.json()['trackingId']}").json()
    assert detail["org"] == "Subsidiary Renamed plc"
    sb.rename_client(1, "CertDesk Demo Corporation")
    seeded = api.get("clients/1/organizations").json()["organizations"]
    assert [(o["name"], o["verificationStatus"]) for o in seeded] == [
        ("CertDesk Demo Corporation", "APPROVED"),
        ("CertDesk Labs", "APPROVED"),
        ("Old Name Inc", "EXPIRED"),
        ("Future Ventures", "PENDING"),
    ]
    assert api.order("www.example.com", clientId=1).status_code == 201
    # Renamed to the name of another of its organizations: that one is its own, as it was.
    sb.rename_client(1, "Future Ventures")
    assert _org_names(api, 1) == ["CertDesk Labs", "Old Name Inc", "Future Ventures"]
    assert_error(api.order("www.example.com", clientId=1), 400, "org")


def test_a_seeded_pending_client_vetted_by_the_hook_orders_without_org(api, sb):
    assert _org_names(api, 3) == ["Pending Holdings Inc"]
    sb.add_domain(3, "holdings.example")
    assert_error(api.order("www.holdings.example", clientId=3), 400, "clientId")
    sb.vet_client(3)
    listed = api.get("clients/3/organizations").json()["organizations"]
    assert listed == [{"name": "Pending Holdings Inc", "verificationStatus": "APPROVED"}]
    assert api.order("www.holdings.example", clientId=3).status_code == 201


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("clients/9", {"clientName": "Acme"}, 404, None),
        ("clients/2", {}, 400, "clientName"),
        ("clients/2", {"clientName": 5}, 400, "clientName"),
        ("clients/2", {"clientName": ""}, 400, "clientName"),
        (
            "clients/2",
            {"clientName": "Acme", "friendlyClientName": "\t"},
            400,
            "friendlyClientName",
        ),
        ("clients/2", {"clientName": "Acme", "status": "APPROVED"}, 400, "status"),
        ("clients/2", {"verificationStatus": "OK"}, 400, "verificationStatus"),
        ("clients/2", {"evVerificationStatus": None}, 400, "evVerificationStatus"),
        ("clients/2", {"clientName": "Acme", "verificationStatus": "approved"}, 400, None),
    ],
)
def test_a_client_renamed_with_bad_input_changes_nothing(api, sb, path, body, status, field):
    before = _account(api)
    assert_error(_control(sb, "POST", path, body), status, field)
    assert _account(api) == before


def test_a_client_added_over_the_api_is_ordered_for_once_vetted(api, sb):
    added = api.post("clients", {"clientName": "Vetted Co"})
    assert added.status_code == 202
    client_id = int(added.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    # Its own organization, of its name, is what its orders without `org` are for; it awaits
    # vetting with the client.
    own = f"clients/{client_id}/organizations"
    assert api.get(own).json()["organizations"] == [
        {"name": "Vetted Co", "verificationStatus": "PENDING"}
    ]
    everyone = api.get("organizations").json()["organizations"]
    assert {"name": "Vetted Co", "verificationStatus": "PENDING", "clientId": client_id} in everyone
    sb.add_domain(client_id, "vetted.example", ev_eligible=True)
    order = {"clientId": client_id, "validateOnly": True}
    assert_error(api.order("www.vetted.example", **order), 400, "clientId")
    assert sb.vet_client(client_id) == {"clientId": client_id, "verificationStatus": "APPROVED"}
    client = api.get(f"clients/{client_id}").json()
    assert client["verificationStatus"] == "APPROVED"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", client["ovExpiryDate"])
    assert api.get(own).json()["organizations"] == [
        {"name": "Vetted Co", "verificationStatus": "APPROVED"}
    ]
    assert api.order("www.vetted.example", **order).status_code == 200
    assert_error(api.order("www.vetted.example", "EV_SSL", **order), 400, "certType")
    sb.vet_client(client_id, ev="APPROVED")
    assert "expiryDate" in api.get(f"clients/{client_id}").json()["evInfo"]
    assert api.order("www.vetted.example", "EV_SSL", **order).status_code == 200
    sb.vet_client(client_id, "DECLINED")
    assert_error(api.order("www.vetted.example", **order), 400, "clientId")
    assert "ovExpiryDate" not in api.get(f"clients/{client_id}").json()  # only when APPROVED
    assert api.get(own).json()["organizations"][0]["verificationStatus"] == "DECLINED"


def _domains(api, client_id: int) -> dict[str, str]:
    listed = api.get(f"clients/{client_id}/domains", params={"limit": 100}).json()["domains"]
    return {d["domainName"]: d["verificationStatus"] for d in listed}


def test_a_domain_added_to_a_client_is_listed_and_ordered_for_when_approved(api, sb):
    added = sb.add_domain(1, "XN--BCHER-KVA.example.")
    assert added == {
        "clientId": 1,
        "domainName": "xn--bcher-kva.example",
        "verificationStatus": "APPROVED",
    }
    assert _domains(api, 1)["xn--bcher-kva.example"] == "APPROVED"
    assert "xn--bcher-kva.example" not in _domains(api, 2)
    one = api.get("clients/1/domains/xn--bcher-kva.example").json()
    assert one["verificationMethod"] == "DNS" and one["ovEligible"] is True
    assert one["evEligible"] is False
    assert api.order("xn--bcher-kva.example", clientId=1).status_code == 201
    assert_error(api.order("xn--bcher-kva.example", clientId=2), 400)  # another client's

    sb.add_domain(2, "vetting.example", "INITIAL_VERIFICATION", method="EMAIL")
    assert _domains(api, 2)["vetting.example"] == "INITIAL_VERIFICATION"
    assert_error(api.order("www.vetting.example", clientId=2, org="Example Subsidiary Ltd"), 400)
    sb.add_domain(1, "ev.example", ev_eligible=True)
    assert api.get("clients/1/domains/ev.example").json()["evEligible"] is True


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"clientId": 1, "domainName": "example.com"}, 400, "domainName"),  # there already
        ({"clientId": 9, "domainName": "new.example"}, 404, None),
        ({"clientId": "1", "domainName": "new.example"}, 400, "clientId"),
        ({"clientId": 1}, 400, "domainName"),
        ({"clientId": 1, "domainName": "*.new.example"}, 400, "domainName"),
        ({"clientId": 1, "domainName": "not a name"}, 400, "domainName"),
        ({"clientId": 1, "domainName": 7}, 400, "domainName"),
        (
            {"clientId": 1, "domainName": "new.example", "verificationStatus": "OK"},
            400,
            "verificationStatus",
        ),
        (
            {"clientId": 1, "domainName": "new.example", "verificationMethod": "FAX"},
            400,
            "verificationMethod",
        ),
        ({"clientId": 1, "domainName": "new.example", "evEligible": "yes"}, 400, "evEligible"),
        ({"clientId": 1, "domainName": "new.example", "ovEligible": True}, 400, "ovEligible"),
    ],
)
def test_a_domain_added_with_bad_input_changes_nothing(api, sb, body, status, field):
    before = _account(api)
    assert_error(_control(sb, "POST", "domains", body), status, field)
    assert _account(api) == before


def test_a_domain_taken_away_is_no_longer_listed_nor_ordered_for(api, sb):
    assert api.order("www.example.org", clientId=1).status_code == 201
    sb.remove_domain("example.org")
    assert "example.org" not in _domains(api, 1)
    assert_error(api.get("clients/1/domains/example.org"), 404)
    assert_error(api.order("www.example.org", clientId=1), 400)
    # From one client only: the other's stays.
    sb.remove_domain("EXAMPLE.com", client_id=1)
    assert "example.com" not in _domains(api, 1) and "example.com" in _domains(api, 2)
    assert "example.net" in _domains(api, 1)  # the others stay


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("domains/no-such.example", None, 404, None),
        ("domains/subsidiary.example", {"clientId": 1}, 404, None),  # client 2's
        ("domains/example.com", {"clientId": "1"}, 400, "clientId"),
    ],
)
def test_a_domain_hook_refuses_what_it_cannot_find_or_read(api, sb, path, body, status, field):
    before = _account(api)
    assert_error(_control(sb, "DELETE", path, body), status, field)
    assert _account(api) == before


def _products(api) -> list[str]:
    return [i["productType"] for i in api.get("inventories").json()["inventories"]]


def test_a_product_taken_away_is_no_longer_listed_nor_ordered(api, sb):
    assert "WILDCARD_SSL" in _products(api)
    sb.remove_product("WILDCARD_SSL")
    assert "WILDCARD_SSL" not in _products(api) and "STANDARD_SSL" in _products(api)
    sb.remove_product("flex")  # which covers an SSL product without inventory of its own
    assert "FLEX" not in _products(api)
    assert_error(api.order("*.example.com", "WILDCARD_SSL"), 400, "certType")
    before = _products(api)
    assert_error(_control(sb, "DELETE", "products/NO_SUCH_SSL"), 404)
    assert _products(api) == before


def _inventory(api) -> dict[str, dict]:
    return {i["productType"]: i for i in api.get("inventories").json()["inventories"]}


def test_a_product_bought_or_run_out_is_listed_and_ordered_as_such(api, sb):
    sb.remove_product("FLEX")  # which would cover an SSL product run out
    used = _inventory(api)["EV_SSL"]["usedCount"]
    assert sb.set_product("ev_ssl", 0)["remainingCount"] == 0
    assert_error(api.order("www.example.com", "EV_SSL"), 400, "certType")
    sb.set_product("EV_SSL", 1)
    assert api.order("www.example.com", "EV_SSL").status_code == 201
    ev = _inventory(api)["EV_SSL"]
    assert (ev["remainingCount"], ev["usedCount"], ev["totalCount"]) == (0, used + 1, used + 1)
    sb.remove_product("WILDCARD_SSL")
    bought = sb.set_product("WILDCARD_SSL", 3)
    assert bought == {
        "productType": "WILDCARD_SSL",
        "totalCount": 3,
        "remainingCount": 3,
        "usedCount": 0,
        "consumptionType": None,
    }
    assert api.order("*.example.com", "WILDCARD_SSL").status_code == 201
    sb.set_product("CODE_SIGNING", 0, "UNLIMITED")
    assert "consumptionType" in _inventory(api)["CODE_SIGNING"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("products/NO_SUCH_SSL", {"remainingCount": 1}, "productType"),
        ("products/EV_SSL", {}, "remainingCount"),
        ("products/EV_SSL", {"remainingCount": -1}, "remainingCount"),
        ("products/EV_SSL", {"remainingCount": True}, "remainingCount"),
        ("products/EV_SSL", {"remainingCount": "5"}, "remainingCount"),
        ("products/EV_SSL", {"remainingCount": 10**12}, "remainingCount"),
        ("products/EV_SSL", {"remainingCount": 1, "consumptionType": "x"}, "consumptionType"),
        ("products/EV_SSL", {"remainingCount": 1, "totalCount": 9}, "totalCount"),
    ],
)
def test_a_product_set_with_bad_input_changes_nothing(api, sb, path, body, field):
    before = _inventory(api)
    assert_error(_control(sb, "POST", path, body), 400, field)
    assert _inventory(api) == before


def test_a_custom_field_set_up_changed_and_turned_off(api, sb):
    assert api.get("customFields").json()["text3"]["enabled"] is False
    field = sb.set_custom_field("text3", enabled=True, label="Owner team", mandatory="BOTH")
    assert field == {
        "enabled": True,
        "eformVisible": False,
        "label": "Owner team",
        "mandatory": "BOTH",
    }
    assert api.get("customFields").json()["text3"] == field
    refused = assert_error(api.order("www.example.com"), 400, "tracking.customFields.text3")
    assert "Owner team (text3) is required" in refused["errors"][0]["message"]
    sent = {"customFields": {"text3": "platform"}}
    assert api.order("www.example.com", tracking=sent).status_code == 201

    # Made optional in the portal: taken without it.
    sb.set_custom_field("text3", enabled=True, label="Owner team", mandatory="NOT_MANDATORY")
    assert api.order("www.example.com").status_code == 201

    sb.remove_custom_field("text3")
    assert api.get("customFields").json()["text3"] == {
        "enabled": False,
        "eformVisible": False,
        "mandatory": "NOT_MANDATORY",
    }
    assert "text1" in api.get("customFields").json()  # the others stay as they were


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("text3", {"mandatory": "SOMETIMES"}, "mandatory"),
        ("text3", {"enabled": "yes"}, "enabled"),
        ("text3", {"order": True}, "order"),
        ("text3", {"label": "x" * 51}, "label"),
        ("text3", {"options": "a,b"}, "options"),  # a dropdown's only
        ("dropdown2", {"multiline": True}, "multiline"),  # a text field's only
    ],
)
def test_a_custom_field_hook_refuses_bad_settings_and_changes_nothing(api, sb, name, body, field):
    before = api.get("customFields").json()
    assert_error(_control(sb, "POST", f"custom-fields/{name}", body), 400, field)
    assert api.get("customFields").json() == before


def test_a_custom_field_hook_knows_only_the_accounts_field_names(api, sb):
    before = api.get("customFields").json()
    assert_error(_control(sb, "POST", "custom-fields/text16", {"enabled": True}), 404)
    assert_error(_control(sb, "DELETE", "custom-fields/owner"), 404)
    assert api.get("customFields").json() == before


def test_the_account_hooks_answer_no_page_of_another_origin(api, sb):
    before = (_account(api), _products(api), api.get("customFields").json())
    evil = {"Origin": "http://evil.example"}
    calls = [
        ("POST", "organizations", {"clientId": 1, "name": "Evil Corp"}),
        ("DELETE", "organizations", {"clientId": 1, "name": "CertDesk Labs"}),
        ("POST", "clients/2", {"clientName": "Evil Corp"}),
        ("POST", "domains", {"clientId": 1, "domainName": "evil.example"}),
        ("DELETE", "domains/example.com", None),
        ("DELETE", "products/STANDARD_SSL", None),
        ("POST", "custom-fields/text3", {"enabled": True, "mandatory": "BOTH"}),
        ("DELETE", "custom-fields/text1", None),
    ]
    for method, path, body in calls:
        assert _control(sb, method, path, body, headers=evil).status_code == 403, path
    after = (_account(api), _products(api), api.get("customFields").json())
    assert after == before
