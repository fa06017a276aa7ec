"""SSL > Entrust's actions on orders, as pages: the guide's names in the menu (disabled with the
reason for a role that may not), each page disabled-with-reason where the order's status does not
allow an action, roles, CSRF, errors next to their fields with 422, confirmations before Revoke and
Delete, and whole flows through the pages against the sandbox."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
import requests
from sqlalchemy import delete, func, select
from werkzeug.datastructures import MultiDict

from tests.conftest import link_sandbox
from tests.helpers import HTMX, make_order
from webapp.certificates.models import Certificate
from webapp.credentials.models import EcsCredential
from webapp.csrs import service as csrs
from webapp.dbtypes import utcnow
from webapp.extensions import db
from webapp.orders import checks, placing
from webapp.orders.models import Order, OrderEvent
from webapp.settings import service as settings


def _count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.fixture
def orders(app):
    return {
        "active": make_order(
            "5000010",
            "ACTIVE",
            "issued",
            common_name="www.example.com",
            sans="www.example.com,example.com",
            product="STANDARD_SSL",
            serial="0A1B2C",
        ),
        "pending": make_order("5000011", "PENDING", "pending", common_name="queue.example.com"),
        "lost": make_order(
            None,
            "",
            "",
            placement="unknown",
            common_name="lost.example.com",
            request_id="certdesk:lost",
        ),
    }


def _text(resp) -> str:
    return resp.get_data(as_text=True)


# --- the menu and the order page ------------------------------------------------------------------


def test_the_menu_carries_the_guides_names_and_each_role_its_own(
    admin_client, operator_client, auditor_client, orders
):
    page = _text(admin_client.get("/entrust/"))
    for label, path in (
        ("Update Certificate Status", "/entrust/status"),
        ("Reissue Certificate", "/entrust/reissue"),
        ("Renew Certificate", "/entrust/renew"),
        ("Revoke Certificate", "/entrust/revoke"),
        ("Delete", "/entrust/delete"),
    ):
        assert f'formaction="{path}"' in page and label in page
    page = _text(operator_client.get("/entrust/"))
    assert 'formaction="/entrust/reissue"' in page and 'formaction="/entrust/renew"' in page
    for path in ("/entrust/status", "/entrust/revoke", "/entrust/delete"):
        assert f'formaction="{path}"' not in page
    assert "Update Certificate Status, Revoke Certificate and Delete are for administrators" in page
    assert "an administrator can let operators use Update Certificate Status" in page
    assert page.count("Administrators only") == 3
    assert "Reissue Certificate" not in _text(auditor_client.get("/entrust/"))


def test_an_order_page_says_which_actions_are_for_administrators(
    admin_client, operator_client, orders
):
    """An operator on an order's page, looking for Update Certificate Status or Revoke
    Certificate by the guide's names, learns why they are not there, and whom to ask."""
    path = f"/entrust/{orders['pending'].id}"
    page = _text(operator_client.get(path))
    note = re.search(r'<p class="muted small" id="menu-roles">(.*?)</p>', page, re.S).group(1)
    assert note == (
        "Update Certificate Status, Revoke Certificate and Delete are for administrators; an "
        "administrator can let operators use Update Certificate Status (Admin › Settings)."
    )
    assert 'id="menu-roles"' not in _text(admin_client.get(path))
    from webapp.orders import service

    settings.put(service.OPERATORS_UPDATE_STATUS, True)
    db.session.commit()
    page = _text(operator_client.get(path))
    assert f'href="{path}/status"' in page
    note = re.search(r'<p class="muted small" id="menu-roles">(.*?)</p>', page, re.S).group(1)
    assert note == "Revoke Certificate and Delete are for administrators."


def test_an_order_page_offers_what_its_status_allows_and_says_why_not(admin_client, orders):
    page = _text(admin_client.get(f"/entrust/{orders['pending'].id}"))
    assert f'href="/entrust/{orders["pending"].id}/status"' in page  # approve, decline
    assert "Reissue applies to ACTIVE or READY orders; this one is PENDING." in page
    assert "Revoke applies to ACTIVE, READY or SUSPENDED orders; this one is PENDING." in page
    assert 'id="reissue"' in page and f'href="/entrust/{orders["pending"].id}/reissue"' not in page
    page = _text(admin_client.get(f"/entrust/{orders['active'].id}"))
    for what in ("status", "reissue", "renew", "revoke", "delete"):
        assert f'href="/entrust/{orders["active"].id}/{what}"' in page
    assert "Approve and Decline apply to PENDING orders; this one is ACTIVE." in page
    page = _text(admin_client.get(f"/entrust/{orders['lost'].id}"))
    assert "CertDesk is still checking with Entrust whether this order was placed." in page
    assert f'href="/entrust/{orders["lost"].id}/delete"' in page  # Delete is always offered


def test_an_order_past_its_expiry_is_offered_what_entrust_allows_an_expired_one(
    admin_client, orders
):
    """Entrust turns an issued certificate EXPIRED by itself once its time is up; until
    CertDesk's next status check reads that, the order still says ACTIVE. Its actions are
    those of an expired certificate already: Renew, not Reissue, Suspend or Revoke (Entrust
    would refuse them), each saying why; nothing is sent."""
    row = orders["active"]
    row.issued_at = utcnow() - timedelta(days=400)
    row.expires_at = utcnow() - timedelta(hours=2)
    db.session.commit()
    day = f"{row.expires_at:%Y-%m-%d %H:%M} UTC"
    page = _text(admin_client.get(f"/entrust/{row.id}"))
    assert f'href="/entrust/{row.id}/renew"' in page
    for what in ("reissue", "revoke"):
        assert f'href="/entrust/{row.id}/{what}"' not in page
    assert (
        "Reissue applies to ACTIVE or READY orders; this one is EXPIRED "
        f"(its certificate expired on {day})." in page
    )
    page = _text(admin_client.get(f"/entrust/{row.id}/status"))
    assert 'disabled formaction="/entrust/status?action=suspend"' in page
    resp = admin_client.post(f"/entrust/{row.id}/reissue", data={"csr_source": "certdesk"})
    assert resp.status_code == 422 and "this one is EXPIRED" in _text(resp)
    assert _count(Order) == 3  # nothing placed
    # Suspended, the same: Resume is refused as Entrust would.
    row.status, row.phase = "SUSPENDED", "suspended"
    db.session.commit()
    page = _text(admin_client.get(f"/entrust/{row.id}/status"))
    assert 'disabled formaction="/entrust/status?action=resume"' in page
    assert "Resume applies to SUSPENDED orders; this one is EXPIRED" in page
    # Before its expiry, the same order is offered them all.
    row.status, row.phase = "ACTIVE", "issued"
    row.expires_at = utcnow() + timedelta(hours=2)
    db.session.commit()
    page = _text(admin_client.get(f"/entrust/{row.id}"))
    for what in ("reissue", "renew", "revoke"):
        assert f'href="/entrust/{row.id}/{what}"' in page


