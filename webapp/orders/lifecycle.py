"""Update Certificate Status (Approve, Decline, Suspend, Resume), Revoke Certificate and Delete,
for the orders a user selected.

Each action is tried only on an order whose status the CA connector's capabilities allow it in
(``availability``); every other order gets its reason, and nothing is sent for it. A few orders
are done at once, each with its own result; more run as a background job with a progress bar.
Each order's outcome is audited, refusals included.

Administrator rights: the actions the connector lists in ``admin_actions`` (for Entrust: approve,
decline, suspend, resume) go through the order's own credential when it has administrator rights,
otherwise through an administrator credential the user chose. Only a credential of the same
account qualifies: the page offers those on the same CA host whose primary client has the same
name (as last synced), and before using one CertDesk reads the order through it and compares it
with its own. A refusal for want of rights (HTTP 403) says so in words, and the credential's
"has administrator rights" flag is cleared.

These calls change an order without creating one; none is ever retried. When an answer is lost
the order is read back to say what happened.

Delete removes orders from CertDesk only: their history goes with them, their certificates stay
in the repository (``certificate.order_id`` becomes NULL), the orders stay at the CA.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select, update

from webapp import validation
from webapp.audit import service as audit
from webapp.cas import registry
from webapp.cas.base import Action, CaError, CaOrder, NotAllowed, Phase, Refused, Unavailable
from webapp.catalog import service as catalog
from webapp.certificates import service as certificates
from webapp.credentials import service as credentials
from webapp.credentials.models import EcsCredential
from webapp.dbtypes import utcnow
from webapp.extensions import db, large_write
from webapp.jobs import service as jobs
from webapp.orders import availability, records
from webapp.orders.models import DEFAULT_CA, INTENT, UNKNOWN, Order, OrderEvent, OrderName
from webapp.security import rbac
from webapp.validation import InputError

log = logging.getLogger(__name__)

LABELS = availability.LABELS
STATUS_ACTIONS = (Action.APPROVE, Action.DECLINE, Action.SUSPEND, Action.RESUME)
ACTIONS = {a.value: a for a in (*STATUS_ACTIONS, Action.REVOKE)}
PERMISSIONS = {
    **dict.fromkeys(STATUS_ACTIONS, rbac.ORDERS_APPROVE),
    Action.REVOKE: rbac.ORDERS_REVOKE,
}
PAST = records.PAST
# The phase an order reaches when the action took effect (read back after a lost answer).
REACHES = records.REACHES
# How long a status action's claim on an order lasts (``_claim``): longer than its calls can take
# (a read, the call and a read back, each within the ECS timeouts); a claim left by a process that
# stopped mid-call runs out after it.
ACTING_FOR = timedelta(minutes=30)
INLINE_LIMIT = 25  # more selected orders than this: a background job
MAX_SELECTED = 20000
DECLINE_REASON_MAX = 254  # Entrust's limit
COMMENT_MAX = 500


class ActionInputError(InputError):
    """Input refused before anything is sent; nothing is stored."""


@dataclass
class Choices:
    """What the user chose besides the orders: a reason (decline: words sent to the CA; revoke:
    one of the CA's revocation reasons), a comment (revoke), and an administrator credential."""

    reason: str = ""
    comment: str = ""
    credential_id: int | None = None


@dataclass
class Outcome:
    """One order's result: "done", "refused" (nothing changed) or "failed" (the CA could not be
    asked, or its answer was lost and the order could not be read back)."""

    order_id: int
    name: str
    result: str
    message: str
    status: str = ""
    certificates: list = field(default_factory=list)  # (id, common name, serial) revoked
    issued: list = field(default_factory=list)  # (id, common name) issued by an approval


@dataclass
class Result:
    action: Action
    outcomes: list[Outcome] = field(default_factory=list)
    job: object | None = None

    @property
    def counts(self) -> dict[str, int]:
        out = {"done": 0, "refused": 0, "failed": 0}
        for o in self.outcomes:
            out[o.result] += 1
        return out

    def summary(self) -> str:
        return _summary(self.counts)


def _summary(counts: dict[str, int]) -> str:
    """What an action did, in words and without counts of none: "1 done.", "2 done, 1 refused.",
    "1 could not be done."."""
    words = {"done": "done", "refused": "refused", "failed": "could not be done"}
    parts = [f"{counts[key]:,} {said}" for key, said in words.items() if counts[key]]
    return (", ".join(parts) or "no order") + "."


def selected(order_ids, limit: int = MAX_SELECTED) -> list[Order]:
    """The orders among ``order_ids`` (ticked boxes), in id order; the others are left out."""
    ids = validation.ids(order_ids, limit)
    out: list[Order] = []
    for i in range(0, len(ids), 500):
        stmt = select(Order).where(Order.id.in_(ids[i : i + 500])).order_by(Order.id)
        out += list(db.session.execute(stmt).scalars())
    return out


@dataclass
class Selection:
    """What a page shows about the selected orders before anything is done."""

    rows: list[Order]
    actions: tuple
    allowed: dict[str, list[int]]  # action -> ids of the orders that allow it now
    can: dict[int, list[str]]  # order id -> labels of the actions it allows
    reasons: dict[int, list[str]]  # order id -> why it does not allow the others
    disabled: dict[str, str]  # action -> why no selected order allows it
    admin: AdminRights | None
    revocation_reasons: tuple
    certificates: dict[int, list]  # order id -> its certificates in the repository
    unsettled: list[Order]


OWN_ORDER = (
    "You placed this order, so another user must approve it: an order queued for approval is "
    "approved by someone other than its requester."
)
OWN_ORDERS = "You placed the selected orders that allow it, so another user must approve them."


def own_order(actor, row: Order, action: Action) -> str:
    """Why ``actor`` may not do ``action`` on ``row`` as its requester, or "". An operator never
    approves an order they placed (queuing it for approval asks someone else to look);
    administrators may, as they run CertDesk and could grant themselves anything."""
    if action is not Action.APPROVE or actor is None or getattr(actor, "role", "") == "admin":
        return ""
    mine = row.placed_by_id is not None and row.placed_by_id == getattr(actor, "id", None)
    return OWN_ORDER if mine else ""


def selection(order_ids, actions=(), actor=None) -> Selection:
    """The selected orders, what each allows of ``actions`` and why not, the administrator
    rights at hand, their certificates, and which are not settled (for Delete). With ``actor``,
    what that user may not do as an order's requester counts too (``own_order``)."""
    rows = selected(order_ids)
    caps = registry.capabilities(rows[0].ca if rows else DEFAULT_CA)
    admin = None
    if any(a in caps.admin_actions for a in actions):
        admin = admin_rights(rows)
    # Orders whose credential lacks administrator rights, with none of the account at hand.
    stuck = {c.id for c in admin.uncovered} if admin else set()
    allowed: dict[str, list[int]] = {a.value: [] for a in actions}
    can: dict[int, list[str]] = {}
    reasons: dict[int, list[str]] = {}
    mine: dict[str, int] = {a.value: 0 for a in actions}  # orders refused only as the actor's
    for r in rows:
        can[r.id] = []
        reasons[r.id] = availability.grouped(r, actions, caps)
        for a in actions:
            if not availability.why_not(r, a, caps):
                if a in caps.admin_actions and r.credential_id in stuck:
                    continue
                if why := own_order(actor, r, a):
                    mine[a.value] += 1
                    reasons[r.id].append(why)
                    continue
                allowed[a.value].append(r.id)
                can[r.id].append(availability.LABELS[a])
        if r.credential_id in stuck:
            reasons[r.id].append(NO_ADMIN)
    disabled = {}
    for a in actions:
        if allowed[a.value]:
            continue
        if stuck and a in caps.admin_actions and all(r.credential_id in stuck for r in rows):
            disabled[a.value] = NO_ADMIN_BUTTON  # the page says NO_ADMIN above, once
        elif mine[a.value]:
            disabled[a.value] = OWN_ORDER if len(rows) == 1 else OWN_ORDERS
        elif len(rows) == 1:
            disabled[a.value] = availability.why_not(rows[0], a, caps)
        else:
            statuses = sorted({r.display_status for r in rows})
            disabled[a.value] = (
                f"None of the selected orders allows it ({availability.LABELS[a]} applies to "
                f"{availability.one_of(caps.allowed_statuses.get(a, ()))} orders; these are "
                f"{', '.join(statuses)})."
            )
    certs = {}
    if Action.REVOKE in actions or not actions:
        certs = certificates.for_orders([r.id for r in rows])
    return Selection(
        rows=rows,
        actions=tuple(actions),
        allowed=allowed,
        can=can,
        reasons=reasons,
        disabled=disabled,
        admin=admin,
        revocation_reasons=caps.revocation_reasons,
        certificates=certs,
        unsettled=unsettled_of(rows),
    )


# --- administrator rights ------------------------------------------------------------------------


def _endpoint(cred) -> tuple:
    parts = urlsplit(cred.base_url or "")
    return ((parts.hostname or "").lower(), parts.port)


def _same_account(cred, other) -> bool:
    """Whether ``other`` looks like a credential of ``cred``'s account: the same CA host, and the
    same primary client name when both are known. (Before it is used, ``other`` must also see
    the order itself: see ``_Acting``.)"""
    if _endpoint(cred) != _endpoint(other):
        return False
    mine, theirs = catalog.primary_client_name(cred.id), catalog.primary_client_name(other.id)
    return not (mine and theirs and mine != theirs)


@dataclass
class AdminRights:
    """For the page: the selected orders' credentials without administrator rights, and the
    administrator credentials that may act for them."""

    lacking: list  # credentials
    candidates: list  # credentials
    uncovered: list  # those of ``lacking`` that no candidate is of the same account as


NO_ADMIN = (
    "No credential with Entrust administrator rights of this account is linked: an Entrust "
    "administrator must do this in the Entrust portal."
)
NO_ADMIN_BUTTON = "Needs a credential with Entrust administrator rights (see above)."


def admin_rights(rows: list[Order]) -> AdminRights:
    lacking = {}
    for r in rows:
        cred = r.credential
        if cred is not None and cred.deleted_at is None and not cred.is_admin:
            lacking[cred.id] = cred
    candidates = []
    if lacking:
        for other in credentials.usable_credentials():
            if not other.is_admin or other.id in lacking:
                continue
            if any(_same_account(c, other) for c in lacking.values()):
                candidates.append(other)
    uncovered = [c for c in lacking.values() if not any(_same_account(c, o) for o in candidates)]
    return AdminRights(list(lacking.values()), candidates, uncovered)


def _same_order(row: Order, ca: CaOrder) -> bool:
    """Whether the order ``ca`` (read through another credential) is ``row``: the same id, and
    every identifying value both sides know agrees (at least one must be known)."""
    if ca.order_id != row.ca_order_id:
        return False
    pairs = [
        (row.request_id or "", ca.request_id or ""),
        ((row.serial or "").upper(), (ca.serial or "").upper()),
        # the row keeps a long CN cut to its column, as records.values_of leaves it
        ((row.common_name or "").lower(), records.kept(ca.common_name, 255).lower()),
    ]
    known = [(a, b) for a, b in pairs if a and b]
    return bool(known) and all(a == b for a, b in known)


class _NoRights(Exception):
    """The action cannot be tried with any credential at hand; the message says what to do."""


def _needs_admin_words(action: Action, cred) -> str:
    return (
        f"{availability.LABELS[action]} needs Entrust administrator rights, which the "
        f"credential {cred.name!r} does not have. Choose an administrator credential of the same "
        "Entrust account; otherwise it must be done by an Entrust administrator in the Entrust "
        "portal."
    )


class _LoginRefused(Exception):
    """Entrust refused the credential's login earlier in this run: nothing is sent through it."""


class _Acting:
    """The connectors of one run, opened once per credential, and which administrator
    credential has been checked to see which order."""

    def __init__(self, choices: Choices):
        self.choices = choices
        self._open: dict[int, object] = {}
        # Credentials whose login Entrust refused in this run, with what the orders say: nothing
        # more is sent through them (each call would be refused again, and repeated failed
        # logins can lock the API user).
        self.refused_logins: dict[int, str] = {}
        self._chosen = None
        if choices.credential_id:
            self._chosen = credentials.get(choices.credential_id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for conn in self._open.values():
            try:
                conn.close()
            except Exception:  # closing is best effort
                log.debug("closing a connector failed", exc_info=True)
        self._open.clear()

    @property
    def chosen(self):
        return self._chosen

    def login_refused(self, cred, exc, actor) -> str:
        """Entrust refused ``cred``'s login: noted on the credential (as an import or a status
        check notes it) and here, so that nothing more is sent through it in this run. Returns
        what the orders say."""
        credentials.login_refused(cred.id, str(exc), "an action on orders", actor)
        db.session.commit()
        self.refused_logins[cred.id] = (
            f"Entrust refused the login of the credential {cred.name!r} ({exc}); nothing more "
            "was sent through it. Check it with Test Login under SSL › Entrust › Manage, then "
            "act again on the orders not done."
        )
        return self.refused_logins[cred.id]

    def connector(self, row: Order, cred):
        conn = self._open.get(cred.id)
        if conn is None:
            conn = registry.open_connector(row.ca, cred.id)
            self._open[cred.id] = conn
        return conn

    def for_order(self, row: Order, action: Action, caps):
        """(connector, credential) to carry out ``action`` on ``row``. Raises _NoRights or
        CaError (the CA could not be asked)."""
        own = row.credential
        if action not in caps.admin_actions or own.is_admin:
            return self.connector(row, own), own
        chosen = self._chosen
        if chosen is None:
            raise _NoRights(_needs_admin_words(action, own))
        if chosen.id == own.id or not chosen.usable or not chosen.is_admin:
            raise _NoRights(
                f"The credential {chosen.name!r} cannot act for it: choose an enabled credential "
                "with Entrust administrator rights. " + _needs_admin_words(action, own)
            )
        if not _same_account(own, chosen):
            raise _NoRights(
                f"The credential {chosen.name!r} is not of the same Entrust account as "
                f"{own.name!r}. " + _needs_admin_words(action, own)
            )
        if chosen.id in self.refused_logins:
            raise _LoginRefused(self.refused_logins[chosen.id])
        conn = self.connector(row, chosen)
        try:
            seen = conn.fetch(row.ca_order_id)
        except Refused:
            seen = None
        if seen is None or not _same_order(row, seen):
            raise _NoRights(
                f"The credential {chosen.name!r} does not see this order as {own.name!r} does: it "
                "is not of the same Entrust account. " + _needs_admin_words(action, own)
            )
        return conn, chosen


# --- carrying out one action --------------------------------------------------------------------


def _call(conn, action: Action, ca_id: str, choices: Choices) -> None:
    if action is Action.APPROVE:
        conn.approve(ca_id)
    elif action is Action.DECLINE:
        conn.decline(ca_id, choices.reason)
    elif action is Action.SUSPEND:
        conn.suspend(ca_id)
    elif action is Action.RESUME:
        conn.resume(ca_id)
    elif action is Action.REVOKE:
        conn.revoke(ca_id, choices.reason, choices.comment)
    else:  # pragma: no cover - the callers pass only these
        raise ValueError(action)


def _read_back(conn, ca_id: str) -> tuple[CaOrder | None, str]:
    try:
        return conn.fetch(ca_id), ""
    except CaError as exc:
        return None, str(exc)


def _record(actor, action: Action, row: Order, result: str, message: str, **detail) -> Outcome:
    audit.record(
        f"order.{action.value}",
        actor=actor,
        object_type="order",
        object_id=row.id,
        outcome={"done": "success", "refused": "refused", "failed": "failure"}[result],
        detail={"ca_order_id": row.ca_order_id, "result": message[:500], **detail},
    )
    db.session.commit()
    return Outcome(row.id, row.display_name, result, message, row.status)


def _reason_label(caps, code: str) -> str:
    return dict(caps.revocation_reasons).get(code, code)


def _apply_read(row: Order, ca: CaOrder, actor, now: datetime, *, read_by: str = "") -> str:
    """Update ``row`` from what the CA says now; bring in its certificate when it has one the
    repository lacks. With ``read_by`` (a reading that is not the action's own outcome), a
    change of its status is told as a status check tells it (``records.read``). Returns a
    problem in words, or ""."""
    records.lock_rows([row.id])  # after another request's check of it, and as that left it
    if read_by:
        _changed, old = records.read(row, ca, now, actor=actor, read_by=read_by)
    else:
        _changed, old = records.apply(row, ca, now)
    records.schedule(row, now, changed=old is not None)
    row.message = ""
    records.certificates_suspended(row, actor=actor)  # suspended, or resumed
    with_certificate = ca.phase in (Phase.ISSUED, Phase.SUSPENDED) and ca.certificate_pem
    if with_certificate and row.id not in certificates.orders_with_certificate([row.id]):
        added, problem = records.store_certificate(row, ca, actor=actor, source="entrust")
        if added:
            records.certificate_added(row, actor=actor, now=now)
        return problem
    return ""


# What read an order back after Entrust refused a status action on it, as its history names it
# ("Changed at Entrust; read by alice's read-back after a refused action.").
REFUSED_READ_BY = "read-back after a refused action"
# The same after an action whose answer was lost and which did not take effect.
LOST_READ_BY = "read-back after a lost answer"

DELETED_MEANWHILE = "This order was deleted from CertDesk meanwhile; nothing was sent."


def read_back_refused(conn, row: Order, actor) -> CaOrder | None:
    """After Entrust refused an action on ``row`` (a status action, or a reissue or renewal of
    it): CertDesk's view of the order may be old (Entrust refuses in a status it no longer has),
    so it is read now, once, so that the page shows what Entrust holds, and its history and the
    audit log tell a status changed at Entrust, as a status check would (its certificates follow).
    Returns what was read (None: it could not be; nothing is written). The caller commits."""
    ca, _problem = _read_back(conn, row.ca_order_id)
    if ca is not None:
        _apply_read(row, ca, actor, utcnow(), read_by=REFUSED_READ_BY)
    return ca


def _claim(actor, action: Action, row: Order, caps) -> tuple[datetime | None, str]:
    """Write on ``row``, and commit, that ``action``'s call is under way, after reading the order
    again under its row lock: of two actions on one order at the same moment (two browsers, a
    user and a job), the second finds the first's claim, or the status it left, and is refused
    with nothing sent. Returns (the claim's end, "") or (None, why not)."""
    now = utcnow()
    if not records.lock_rows([row.id]):
        db.session.rollback()
        return None, DELETED_MEANWHILE
    problem = availability.why_not(row, action, caps, now) or own_order(actor, row, action)
    if not problem and (busy := records.unsettled_successor(row.id)) is not None:
        problem = (
            f"A reissue or renewal of this order (order #{busy}) is under way: CertDesk is still "
            "checking with Entrust whether it was placed. Wait until it is settled."
        )
    if problem:
        db.session.rollback()
        return None, problem
    until = now + ACTING_FOR
    row.acting, row.acting_until = action.value, until
    db.session.commit()
    return until, ""


def _release(row_id: int, until: datetime) -> None:
    """End this run's claim on the order (not one taken after it ran out)."""
    db.session.rollback()  # what the outcome did is committed; anything else is not wanted
    db.session.execute(
        update(Order)
        .where(Order.id == row_id, Order.acting_until == until)
        .values(acting=None, acting_until=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _one(actor, action: Action, row: Order, choices: Choices, acting: _Acting, caps) -> Outcome:
    problem = availability.why_not(row, action, caps) or own_order(actor, row, action)
    if problem:
        return _record(actor, action, row, "refused", problem, status=row.status)
    try:
        conn, cred = acting.for_order(row, action, caps)
        if cred.id in acting.refused_logins:
            raise _LoginRefused(acting.refused_logins[cred.id])
    except _NoRights as exc:
        return _record(actor, action, row, "refused", str(exc), status=row.status)
    except (CaError, _LoginRefused) as exc:
        db.session.rollback()
        message = str(exc)
        if isinstance(exc, NotAllowed) and exc.login_refused and acting.chosen is not None:
            # The administrator credential chosen to act: its read of the order was refused.
            message = acting.login_refused(acting.chosen, exc, actor)
        return _record(actor, action, row, "failed", message, status=row.status)
    cred_name = cred.name
    row_id, name, status, ca_id = row.id, row.display_name, row.status, row.ca_order_id
    until, problem = _claim(actor, action, row, caps)
    if problem == DELETED_MEANWHILE:  # the row is gone: say so without reading it
        audit.record(
            f"order.{action.value}",
            actor=actor,
            object_type="order",
            object_id=row_id,
            outcome="refused",
            detail={"ca_order_id": ca_id, "result": problem},
        )
        db.session.commit()
        return Outcome(row_id, name, "refused", problem, status)
    if until is None:
        return _record(actor, action, row, "refused", problem, status=row.status)
    try:
        return _act(actor, action, row, choices, caps, conn, cred, cred_name, acting)
    finally:
        _release(row_id, until)


def _act(actor, action: Action, row: Order, choices: Choices, caps, conn, cred, cred_name, acting):
    """``action``'s call on ``row`` (claimed), and what it changed, read back."""
    ca_id, before = row.ca_order_id, row.status
    lost = ""
    sent = utcnow()
    try:
        _call(conn, action, ca_id, choices)
    except NotAllowed as exc:
        db.session.rollback()
        message = str(exc)
        if exc.login_refused:  # its key or user changed at Entrust: no more calls through it
            message = acting.login_refused(cred, exc, actor)
            return _record(actor, action, row, "failed", message, credential=cred_name)
        if exc.needs_admin:
            credentials.note_admin_refused(cred, actor=actor)
            message = (
                f"Entrust refused: the credential {cred_name!r} does not have Entrust "
                "administrator rights for this (HTTP 403). It must be done by an Entrust "
                "administrator in the Entrust portal, or with an administrator credential of the "
                "same account. CertDesk cleared the credential's \"has Entrust administrator "
                'rights" setting.'
            )
        return _record(actor, action, row, "refused", message, credential=cred_name)
    except Refused as exc:
        db.session.rollback()
        read_back_refused(conn, row, actor)
        return _record(actor, action, row, "refused", str(exc), credential=cred_name)
    except Unavailable as exc:
        db.session.rollback()
        if not exc.outcome_unknown:
            return _record(actor, action, row, "failed", str(exc), credential=cred_name)
        lost = str(exc)
    ca, problem = _read_back(conn, ca_id)
    now = utcnow()
    # After a lost answer, the action took effect only if the order moved: an approval whose
    # request never arrived reads back PENDING, a phase an approved order has too.
    if lost and (ca is None or ca.phase not in REACHES[action] or ca.status == before):
        if ca is not None:  # not this action's doing: a status changed there is Entrust's
            _apply_read(row, ca, actor, now, read_by=LOST_READ_BY)
        else:
            row.next_check_at = now  # the scheduled check reads what it became
            records.unread_action(row, action, actor, sent)  # and tells it as this action's
        where = f"it is {ca.status} at Entrust now" if ca is not None else problem.rstrip(".")
        return _record(
            actor,
            action,
            row,
            "failed",
            f"Entrust's answer was lost ({lost}); {where}. Check Order Status shows whether it "
            "took effect.",
            credential=cred_name,
        )
    stored = ""
    if ca is not None:
        stored = _apply_read(row, ca, actor, now)
    else:
        row.message = _done_words(action, row, None, problem)[:2000]
        row.next_check_at = now  # the scheduled check reads what it became
        records.unread_action(row, action, actor, sent)  # and tells it as this action's
    revoked = []
    if action is Action.REVOKE:
        for cert in certificates.for_order(row.id):
            certificates.mark_revoked(cert, actor=actor, commit=False)
            revoked.append((cert.id, cert.common_name, cert.serial_hex))
    history = {
        Action.DECLINE: f"Reason: {choices.reason}",
        Action.REVOKE: f"Reason: {_reason_label(caps, choices.reason)}"
        + (f". {choices.comment}" if choices.comment else ""),
    }.get(action, "")
    notify = row.placed_by_id is not None and row.placed_by_id != getattr(actor, "id", None)
    records.event(
        row,
        PAST[action],
        actor=actor,
        old=before if row.status != before else "",
        new=row.status if row.status != before else "",
        message=history,
        now=now,
        notify=notify,
    )
    detail = {"from": before, "to": row.status, "credential": cred_name}
    if action is Action.DECLINE:
        detail["reason"] = choices.reason
    if action is Action.REVOKE:
        detail.update(reason=choices.reason, comment=choices.comment[:200], certificates=revoked)
    words = _done_words(action, row, ca, problem) + (f" {stored}" if stored else "")
    outcome = _record(actor, action, row, "done", words, **detail)
    outcome.certificates = revoked
    if action is Action.APPROVE:  # its page links to the certificate it brought in
        outcome.issued = [(c.id, c.common_name) for c in certificates.for_order(row.id)]
    return outcome


def _done_words(action: Action, row: Order, ca: CaOrder | None, problem: str) -> str:
    verb = PAST[action].capitalize()
    if ca is None:
        return (
            f"{verb} at Entrust; its new status could not be read ({problem}): Check Order "
            "Status reads it."
        )
    text = f"{verb}; Entrust says {row.status}."
    issued = action is Action.APPROVE and row.phase == Phase.ISSUED.value
    if not issued and action is not Action.REVOKE:
        return text
    # Said of the certificates SSL › Certificates holds, not of the order's (one may have been
    # deleted from it, or not fetched yet).
    held = bool(certificates.for_order(row.id))
    if action is Action.APPROVE:
        text += (
            " The certificate is in SSL › Certificates."
            if held
            else " Its certificate is not in SSL › Certificates yet: Check Order Status fetches it."
        )
    elif held:
        text += " Its certificate is marked revoked in SSL › Certificates."
    return text


NO_LONGER_ALLOWED = (
    "Not sent: your account or role was changed meanwhile, and you may no longer {label} orders."
)


def _execute(actor, action: Action, rows: list[Order], choices: Choices, acting) -> list[Outcome]:
    """``action`` on each of ``rows`` in turn, with its outcome. The actor's right to do it is
    read again before each (an administrator may disable them or change their role while the
    calls of a first few take their time): from the first order they may no longer act on, the
    rest are refused unsent."""
    caps = registry.capabilities(rows[0].ca) if rows else None
    out = []
    for row in rows:
        if not jobs.still_allowed(actor, PERMISSIONS[action]):
            label = availability.LABELS[action].lower()
            said = NO_LONGER_ALLOWED.format(label=label)
            out.append(_record(actor, action, row, "refused", said))
            continue
        try:
            out.append(_one(actor, action, row, choices, acting, caps))
        except Exception:
            db.session.rollback()
            log.exception("%s of order %s failed", action.value, row.id)
            out.append(
                _record(actor, action, row, "failed", "Unexpected error; the server log has it.")
            )
    return out


# --- the use case ---------------------------------------------------------------------------------


def clean_choices(action: Action, choices: Choices, caps=None) -> Choices:
    """The user's choices checked for ``action``; raises ActionInputError."""
    caps = caps or registry.capabilities(DEFAULT_CA)
    reason, comment = choices.reason or "", choices.comment or ""
    if action is Action.DECLINE:
        reason = validation.text(
            reason,
            field="reason",
            label="reason for declining",
            max_length=DECLINE_REASON_MAX,
            required=True,
        )
    elif action is Action.REVOKE:
        codes = [code for code, _ in caps.revocation_reasons]
        if reason not in codes:
            raise ActionInputError("Choose one of the offered revocation reasons.", "reason")
        comment = validation.text(
            comment, field="comment", label="comment", max_length=COMMENT_MAX, multiline=True
        )
    else:
        reason, comment = "", ""
    return Choices(reason=reason, comment=comment, credential_id=choices.credential_id)


def parse_action(name: str) -> Action:
    action = ACTIONS.get(name or "")
    if action is None:
        raise ActionInputError("Choose what to do with the selected orders.", "action")
    return action


def run(actor, action: Action, order_ids, choices: Choices) -> Result:
    """Carry out ``action`` on the selected orders: at once for a few (each with its result),
    as a background job for more (``result.job``). Raises ActionInputError for input to correct
    (nothing is sent then)."""
    rbac.check(actor, PERMISSIONS[action])
    ids = validation.ids(order_ids, MAX_SELECTED)
    if not ids:
        raise ActionInputError("Select the orders first.", "order")
    caps = registry.capabilities(DEFAULT_CA)
    choices = clean_choices(action, choices, caps)
    result = Result(action)
    label = availability.LABELS[action]
    if len(ids) > INLINE_LIMIT:
        # The check and the start in one transaction, one caller at a time: of two requests at
        # once for the same orders (a double click), the second finds the first one's job.
        jobs.hold_starts()
        running = _running_on(action, ids)
        if running is not None:
            db.session.rollback()
            if sorted(jobs.params_of(running).get("order_ids") or []) != sorted(ids):
                raise ActionInputError(
                    f"Some of these orders are in a {label} running now (job {running.id}): "
                    "wait until it ends, then choose again.",
                    "order",
                )
            result.job = running
            return result
        job = jobs.queue(
            ACTION_JOB,
            f"{label} {len(ids):,} orders",
            actor=actor,
            action=action.value,
            order_ids=ids,
            reason=choices.reason,
            comment=choices.comment,
            credential_id=choices.credential_id,
        )
        # Which job does it, and on which orders (each order's own event follows as it is done).
        audit.record(
            f"order.{action.value}",
            actor=actor,
            object_type="order",
            detail={"orders": len(ids), "job": job.id} | audit.some_ids("order_ids", ids),
        )
        db.session.commit()
        result.job = jobs.submit(job)
        return result
    rows = selected(ids)
    if not rows:
        raise ActionInputError("None of the selected orders exists any more.", "order")
    with _Acting(choices) as acting:
        result.outcomes = _execute(actor, action, rows, choices, acting)
    return result


def _running_on(action: Action, ids: list[int]):
    """A queued or running job of ``action`` on any of the orders ``ids``, or None."""
    wanted = set(ids)
    for job in jobs.unfinished_of_kind(ACTION_JOB):
        params = jobs.params_of(job)
        if params.get("action") == action.value and wanted & set(params.get("order_ids") or []):
            return job
    return None


JOB_STEP = 100  # orders a job reads at once
PROGRESS_EVERY = 1.0  # seconds between two reports of a job's progress, at most


def _stop_unless_allowed(actor, act: Action, done: int, total: int) -> None:
    """Raise JobError when the user who started the job may no longer do ``act`` (disabled, given
    another role, or no longer granted it by a setting): checked before each order, so a change
    an administrator made meanwhile counts from the next one."""
    if jobs.still_allowed(actor, PERMISSIONS[act]):
        return
    label = availability.LABELS[act]
    audit.record(
        f"order.{act.value}",
        actor=actor,
        object_type="order",
        outcome="refused",
        detail={"job": True, "reason": "the user may no longer do this", "left": total - done},
    )
    db.session.commit()
    raise jobs.JobError(
        f"Stopped: {actor.username} may no longer {label.lower()} orders (their account or role "
        f"changed). {done:,} of {total:,} orders were dealt with before; the others were left "
        "as they are."
    )


def _run_job(ctx, action: str, order_ids: list[int], reason="", comment="", credential_id=None):
    act = ACTIONS[action]
    choices = Choices(reason=reason, comment=comment, credential_id=credential_id)
    counts = {"done": 0, "refused": 0, "failed": 0}
    problems: dict[str, None] = {}  # why orders could not be done, each reason once
    ids = list(order_ids)
    step = JOB_STEP
    reported = time.monotonic()
    with _Acting(choices) as acting:
        for i in range(0, len(ids), step):
            for n, row in enumerate(selected(ids[i : i + step])):
                _stop_unless_allowed(ctx.actor, act, i + n, len(ids))
                if jobs.process_stopping():
                    # Between two orders, not in one's call: with several workers the server
                    # would kill the process before the job's end.
                    raise jobs.JobError(
                        f"Stopped: CertDesk was stopping. {i + n:,} of {len(ids):,} orders were "
                        f"dealt with before ({_summary(counts).rstrip('.')}); nothing was sent "
                        "for the others. Act again on them once CertDesk runs."
                    )
                for outcome in _execute(ctx.actor, act, [row], choices, acting):
                    counts[outcome.result] += 1
                    if outcome.result == "failed":
                        problems.setdefault(outcome.message)
                if time.monotonic() - reported >= PROGRESS_EVERY:  # each call may take seconds
                    ctx.progress(i + n + 1, len(ids), _summary(counts))
                    reported = time.monotonic()
            ctx.progress(min(i + step, len(ids)), len(ids), _summary(counts))
    said = f"{availability.LABELS[act]}: {_summary(counts)}"
    if counts["failed"]:
        # The card says Failed, and why: the reasons are on no order's page.
        why = list(problems)
        more = f" (and {len(why) - 3} more reasons; Admin › Audit has each order's)" * (
            len(why) > 3
        )
        raise jobs.JobError(f"{said} {' '.join(why[:3])}{more}")
    return {**counts, "message": said}


# Not resumable: a job cut short is not run again (its calls change orders; none is repeated).
ACTION_JOB = jobs.register(
    "orders.action",
    _run_job,
    resumable=False,
    interrupted=(
        "Some of its orders may have been changed at Entrust before it stopped, the others not: "
        "Check Order Status on them shows where each stands; then act again on those that still "
        "need it."
    ),
)


# --- Delete ---------------------------------------------------------------------------------


def unsettled_of(rows: list[Order]) -> list[Order]:
    """The orders whose placing is not settled: deleting one loses track of what may be an
    order at the CA."""
    return [r for r in rows if r.placement in (INTENT, UNKNOWN)]


def delete_selected(
    actor, order_ids, *, confirmed: bool, unsettled_confirmed: bool
) -> tuple[int, int]:
    """Delete the selected orders from CertDesk (their history too); their certificates stay in
    the repository, the orders stay at the CA. An order whose placing is not settled is deleted
    only with its own confirmation. Each deletion is audited. Returns (how many orders were
    deleted, how many of them had a certificate, which stays in the repository).

    Up to ``MAX_SELECTED`` orders in one transaction: their values are read as columns, not as
    objects, ``CHUNK`` ids a statement."""
    rbac.check(actor, rbac.ORDERS_DELETE)
    ids = validation.ids(order_ids, MAX_SELECTED)
    if not ids:
        raise ActionInputError("Select the orders to delete.", "order")
    existing = unsettled = 0
    for i in range(0, len(ids), CHUNK):
        n, u = db.session.execute(
            select(func.count(), func.count().filter(Order.placement.in_((INTENT, UNKNOWN))))
            .select_from(Order)
            .where(Order.id.in_(ids[i : i + CHUNK]))
        ).one()
        existing, unsettled = existing + n, unsettled + u
    if not existing:
        raise ActionInputError("None of the selected orders exists any more.", "order")
    if not confirmed:
        raise ActionInputError(
            "Tick the box to confirm: the orders are deleted from CertDesk only.", "confirm"
        )
    if unsettled and not unsettled_confirmed:
        raise ActionInputError(
            "Some of these orders may have been placed at Entrust (CertDesk is still checking): "
            "tick the second box to delete them anyway.",
            "confirm_unsettled",
        )
    # An order whose status action is under way stays until that action has recorded what it
    # did (its call may change the order at the CA, and its certificate here).
    with large_write():
        records.lock(ids)
        rows = _columns_of(ids, *_DELETED_COLUMNS)
        now = utcnow()
        busy = [r.id for r in rows if availability.acting_words(r.acting, r.acting_until, now)]
        if rows and not busy:
            kept = _delete_rows(actor, rows)
    if busy:
        named = ", ".join(
            f"{o.display_name} ({LABELS.get(ACTIONS.get(o.acting), o.acting)})"
            for o in (db.session.get(Order, i, populate_existing=True) for i in busy[:5])
        )
        db.session.rollback()
        raise ActionInputError(
            "Nothing was deleted: an action's call to Entrust is under way on "
            f"{named}{', ...' if len(busy) > 5 else ''}. Wait until it ends, then delete.",
            "order",
        )
    if not rows:
        db.session.rollback()
        raise ActionInputError("None of the selected orders exists any more.", "order")
    db.session.commit()
    db.session.expire_all()
    return len(rows), kept


def _delete_rows(actor, rows: list) -> int:
    """Audit the deletion of each of ``rows`` (``_DELETED_COLUMNS`` of orders held by
    ``records.lock``), then delete them, their history and their search names. Returns how many
    of them had a certificate."""
    found = [r.id for r in rows]
    kept = certificates.orders_with_certificate(found)
    names = _credential_names({r.credential_id for r in rows})
    audit.record_many(
        "order.delete",
        actor=actor,
        object_type="order",
        items=[
            (
                r.id,
                {
                    "ca_order_id": r.ca_order_id,
                    "credential": names.get(r.credential_id, r.credential_id),
                    "common_name": r.common_name,
                    "status": r.status,
                    "placement": r.placement,
                    "request_id": r.request_id,
                    "certificate_kept": r.id in kept,
                },
            )
            for r in rows
        ],
    )
    for i in range(0, len(found), CHUNK):
        chunk = found[i : i + CHUNK]
        # Their history and search names first, a statement each for the chunk: the foreign keys
        # would delete them too, but order by order. A successor's parent_id and a certificate's
        # order_id are set NULL by the foreign keys.
        for stmt in (
            delete(OrderEvent).where(OrderEvent.order_id.in_(chunk)),
            delete(OrderName).where(OrderName.order_id.in_(chunk)),
            delete(Order).where(Order.id.in_(chunk)),
        ):
            db.session.execute(stmt.execution_options(synchronize_session=False))
    return len(kept)


CHUNK = 2000  # the ids of orders one statement of Delete names (each a bound parameter)

# What Delete reads of each order: whether an action is under way on it, and its audit detail.
_DELETED_COLUMNS = (
    Order.id,
    Order.acting,
    Order.acting_until,
    Order.ca_order_id,
    Order.credential_id,
    Order.common_name,
    Order.status,
    Order.placement,
    Order.request_id,
)


def _columns_of(ids: list[int], *columns) -> list:
    """The ``columns`` of the orders ``ids`` (in increasing order) that exist, as rows by id."""
    out: list = []
    for i in range(0, len(ids), CHUNK):
        stmt = select(*columns).where(Order.id.in_(ids[i : i + CHUNK])).order_by(Order.id)
        out += db.session.execute(stmt).all()
    return out


def _credential_names(credential_ids: set[int]) -> dict[int, str]:
    """The names of the credentials ``credential_ids`` that exist, by id."""
    if not credential_ids:
        return {}
    stmt = select(EcsCredential.id, EcsCredential.name).where(
        EcsCredential.id.in_(sorted(credential_ids))
    )
    return {i: name for i, name in db.session.execute(stmt).all()}
