"""Admin > Settings: admins only, validated, audited, applied at once."""

from __future__ import annotations

import html
import json
import re

import pytest
from sqlalchemy import select

from tests.conftest import _client_as
from webapp.audit.models import AuditEvent
from webapp.catalog import service as catalog
from webapp.credentials import clients, service
from webapp.extensions import db
from webapp.orders import importing
from webapp.settings import service as settings


def test_only_admins(operator_client, auditor_client, admin_client):
    assert operator_client.get("/admin/settings/").status_code == 403
    assert auditor_client.get("/admin/settings/").status_code == 403
    page = admin_client.get("/admin/settings/").get_data(as_text=True)
    for label in (
        "Sync interval",
        "Order-status poll interval",
        "request budget",
        "Connect timeout",
        "Read timeout",
        "Default HTTPS proxy",
    ):
        assert label in page
    assert 'for="catalog-sync_interval_hours"' in page


def test_save_is_audited_and_applies_at_once(app, admin_client, user):
    values = {k: settings.get(k) for k in settings.REGISTRY}
    values.update({clients.READ_TIMEOUT: "7", clients.DEFAULT_PROXY: "http://proxy:3128"})
    resp = admin_client.post("/admin/settings/", data=values)
    assert resp.status_code == 303
    db.session.expire_all()
    assert settings.get(clients.READ_TIMEOUT) == 7
    event = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "settings.update")
    ).scalar_one()
    detail = json.loads(event.detail)
    assert set(detail) == {clients.READ_TIMEOUT, clients.DEFAULT_PROXY}
    cred, _ = service.create(
        user["admin"],
        service.CredentialInput(name="A", api_user="u", api_key="k", base_url="https://x.example/"),
        start_sync=False,
    )
    client = clients.client_for(cred)
    assert client.read_timeout == 7
    assert client._session.proxies["https"] == "http://proxy:3128"


def test_invalid_values_change_nothing(admin_client):
    resp = admin_client.post(
        "/admin/settings/",
        data={
            catalog.SYNC_INTERVAL_HOURS: "0",
            clients.READ_TIMEOUT: "abc",
            clients.CONNECT_TIMEOUT: "5",
        },
    )
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "At least 1." in body and "Enter a whole number." in body
    assert 'aria-invalid="true"' in body
    db.session.expire_all()
    assert settings.get(clients.CONNECT_TIMEOUT) == 10
    assert (
        db.session.execute(select(AuditEvent).where(AuditEvent.action == "settings.update")).first()
        is None
    )


@pytest.mark.parametrize("typed", ["1_5", "٣", "１２", "1e2", "15.0", " ", "9" * 40])
def test_a_number_in_other_digits_or_forms_is_refused(admin_client, typed):
    resp = admin_client.post("/admin/settings/", data={clients.READ_TIMEOUT: typed})
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "Enter a whole number." in body, typed
    db.session.expire_all()
    assert settings.get(clients.READ_TIMEOUT) == settings.REGISTRY[clients.READ_TIMEOUT].default
    assert not db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "settings.update")
    ).first()


def test_scheduled_import_is_off_by_default_validated_and_audited(admin_client):
    key = importing.IMPORT_INTERVAL_HOURS
    page = admin_client.get("/admin/settings/").get_data(as_text=True)
    assert "Scheduled Import Existing Orders (hours)" in page and "0 = off" in page
    assert settings.get(key) == 0
    for bad, said in (("-1", "At least 0."), ("721", "At most 720."), ("2.5", "whole number")):
        values = {k: settings.get(k) for k in settings.REGISTRY}
        values[key] = bad
        resp = admin_client.post("/admin/settings/", data=values)
        assert resp.status_code == 422 and said in resp.get_data(as_text=True), bad
        db.session.expire_all()
        assert settings.get(key) == 0
    audited = select(AuditEvent).where(AuditEvent.action == "settings.update")
    assert db.session.execute(audited).first() is None
    values = {k: settings.get(k) for k in settings.REGISTRY}
    values[key] = "12"
    assert admin_client.post("/admin/settings/", data=values).status_code == 303
    db.session.expire_all()
    assert settings.get(key) == 12
    event = db.session.execute(audited).scalar_one()
    assert json.loads(event.detail) == {key: {"from": 0, "to": 12}}