# --- Update Certificate Status --------------------------------------------------------------------


def _shown(client, action: str, ids):
    """An action's page opened from the list: its POST of the ticked boxes, then the page."""
    resp = client.post(action, data={"order": ids, "next": "/entrust/"})
    assert resp.status_code == 303, _text(resp)
    return client.get(resp.headers["Location"])


def test_the_status_page_from_the_list_shows_each_order_and_the_buttons(admin_client, orders):
    ids = [orders["active"].id, orders["pending"].id]
    # The list posts the ticked boxes; the page is shown at an address of its own, which Back,
    # Forward and Reload reach without asking to send a form again.
    resp = admin_client.post("/entrust/status", data={"order": ids, "next": "/entrust/?q=w"})
    own = f"/entrust/status?order={ids[0]}&order={ids[1]}&next=%2Fentrust%2F%3Fq%3Dw"
    assert resp.status_code == 303 and resp.headers["Location"] == own
    resp = admin_client.get(own)
    page = _text(resp)
    assert resp.status_code == 200 and "www.example.com" in page and "queue.example.com" in page
    assert "<title>Update Certificate Status: 2 orders · CertDesk</title>" in page
    assert '<input type="hidden" name="next" value="/entrust/?q=w">' in page
    for action in ("approve", "decline", "suspend"):
        assert f'formaction="/entrust/status?action={action}" id="action-{action}"' in page
    # Suspending makes certificates untrusted, and declining cannot be undone: both ask first.
    for action in ("decline", "suspend"):
        button = re.search(f'<button[^>]*id="action-{action}"[^>]*>', page).group(0)
        assert "data-confirm=" in button, button
    # Resume: no selected order is suspended, so it is disabled with the reason.
    assert 'disabled formaction="/entrust/status?action=resume" id="action-resume"' in page
    assert "None of the selected orders allows it" in page
    assert "Resume applies to SUSPENDED orders" in page
    # One order on its own: the reason is its own.
    page = _text(admin_client.get(f"/entrust/{orders['active'].id}/status"))
    assert "Approve applies to PENDING orders; this one is ACTIVE." in page
    name = orders["active"].display_name
    assert f"<title>Update Certificate Status: {name} · CertDesk</title>" in page
    for path, title in (("revoke", "Revoke Certificate"), ("reissue", "Reissue Certificate")):
        other = _text(admin_client.get(f"/entrust/{orders['active'].id}/{path}"))
        assert f"<title>{title}: {name} · CertDesk</title>" in other, path
    assert 'disabled formaction="/entrust/status?action=approve"' in page
    # htmx: the block alone.
    block = _text(admin_client.get(f"/entrust/{orders['active'].id}/status", headers=HTMX))
    assert "<html" not in block and 'id="status-form"' in block


def test_revoke_and_delete_from_the_list_are_shown_at_their_own_address(admin_client, orders):
    ids = [orders["active"].id]
    for action in ("revoke", "delete"):
        page = _text(_shown(admin_client, f"/entrust/{action}", ids))
        assert "www.example.com" in page and 'name="step"' in page
    # More ticked than an address holds (a select-all of many pages): shown from the POST.
    many = ids + list(range(10**6, 10**6 + 200))
    resp = admin_client.post("/entrust/delete", data={"order": many})
    assert resp.status_code == 200 and "www.example.com" in _text(resp)


