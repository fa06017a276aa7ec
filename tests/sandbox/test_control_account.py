"""The control hooks that change the account as Entrust's portal would: an organization or a
product taken away, a custom field set up, changed or turned off. The ECS API then answers as
the changed account."""

from __future__ import annotations

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
    before = (api.get("organizations").json(), _products(api), api.get("customFields").json())
    evil = {"Origin": "http://evil.example"}
    calls = [
        ("DELETE", "organizations", {"clientId": 1, "name": "CertDesk Labs"}),
        ("DELETE", "products/STANDARD_SSL", None),
        ("POST", "custom-fields/text3", {"enabled": True, "mandatory": "BOTH"}),
        ("DELETE", "custom-fields/text1", None),
    ]
    for method, path, body in calls:
        assert _control(sb, method, path, body, headers=evil).status_code == 403, path
    after = (api.get("organizations").json(), _products(api), api.get("customFields").json())
    assert after == before