def test_a_proxy_password_is_refused_not_stored(admin_client):
    values = {k: settings.get(k) for k in settings.REGISTRY}
    values[clients.DEFAULT_PROXY] = "http://u:secretpw@proxy:3128"
    resp = admin_client.post("/admin/settings/", data=values)
    assert resp.status_code == 422 and "must not contain a password" in resp.get_data(True)
    # The form comes back with the address, but not with the password.
    assert "secretpw" not in resp.get_data(True)
    assert 'value="http://u:***@proxy:3128"' in resp.get_data(True)
    db.session.expire_all()
    assert settings.get(clients.DEFAULT_PROXY) == ""


def test_a_proxy_url_with_no_usable_port_is_refused_not_stored(admin_client):
    """A port past 65535, or an address cut short, is refused at once: stored, it would fail
    every later sync and import with a parser's message instead."""
    for bad in ("http://proxy.example.com:99999", "http://proxy.example.com:0", "http://[::1"):
        values = {k: settings.get(k) for k in settings.REGISTRY}
        values[clients.DEFAULT_PROXY] = bad
        resp = admin_client.post("/admin/settings/", data=values)
        body = resp.get_data(as_text=True)
        assert resp.status_code == 422, bad
        assert "a port from 1 to 65535" in body, bad
        db.session.expire_all()
        assert settings.get(clients.DEFAULT_PROXY) == ""
    good = {k: settings.get(k) for k in settings.REGISTRY}
    good[clients.DEFAULT_PROXY] = "http://[::1]:3128"
    assert admin_client.post("/admin/settings/", data=good).status_code == 303


def _opened(client) -> dict:
    """The Settings form as a browser would send it untouched: every setting as shown, and the
    values it was opened with."""
    page = client.get("/admin/settings/").get_data(as_text=True)
    opened = {
        "opened:" + key: html.unescape(raw)
        for key, raw in re.findall(r'name="opened:([^"]+)" value="([^"]*)"', page)
    }
    assert set(opened) == {"opened:" + k for k in settings.REGISTRY}
    shown = {k: json.loads(opened["opened:" + k]) for k in settings.REGISTRY}
    return {
        **opened,
        **{k: ("1" if v else "0") if v in (True, False) else v for k, v in shown.items()},
    }


def test_a_save_keeps_a_setting_someone_else_changed_after_the_form_was_opened(app):
    """Two administrators (or two tabs) have Settings open: each one's save stores only what that
    form changed, not the other settings as that form showed them before the other's save."""
    first, second = _client_as(app, "admin"), _client_as(app, "admin")
    mine, theirs = _opened(first), _opened(second)
    mine[clients.READ_TIMEOUT] = "7"
    assert first.post("/admin/settings/", data=mine).status_code == 303
    theirs[clients.DEFAULT_PROXY] = "http://proxy:3128"
    assert second.post("/admin/settings/", data=theirs).status_code == 303
    db.session.expire_all()
    assert settings.get(clients.READ_TIMEOUT) == 7
    assert settings.get(clients.DEFAULT_PROXY) == "http://proxy:3128"
    events = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "settings.update").order_by(AuditEvent.seq)
    ).scalars()
    assert [set(json.loads(e.detail)) for e in events] == [
        {clients.READ_TIMEOUT},
        {clients.DEFAULT_PROXY},
    ]


def test_one_setting_changed_in_two_forms_at_once_is_refused_the_second_time(app):
    first, second = _client_as(app, "admin"), _client_as(app, "admin")
    mine, theirs = _opened(first), _opened(second)
    mine[clients.READ_TIMEOUT] = "7"
    assert first.post("/admin/settings/", data=mine).status_code == 303
    theirs.update({clients.READ_TIMEOUT: "9", clients.CONNECT_TIMEOUT: "5"})
    refused = second.post("/admin/settings/", data=theirs)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 409
    assert "Changed to 7 after this form was opened" in page and "nothing was saved" in page
    db.session.expire_all()
    assert (settings.get(clients.READ_TIMEOUT), settings.get(clients.CONNECT_TIMEOUT)) == (7, 10)
    # Shown again with what was typed, opened anew at the stored value: sent again, it is saved.
    again = {
        "opened:" + key: html.unescape(raw)
        for key, raw in re.findall(r'name="opened:([^"]+)" value="([^"]*)"', page)
    }
    assert json.loads(again["opened:" + clients.READ_TIMEOUT]) == 7
    assert json.loads(again["opened:" + clients.CONNECT_TIMEOUT]) == 10
    assert 'value="9"' in page and 'value="5"' in page
    theirs.update(again)
    assert second.post("/admin/settings/", data=theirs).status_code == 303
    db.session.expire_all()
    assert (settings.get(clients.READ_TIMEOUT), settings.get(clients.CONNECT_TIMEOUT)) == (9, 5)