def test_status_needs_orders_a_decline_reason_and_an_admin(
    admin_client, operator_client, auditor_client, orders
):
    resp = admin_client.post("/entrust/status", data={"next": "/entrust/"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/entrust/"
    assert "select the orders first" in _text(admin_client.get("/entrust/"))
    resp = admin_client.post(
        "/entrust/status?action=decline", data={"order": orders["pending"].id, "reason": ""}
    )
    assert resp.status_code == 422
    assert 'id="reason-error"' in _text(resp) and "Enter the reason for declining" in _text(resp)
    assert db.session.get(Order, orders["pending"].id).status == "PENDING"
    assert operator_client.get(f"/entrust/{orders['active'].id}/status").status_code == 403
    assert auditor_client.post("/entrust/status", data={"order": 1}).status_code == 403
    resp = admin_client.post(
        "/entrust/status?action=suspend", data={"order": orders["active"].id}, csrf=False
    )
    assert resp.status_code == 400  # no CSRF token


def test_operators_update_the_status_when_admin_settings_say_so(operator_client, orders):
    from webapp.orders import service

    assert operator_client.get(f"/entrust/{orders['active'].id}/status").status_code == 403
    settings.put(service.OPERATORS_UPDATE_STATUS, True)
    db.session.commit()
    assert operator_client.get(f"/entrust/{orders['active'].id}/status").status_code == 200
    page = _text(operator_client.get("/entrust/"))
    assert 'formaction="/entrust/status"' in page
    assert operator_client.get(f"/entrust/{orders['active'].id}/revoke").status_code == 403


def test_an_operator_never_approves_an_order_they_placed(operator_client, orders):
    from webapp.audit.models import AuditEvent
    from webapp.auth.models import User
    from webapp.orders import service

    settings.put(service.OPERATORS_UPDATE_STATUS, True)
    me = db.session.execute(select(User).filter_by(username="operator")).scalar_one()
    admin = db.session.execute(select(User).filter_by(username="admin")).scalar_one()
    mine = make_order("5000012", "PENDING", "pending", common_name="mine.example.com")
    mine.placed_by_id = me.id
    orders["pending"].placed_by_id = admin.id
    db.session.commit()
    page = _text(operator_client.get(f"/entrust/{mine.id}/status"))
    assert 'disabled formaction="/entrust/status?action=approve"' in page
    assert "You placed this order, so another user must approve it" in page
    assert 'formaction="/entrust/status?action=decline" id="action-decline"' in page  # withdraw
    # Someone else's order: Approve is offered.
    page = _text(operator_client.get(f"/entrust/{orders['pending'].id}/status"))
    assert 'formaction="/entrust/status?action=approve" id="action-approve"' in page
    # Both selected: Approve is offered for the other's, and the operator's own says why not.
    ids = [mine.id, orders["pending"].id]
    page = _text(_shown(operator_client, "/entrust/status", ids))
    assert 'formaction="/entrust/status?action=approve" id="action-approve"' in page
    assert page.count("You placed this order, so another user must approve it") == 1
    # The operator's own with one that is not pending: Approve is disabled, and says why.
    ids = [mine.id, orders["active"].id]
    page = _text(_shown(operator_client, "/entrust/status", ids))
    assert 'disabled formaction="/entrust/status?action=approve"' in page
    why = page.split('id="why-approve">')[1].split("</small>")[0]
    assert why == "You placed the selected orders that allow it, so another user must approve them."
    # Posted anyway: refused before Entrust is asked, recorded, nothing changed.
    resp = operator_client.post("/entrust/status?action=approve", data={"order": mine.id})
    assert resp.status_code == 200
    assert "You placed this order, so another user must approve it" in _text(resp)
    db.session.expire_all()
    assert db.session.get(Order, mine.id).status == "PENDING"
    event = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "order.approve")
    ).scalar_one()
    assert event.outcome == "refused" and event.object_id == str(mine.id)


def test_a_credential_without_admin_rights_and_no_other_says_to_use_the_entrust_portal(
    admin_client, orders
):
    cred = db.session.get(EcsCredential, orders["active"].credential_id)
    cred.is_admin = False
    db.session.commit()
    page = _text(admin_client.get(f"/entrust/{orders['active'].id}/status"))
    assert "Without administrator rights: <strong>Stand-in</strong>" in page
    assert "must be approved, declined, suspended or resumed by an Entrust administrator" in page
    assert 'name="credential_id"' not in page
    # So nothing is offered that cannot work: every button is disabled, and says why.
    ids = [orders["active"].id, orders["pending"].id]
    page = _text(_shown(admin_client, "/entrust/status", ids))
    for action in ("approve", "decline", "suspend", "resume"):
        assert f'disabled formaction="/entrust/status?action={action}"' in page, action
    assert "an Entrust administrator must do this in the Entrust portal" in page  # the rows
    # Said once above the buttons; each button says it in short.
    assert page.count("must be approved, declined, suspended or resumed by an Entrust") == 1
    for action in ("approve", "decline", "suspend", "resume"):
        why = page.split(f'id="why-{action}">')[1].split("</small>")[0]
        assert why == "Needs a credential with Entrust administrator rights (see above).", why
    assert "<strong>Approve" not in page and "<strong>Suspend" not in page  # what can be done


# --- Reissue, Renew -------------------------------------------------------------------------------


def test_reissue_and_renew_from_the_list_take_one_order(operator_client, orders):
    ids = [orders["active"].id, orders["pending"].id]
    resp = operator_client.post(
        "/entrust/reissue", data={"order": ids, "next": "/entrust/?status=ACTIVE"}
    )
    assert resp.status_code == 303
    # Back to the list as it was, with the orders ticked as they were, to untick one.
    back = resp.headers["Location"]
    assert back.startswith("/entrust/?status=ACTIVE&")
    page = _text(operator_client.get(back))
    assert "takes one order at a time" in page
    assert f'name="order" value="{orders["active"].id}" checked' in page
    resp = operator_client.post("/entrust/reissue", data={"order": ids, "next": "/entrust/"})
    page = _text(operator_client.get(resp.headers["Location"]))
    for order_id in ids:
        assert f'name="order" value="{order_id}" checked' in page
    assert page.count('name="order" value=') > page.count(" checked aria-label")
    resp = operator_client.post("/entrust/renew", data={"order": [orders["active"].id]})
    assert resp.headers["Location"] == f"/entrust/{orders['active'].id}/renew"


def test_the_reissue_form_is_prefilled_and_explains_what_happens(
    operator_client, auditor_client, orders
):
    row = orders["active"]
    page = _text(operator_client.get(f"/entrust/{row.id}/reissue"))
    assert "<h1>Reissue Certificate</h1>" in page
    assert "Entrust revokes the original certificate" in page
    assert "The expiry stays the same" in page and "new key pair" in page
    assert "www.example.com\nexample.com</textarea>" in page  # SANs from the order
    for label in ("CSR", "Private Key", "Signature Algorithm", "Extended Key Usage", "SANs"):
        assert label in page
    assert 'value="keep"' not in page  # a reissue takes a new CSR
    resp = operator_client.post(f"/entrust/{row.id}/reissue", data={"csr_source": "certdesk"})
    assert resp.status_code == 422 and 'id="csr_id-error"' in _text(resp)
    assert _count(Order) == 3
    assert auditor_client.get(f"/entrust/{row.id}/reissue").status_code == 403


def test_a_reissue_sent_with_several_problems_names_them_all_at_once(operator_client, orders):
    row = orders["active"]
    resp = operator_client.post(
        f"/entrust/{row.id}/reissue",
        data={
            "csr_source": "certdesk",
            "eku": "NO_SUCH_EKU",
            "signature_algorithm": "MD5",
            "requester_email": "not an address",
        },
    )
    page = _text(resp)
    assert resp.status_code == 422
    for field in ("csr_id", "eku", "signature_algorithm", "requester_email"):
        assert f'id="{field}-error"' in page, field
    assert _count(Order) == 3


def test_a_private_key_pasted_as_the_csr_is_never_shown_again(operator_client, orders):
    from tests.unit.certs.factory import ec_key, key_pem

    secret = key_pem(ec_key()).decode()
    for what in ("reissue", "renew"):
        resp = operator_client.post(
            f"/entrust/{orders['active'].id}/{what}",
            data={"csr_source": "paste", "csr_text": secret},
        )
        page = _text(resp)
        assert resp.status_code == 422 and "This is a private key, not a CSR" in page, what
        assert secret.split("-----")[2] not in page
    assert _count(Order) == 3


def test_a_private_key_in_any_shape_pasted_as_the_csr_is_never_shown_again(operator_client, orders):
    from tests.unit.certs.factory import pasted_private_keys

    for shape, (secret, material) in pasted_private_keys().items():
        for what in ("reissue", "renew"):
            resp = operator_client.post(
                f"/entrust/{orders['active'].id}/{what}",
                data={"csr_source": "paste", "csr_text": secret},
            )
            page = _text(resp)
            assert not [m for m in material if m in page], (shape, what)
            assert resp.status_code == 422 and 'id="csr-error"' in page, (shape, what)
            assert "This is a private key, not a CSR" in page, (shape, what)
    assert _count(Order) == 3


def test_the_reissue_and_renew_forms_keep_the_request_id_they_were_shown_with(
    operator_client, orders
):
    row = orders["active"]
    for what in ("reissue", "renew"):
        page = _text(operator_client.get(f"/entrust/{row.id}/{what}"))
        found = re.search(r'name="request_id" value="(certdesk:[0-9a-f-]{36})"', page)
        assert found, f"the {what} form carries no request id"
        resp = operator_client.post(
            f"/entrust/{row.id}/{what}",
            data={"csr_source": "certdesk", "request_id": found.group(1)},
        )
        assert resp.status_code == 422  # shown again: the same form, the same request id
        assert f'name="request_id" value="{found.group(1)}"' in _text(resp)


def test_a_code_signing_order_is_revoked_here_but_reissued_and_renewed_in_the_portal(
    operator_client, admin_client
):
    """The order page and the Reissue and Renew forms say why CertDesk does not send them (not
    that Entrust would refuse), with the submit button off; Revoke stays on offer."""
    row = make_order("5000012", "ACTIVE", "issued", common_name="Acme", product="CODE_SIGNING")
    portal = "reissue or renew this CODE_SIGNING certificate in the Entrust portal"
    for what in ("reissue", "renew"):
        page = _text(operator_client.get(f"/entrust/{row.id}/{what}"))
        assert "This cannot be done now." in page and portal in page
        assert "Entrust will refuse" not in page
        assert 'id="successor-submit" disabled' in page
        resp = operator_client.post(f"/entrust/{row.id}/{what}", data={"csr_source": "certdesk"})
        assert resp.status_code == 422 and portal in _text(resp)
    page = _text(operator_client.get(f"/entrust/{row.id}"))
    assert portal in page
    assert f'href="/entrust/{row.id}/reissue"' not in page
    assert f'href="/entrust/{row.id}/renew"' not in page
    assert f"/entrust/{row.id}/revoke" in _text(admin_client.get(f"/entrust/{row.id}"))


def test_renew_warns_before_submitting_when_entrust_will_refuse(operator_client, orders):
    row = orders["active"]
    row.issued_at = utcnow() - timedelta(days=3)
    db.session.commit()
    page = _text(operator_client.get(f"/entrust/{row.id}/renew"))
    assert "This cannot be done now." in page and "at least 30 days old" in page
    ready = (row.issued_at + timedelta(days=30)).strftime("%Y-%m-%d")
    assert f"can be renewed from {ready}" in page
    assert 'id="successor-submit" disabled' in page
    assert 'value="keep" checked' in page and 'name="expires_on"' in page
    page = _text(operator_client.get(f"/entrust/{row.id}"))
    assert f'href="/entrust/{row.id}/renew"' not in page and "at least 30 days old" in page
    resp = operator_client.post(f"/entrust/{row.id}/renew", data={"csr_source": "keep"})
    assert resp.status_code == 422 and "at least 30 days old" in _text(resp)


def test_renewing_an_expired_certificate_does_not_say_it_stays_valid(operator_client, orders):
    """Entrust renews an EXPIRED certificate too: the page says it expired, not that it "stays
    valid until it expires" on a day gone by."""
    row = make_order(
        "5000020",
        "EXPIRED",
        "expired",
        common_name="old.example.com",
        product="STANDARD_SSL",
        issued_at=utcnow() - timedelta(days=400),
        expires_at=utcnow() - timedelta(days=2),
    )
    day = row.expires_at.strftime("%Y-%m-%d")
    page = _text(operator_client.get(f"/entrust/{row.id}/renew"))
    assert f"The current certificate expired on {day}." in page
    assert "stays valid" not in page
    assert re.search(r'<span class="muted">expired <time datetime="[^"]+">', page)
    # One that has not expired yet still says it stays valid until then.
    live = orders["active"]
    live.issued_at = utcnow() - timedelta(days=40)
    live.expires_at = utcnow() + timedelta(days=20)
    db.session.commit()
    page = _text(operator_client.get(f"/entrust/{live.id}/renew"))
    day = live.expires_at.strftime("%Y-%m-%d")
    assert f"stays valid until it expires on {day}" in page
    assert re.search(r'<span class="muted">expires <time datetime="[^"]+">', page)


# --- Revoke ---------------------------------------------------------------------------------------


def test_revoke_asks_a_reason_then_names_the_certificate_and_says_it_cannot_be_undone(
    admin_client, operator_client, orders
):
    row = orders["active"]
    page = _text(admin_client.get(f"/entrust/{row.id}/revoke"))
    assert '<option value="unspecified"' in page and '<option value="keyCompromise"' in page
    assert '<label for="reason">Revocation Reason</label>' in page  # the guide's label
    assert "superseded" not in page
    resp = admin_client.post(
        "/entrust/revoke", data={"order": row.id, "step": "confirm", "reason": "superseded"}
    )
    assert resp.status_code == 422 and 'id="reason-error"' in _text(resp)
    resp = admin_client.post(
        "/entrust/revoke",
        data={"order": row.id, "step": "confirm", "reason": "keyCompromise", "comment": "stolen"},
    )
    page = _text(resp)
    assert resp.status_code == 200 and "This cannot be undone." in page
    assert "5000010" in page and "www.example.com" in page and "0A1B2C" in page
    assert "Key compromise" in page and 'name="step" value="revoke"' in page
    assert db.session.get(Order, row.id).status == "ACTIVE"  # nothing done yet
    assert operator_client.get(f"/entrust/{row.id}/revoke").status_code == 403


def test_a_comment_too_long_is_refused_with_its_real_length(admin_client, orders):
    row = orders["active"]
    data = {"order": row.id, "step": "confirm", "reason": "keyCompromise", "comment": "x" * 21000}
    resp = admin_client.post("/entrust/revoke", data=data)
    assert resp.status_code == 422
    assert "The comment is 21,000 characters long; at most 500 fit." in _text(resp)
    assert db.session.get(Order, row.id).status == "ACTIVE"


def test_revokes_question_has_the_focus_when_the_page_comes_back_to_ask(admin_client, orders):
    row = orders["active"]
    first = _text(admin_client.get(f"/entrust/{row.id}/revoke"))
    assert "autofocus" not in first
    data = {"order": row.id, "step": "confirm", "reason": "unspecified"}
    page = _text(admin_client.post("/entrust/revoke", data=data))
    assert page.count("autofocus") == 1
    assert re.search(r'<article [^>]*id="revoke-confirm"[^>]* tabindex="-1" autofocus>', page)


def test_revoke_and_status_pages_lead_back_where_they_were_opened(admin_client, orders):
    row = orders["active"]
    back = f'<a href="/entrust/{row.id}">&larr; Back to the order</a>'
    for what in ("revoke", "status"):
        page = _text(admin_client.get(f"/entrust/{row.id}/{what}"))
        assert back in page and f'name="next" value="/entrust/{row.id}"' in page
    # The confirmation carries it on: Cancel returns to the order.
    confirm = {"order": row.id, "step": "confirm", "reason": "unspecified"}
    page = _text(
        admin_client.post("/entrust/revoke", data={**confirm, "next": f"/entrust/{row.id}"})
    )
    assert f'href="/entrust/{row.id}">Cancel</a>' in page
    # From the list, filtered: back to that list, never to another site.
    listed = "/entrust/?status=ACTIVE&amp;sort=cn"
    page = _text(
        admin_client.post("/entrust/revoke", data={**confirm, "next": listed.replace("&amp;", "&")})
    )
    assert f'<a href="{listed}">&larr; SSL › Entrust</a>' in page
    assert f'href="{listed}">Cancel</a>' in page
    page = _text(admin_client.post("/entrust/revoke", data={**confirm, "next": "//evil.example"}))
    assert "evil.example" not in page and 'href="/entrust/">Cancel</a>' in page


def test_more_revocation_reasons_when_the_account_accepts_them(admin_client, orders):
    from webapp.cas import registry

    settings.put(registry.ENTRUST_ALL_REVOCATION_REASONS, True)
    db.session.commit()
    page = _text(admin_client.get(f"/entrust/{orders['active'].id}/revoke"))
    for code in ("superseded", "affiliationChanged", "cessationOfOperation"):
        assert f'<option value="{code}"' in page


# --- Delete ---------------------------------------------------------------------------------------


def test_delete_confirms_then_deletes_from_certdesk_only(admin_client, operator_client, orders):
    row = orders["active"]
    page = _text(admin_client.get(f"/entrust/{row.id}/delete"))
    assert "stays in SSL › Certificates" in page and "stays in Entrust" in page
    # Opened from the order's page, it leads back there (its link and Cancel), as the other
    # actions do; a deleted order's page is gone, so a delete ends on the list.
    back = f"/entrust/{row.id}"
    assert f'<a href="{back}">&larr; Back to the order</a>' in page
    assert f'<a role="button" class="secondary outline" href="{back}">Cancel</a>' in page
    assert operator_client.get(f"/entrust/{row.id}/delete").status_code == 403
    resp = admin_client.post(
        "/entrust/delete", data={"order": row.id, "step": "delete", "next": back}
    )
    assert resp.status_code == 422 and 'id="confirm-error"' in _text(resp)
    assert f'href="{back}">Cancel</a>' in _text(resp)
    assert db.session.get(Order, row.id) is not None
    # An order whose placing is not settled needs its own confirmation.
    lost = orders["lost"]
    page = _text(admin_client.get(f"/entrust/{lost.id}/delete"))
    assert "may" in page and 'name="confirm_unsettled"' in page
    resp = admin_client.post(
        "/entrust/delete", data={"order": lost.id, "step": "delete", "confirm": "1"}
    )
    assert resp.status_code == 422 and 'id="confirm_unsettled-error"' in _text(resp)
    resp = admin_client.post(
        "/entrust/delete",
        data={
            "order": [row.id, lost.id],
            "step": "delete",
            "confirm": "1",
            "confirm_unsettled": "1",
        },
    )
    assert resp.status_code == 303 and resp.headers["Location"] == "/entrust/"
    assert "2 orders deleted from CertDesk" in _text(admin_client.get("/entrust/"))
    assert _count(Order) == 1


def _flash(client) -> str:
    page = _text(client.get("/entrust/"))
    return re.search(r'class="flash flash-success"[^>]*>(.*?)</article>', page, re.S).group(1)


def test_delete_says_a_certificate_stays_only_of_orders_that_have_one(app, user, admin_client):
    """The words after More > Delete: nothing changed at Entrust; "its certificate stays" only
    where the order had one in SSL > Certificates (a pending order has none)."""
    from tests.unit.certs.factory import MiniPki
    from webapp.certificates import service as certificates

    pending = make_order("5000021", "PENDING", "pending", common_name="queue.example.com")
    issued = [make_order(f"500003{i}", common_name=f"www{i}.example.com") for i in range(3)]
    pki = MiniPki()
    for row in issued:
        _key, cert = pki.leaf(row.common_name)
        certificates.add_certificate(cert, source="entrust", order_id=row.id, actor=user["admin"])

    def delete(*rows) -> str:
        data = {"order": [r.id for r in rows], "step": "delete", "confirm": "1"}
        assert admin_client.post("/entrust/delete", data=data).status_code == 303
        return _flash(admin_client)

    words = delete(pending)
    assert words == "1 order deleted from CertDesk; nothing changed at Entrust."
    assert delete(issued[0]) == (
        "1 order deleted from CertDesk; nothing changed at Entrust. Its certificate stays in "
        "SSL › Certificates."
    )
    lone = make_order("5000041", "PENDING", "pending")
    assert delete(issued[1], lone) == (
        "2 orders deleted from CertDesk; nothing changed at Entrust. The certificates of 1 of "
        "them stay in SSL › Certificates."
    )
    assert _count(Certificate) == 3


# --- through the pages, against the sandbox -------------------------------------------------------


@pytest.fixture
def linked(app, user, sandbox, fast_clients):
    sandbox.seed(certificates=0, seed=2)
    return link_sandbox(user, sandbox)


def _place(user, cred, cn, queue=False) -> Order:
    csr = csrs.create_csr(user["operator"], "p256", {"CN": cn}, "")
    return placing.place(
        user["operator"],
        checks.OrderForm(
            credential_id=cred.id,
            organization="1:CertDesk Demo Corp",
            product="STANDARD_SSL",
            csr_source="certdesk",
            csr_id=csr.id,
            custom={"text2": "views"},
            queue_for_approval=queue,
        ),
    )


def test_approve_and_suspend_through_the_page_with_each_result(admin_client, linked, user):
    queued = _place(user, linked, "queue.example.com", queue=True)
    active = _place(user, linked, "shop.example.com")
    resp = admin_client.post(
        "/entrust/status?action=approve", data={"order": [queued.id, active.id]}
    )
    page = _text(resp)
    assert resp.status_code == 200 and 'id="outcomes"' in page
    assert "1 done, 1 refused" in page
    assert f'data-order="{queued.id}" data-result="done"' in page
    assert f'data-order="{active.id}" data-result="refused"' in page
    assert "The certificate is in SSL › Certificates." in page
    db.session.expire_all()
    assert db.session.get(Order, queued.id).status == "ACTIVE"
    # The result links to the certificate the approval brought in.
    (cert,) = db.session.execute(
        select(Certificate).where(Certificate.order_id == queued.id)
    ).scalars()
    row = page.split(f'data-order="{queued.id}"')[1].split("</tr>")[0]
    assert f'<a href="/certificates/{cert.id}">queue.example.com</a>' in row
    # The order's history tells the certificate coming in, as a status check would.
    history = _text(admin_client.get(f"/entrust/{queued.id}"))
    assert "Certificate added to SSL › Certificates." in history
    resp = admin_client.post("/entrust/status?action=suspend", data={"order": [active.id]})
    page = _text(resp)
    assert "Suspended; Entrust says SUSPENDED." in page
    # The heading says what was done, with no count of none.
    assert "Suspend: 1 done.</h2>" in page and "0 refused" not in page
    held = _text(admin_client.get(f"/entrust/{active.id}")).split('id="order-certificate"')[1]
    assert '<span class="badge warn">Suspended</span>' in held.split("</p>")[0]


def test_revoke_through_the_pages_then_the_offer_to_delete_the_certificate(
    admin_client, linked, user
):
    row = _place(user, linked, "shop.example.com")
    cert = db.session.execute(
        select(Certificate).where(Certificate.order_id == row.id)
    ).scalar_one()
    resp = admin_client.post(
        "/entrust/revoke",
        data={"order": row.id, "step": "revoke", "reason": "keyCompromise", "comment": ""},
    )
    page = _text(resp)
    assert resp.status_code == 200 and "Revoked; Entrust says REVOKED." in page
    assert "Delete the revoked certificates from SSL › Certificates?" in page
    assert f'action="/certificates/{cert.id}/delete"' in page and "data-confirm" in page
    db.session.refresh(cert)
    assert cert.revoked_at is not None
    page = _text(admin_client.get(f"/entrust/{row.id}"))
    assert "REVOKED" in page
    # The order's certificate says so too, where the order page shows it.
    held = page.split('id="order-certificate"')[1].split("</p>")[0]
    assert '<span class="badge bad">Revoked</span>' in held


def test_revoke_says_a_certificate_is_marked_revoked_only_when_one_is_held(
    admin_client, linked, user
):
    """A certificate deleted from SSL › Certificates before its order is revoked is not said to
    be marked revoked there."""
    held, gone = _place(user, linked, "held.example.com"), _place(user, linked, "gone.example.com")
    db.session.execute(delete(Certificate).where(Certificate.order_id == gone.id))
    db.session.commit()
    resp = admin_client.post(
        "/entrust/revoke",
        data={"order": [held.id, gone.id], "step": "revoke", "reason": "unspecified"},
    )
    page = _text(resp)
    said = {o.id: page.split(f'data-order="{o.id}"')[1].split("</tr>")[0] for o in (held, gone)}
    assert "Revoked; Entrust says REVOKED." in said[held.id] and "Revoked;" in said[gone.id]
    assert "marked revoked in SSL › Certificates" in said[held.id]
    assert "SSL › Certificates" not in said[gone.id]


def test_reissue_through_the_form_reminds_to_deploy(operator_client, linked, user):
    row = _place(user, linked, "shop.example.com")
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "shop.example.com"}, "")
    other = _place(user, linked, "api.example.com")
    # The original's own CSR (its key is the one being replaced) is not offered, nor that of
    # another certificate; for a renewal neither.
    for what in ("reissue", "renew"):
        offered = _text(operator_client.get(f"/entrust/{row.id}/{what}"))
        assert f'<option value="{csr.id}"' in offered
        assert f'<option value="{row.csr_id}"' not in offered
        assert f'<option value="{other.csr_id}"' not in offered
    form = {
        "csr_source": "certdesk",
        "csr_id": csr.id,
        "sans": "shop.example.com",
        "eku": "SERVER_AND_CLIENT_AUTH",
        "signature_algorithm": "SHA-2",
        "ct_log": "1",
    }
    resp = operator_client.post(f"/entrust/{row.id}/reissue", data=form)
    assert resp.status_code == 303, _text(resp)
    new = db.session.execute(select(Order).where(Order.parent_id == row.id)).scalar_one()
    assert resp.headers["Location"] == f"/entrust/{new.id}"
    page = _text(operator_client.get(f"/entrust/{new.id}"))
    assert "Reissue issued" in page and "Deploy this certificate wherever" in page
    assert "<code>shop.example.com</code>" in page  # the old certificate's names
    assert "Application: views<br>" in page  # the custom fields, by the account's labels
    old_page = _text(operator_client.get(f"/entrust/{row.id}"))
    assert "Reissued into" in old_page and "REISSUED" in old_page
    # The history names the new order by its tracking ID, as every other page does.
    history = old_page.split('id="order-history"')[1].split("</table>")[0]
    assert f'<a href="/entrust/{new.id}">{new.ca_order_id}</a>' in history


def test_reissue_shown_again_keeps_the_uploaded_csr_in_the_paste_box(operator_client, linked, user):
    row = _place(user, linked, "shop.example.com")
    other = csrs.create_csr(user["operator"], "p256", {"CN": "shop.example.com"}, "")
    form = {
        "csr_source": "upload",
        "csr_file": (io.BytesIO(other.pem.encode()), "shop.csr"),
        "sans": "shop.example.com, elsewhere.invalid",  # refused: not under an approved domain
        "eku": "SERVER_AND_CLIENT_AUTH",
        "signature_algorithm": "SHA-2",
        "ct_log": "1",
    }
    resp = operator_client.post(f"/entrust/{row.id}/reissue", data=form)
    page = _text(resp)
    assert resp.status_code == 422
    assert 'name="csr_source" value="paste" checked' in page
    assert f">{other.pem}</textarea>" in page


def test_a_reissue_entrust_refuses_says_so_on_top_of_the_form(
    operator_client, linked, user, sandbox
):
    """Entrust refuses what CertDesk's own checks let through (its domain lapsed since the last
    sync): the form comes back with the refusal on top, as well as next to its field, and nothing
    was ordered."""
    row = _place(user, linked, "shop.example.com")
    sandbox.set_domain_status("example.com", "EXPIRED")
    resp = operator_client.post(
        f"/entrust/{row.id}/reissue",
        data={
            "csr_source": "new",
            "sans": "shop.example.com",
            "eku": "SERVER_AND_CLIENT_AUTH",
            "signature_algorithm": "SHA-2",
            "ct_log": "1",
        },
    )
    page = _text(resp)
    assert resp.status_code == 422, page
    top = page.split('id="form-error"')[1].split("</article>")[0]
    assert "Entrust refused the reissue." in top and "Nothing was ordered." in top
    assert "example.com" in top
    assert db.session.execute(select(Order).where(Order.parent_id == row.id)).first() is None


@pytest.mark.parametrize("origin", ["reissue", "renew"])
def test_a_reissue_or_renewal_refused_for_an_order_revoked_at_entrust_reads_it_back(
    operator_client, linked, user, sandbox, origin
):
    """An Entrust administrator revoked the order in the portal; CertDesk still holds it ACTIVE.
    Entrust refuses the reissue (renewal) in that status: the refusal is shown, and the original,
    read back once (the call is not sent again), shows REVOKED, with its history line, and its
    certificate marked revoked, as after a refused status action."""
    sandbox.advance_clock(-40)  # old enough to renew: its age is not what Entrust refuses
    row = _place(user, linked, "shop.example.com")
    sandbox.advance_clock(40)
    revoked = requests.post(
        f"{sandbox.base_url}certificates/{row.ca_order_id}/revocations",
        json={"crlReason": "unspecified"},
        auth=(sandbox.api_user, sandbox.api_key),
        timeout=10,
    )
    assert revoked.ok, revoked.text
    assert row.status == "ACTIVE"
    sandbox.clear_requests()
    resp = operator_client.post(
        f"/entrust/{row.id}/{origin}",
        data={
            "csr_source": "new" if origin == "reissue" else "keep",
            "sans": "shop.example.com",
            "eku": "SERVER_AND_CLIENT_AUTH",
            "signature_algorithm": "SHA-2",
            "ct_log": "1",
        },
    )
    page = _text(resp)
    assert resp.status_code == 422, page
    top = page.split('id="form-error"')[1].split("</article>")[0]
    verb = "reissued" if origin == "reissue" else "renewed"
    assert f"A certificate in status REVOKED cannot be {verb}" in top
    # The page says why it cannot be done, as Entrust holds the order now.
    problem = page.split('id="successor-problem"')[1].split("</article>")[0]
    assert "REVOKED" in problem
    assert 'id="successor-submit" disabled' in page
    kind = "reissues" if origin == "reissue" else "renewals"
    calls = [(r["method"], r["path"].rsplit("/", 2)[-2:]) for r in sandbox.requests()]
    assert calls.count(("POST", [row.ca_order_id, kind])) == 1  # never sent again
    assert calls.count(("GET", ["certificates", row.ca_order_id])) == 1  # read back once
    db.session.expire_all()
    row = db.session.get(Order, row.id)
    assert row.status == "REVOKED"
    [cert] = db.session.execute(select(Certificate).where(Certificate.order_id == row.id)).scalars()
    assert cert.revoked_at is not None
    [line] = db.session.execute(
        select(OrderEvent).where(OrderEvent.order_id == row.id, OrderEvent.kind == "status")
    ).scalars()
    assert (line.old_status, line.new_status) == ("ACTIVE", "REVOKED")
    assert line.message == (
        "Changed at Entrust; read by operator's read-back after a refused action."
    )
    assert db.session.execute(select(Order).where(Order.parent_id == row.id)).first() is None


def test_whoever_placed_an_order_is_told_what_another_user_did_to_it(
    admin_client, operator_client, linked, user
):
    queued = _place(user, linked, "told.example.com", queue=True)
    admin_client.post("/entrust/status?action=approve", data={"order": [queued.id]})
    notice = _text(operator_client.get("/entrust/updates"))
    said = re.search(r"told\.example\.com</a>:\s*(.*?)\s*<small", notice, re.S)
    assert said, notice
    assert re.fullmatch(
        rf"Approved by {user['admin'].username} \(\w+ &rarr; ACTIVE\)", said.group(1)
    ), said.group(1)


def test_the_reissue_and_renew_forms_find_any_unused_csr_and_keep_the_one_chosen(
    operator_client, orders, user
):
    """As on Order Certificate: a CSR older than the newest 100 is found by a name (as typed,
    and with Find without scripts, which orders nothing), and a form refused keeps it chosen."""
    from sqlalchemy import insert

    from webapp.csrs.models import Csr

    row = orders["active"]
    old = csrs.create_csr(user["operator"], "p256", {"CN": "old.example.com"}, "")
    old.created_at = utcnow() - timedelta(days=30)
    db.session.execute(
        insert(Csr),
        [
            {
                "common_name": f"new{i}.example.com",
                "public_key_id": f"{i:064x}",
                "pem": "(not read by the form)",
                "created_at": utcnow() - timedelta(seconds=i),
            }
            for i in range(100)
        ],
    )
    db.session.commit()
    selected = f'<option value="{old.id}" selected>old.example.com'
    for what in ("reissue", "renew"):
        page = _text(operator_client.get(f"/entrust/{row.id}/{what}"))
        assert 'id="csr_search"' in page and f'<option value="{old.id}"' not in page, what
        # Enter in a field sends the form itself, not the search's Find.
        first = re.search(r'<button type="submit"[^>]*>', page.split('id="successor-form"')[1])
        assert 'id="successor-default"' in first.group(0), what
        found = _text(
            operator_client.get(
                "/entrust/new/choices/csr", query_string={"csr_search": "old"}, headers=HTMX
            )
        )
        assert re.findall(r'<option value="(\d+)"', found) == [str(old.id)]
        shown = operator_client.post(
            f"/entrust/{row.id}/{what}",
            data={"csr_source": "certdesk", "csr_search": "old.", "action": "choices"},
        )
        page = _text(shown)
        assert shown.status_code == 200 and 'value="old."' in page, what
        options = page.split('id="csr_id"')[1].split("</select>")[0]
        assert re.findall(r'<option value="(\d+)"', options) == [str(old.id)], what
        refused = operator_client.post(
            f"/entrust/{row.id}/{what}",
            data={"csr_source": "certdesk", "csr_id": old.id, "sans": "not a name!"},
        )
        assert refused.status_code == 422 and selected in _text(refused), what
    assert _count(Order) == 3


def test_the_reissue_and_renew_forms_shown_again_keep_the_key_type_chosen(operator_client, orders):
    for what in ("reissue", "renew"):
        resp = operator_client.post(
            f"/entrust/{orders['active'].id}/{what}",
            data={"csr_source": "new", "new_key_type": "p256", "sans": "not a name!"},
        )
        page = _text(resp)
        assert resp.status_code == 422, what
        assert '<option value="p256" selected>ECDSA P-256</option>' in page, what
    assert _count(Order) == 3


def test_an_error_of_a_field_the_reissue_and_renew_forms_show_is_not_repeated_on_top(
    operator_client, orders
):
    """The key type of a new key pair is one of the forms' fields: its error is shown next to
    it, once, not again among those of the whole request."""
    for what in ("reissue", "renew"):
        resp = operator_client.post(
            f"/entrust/{orders['active'].id}/{what}",
            data={"csr_source": "new", "new_key_type": "dsa1024", "sans": "www.example.com"},
        )
        page = _text(resp)
        assert resp.status_code == 422 and 'id="new_key_type-error"' in page, what
        assert 'id="form-error"' not in page, what
        assert page.count("Choose one of the offered key types.") == 1, what
    assert _count(Order) == 3


class _FormValues(HTMLParser):
    """What a browser sends for the form with the id given, as it is shown (text fields, ticked
    boxes and radios, the options selected, the text areas)."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id, self.inside, self.values = form_id, False, []
        self._select = self._textarea = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        if not self.inside or "disabled" in a:
            return
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("radio", "checkbox") and "checked" not in a:
                return
            if kind not in ("submit", "button", "file"):
                self.values.append((a["name"], a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select and "selected" in a:
            self.values.append((self._select, a.get("value", "")))
        elif tag == "textarea":
            self._textarea = [a.get("name"), ""]

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.values.append((self._textarea[0], self._textarea[1].removeprefix("\n")))
            self._textarea = None


def test_the_reissue_form_sent_as_it_opens_reissues_with_a_new_key(operator_client, linked, user):
    """A reissue is for a new key pair. With an unused CSR made in CertDesk about (for other
    names), the form opened with "A CSR made in CertDesk" chosen and none picked, so sending it
    as it opened was refused after the confirmation. It opens on a new key pair made for the
    order's names, and sent as it is, the reissue is placed."""
    row = _place(user, linked, "shop.example.com")
    csrs.create_csr(user["operator"], "p256", {"CN": "unrelated.example.com"}, "")
    page = _text(operator_client.get(f"/entrust/{row.id}/reissue"))
    assert re.findall(r'name="csr_source" value="(\w+)" checked', page) == ["new"]
    parser = _FormValues("successor-form")
    parser.feed(page)
    sent = dict(parser.values)
    assert sent["csr_source"] == "new" and "shop.example.com" in sent["sans"]
    resp = operator_client.post(f"/entrust/{row.id}/reissue", data=MultiDict(parser.values))
    assert resp.status_code == 303, _text(resp)[-1500:]
    new = db.session.execute(select(Order).where(Order.parent_id == row.id)).scalar_one()
    assert new.csr_id is not None and new.csr_id != row.csr_id
