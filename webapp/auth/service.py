"""Users, sign-in, throttling and first-run setup. Every change is audited in its transaction."""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.orm import load_only

from webapp.audit import service as audit
from webapp.auth.models import LoginAttempt, User, UserSession
from webapp.dbtypes import utcnow
from webapp.extensions import db, take_turn
from webapp.security import rbac
from webapp.settings import service as settings
from webapp.validation import InputError, Problems, is_email, text

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
SETUP_TOKEN_KEY = "first_run_token_sha256"  # noqa: S105 (a setting name)
USERNAME_LENGTH = User.__table__.c.username.type.length  # 64
FULL_NAME_LENGTH = User.__table__.c.full_name.type.length  # 120
EMAIL_LENGTH = User.__table__.c.email.type.length  # 254


class UserError(InputError):
    """Input that cannot be accepted; ``field`` names the form field it belongs to."""


class ChangedMeanwhile(UserError):
    """A form opened before someone else's save of the same field: nothing is saved."""


class LoginRefused(Exception):
    """A sign-in refused, with the words to show; ``retry_after``: the seconds to wait, when
    the try was held back by the throttles."""

    def __init__(self, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def normalise_username(username: str) -> str:
    """The one form of a user name, however it was typed: without surrounding spaces, in
    lower case, and in Unicode's compatibility form (NFKC), so that full-width "ａｄｍｉｎ", a
    ligature or a Kelvin sign name the same user as their plain letters, not a look-alike one."""
    name = unicodedata.normalize("NFKC", username or "").strip().lower()
    return unicodedata.normalize("NFKC", name)


def _name_as_stored_before(username: str) -> str:
    """A user name as CertDesk stored it before it took the NFKC form (lower case, trimmed):
    such a user still signs in with the name they were given."""
    return (username or "").strip().lower()


def _username_char(c: str) -> str:
    """``c`` when a user name may hold it (letters, digits, dots, dashes, underscores, @), else
    "?"."""
    return c if c.isalnum() or c in "._-@" else "?"


def _username_ok(name: str) -> bool:
    return 0 < len(name) <= USERNAME_LENGTH and all(
        c != "?" and _username_char(c) == c for c in name
    )


# How a sign-in as a name that is no user's is recorded: "?" starts it, which no user name holds.
UNKNOWN_NAME_PREFIX = "?unknown:"


def _unknown_name(typed: str) -> str:
    """How the sign-in throttles and the audit trail record a name that is no user's: a keyed
    fingerprint of what was typed (the same text, the same fingerprint), never the text. What is
    typed in that box is now and then a password, typed in the wrong one: the trail, which
    auditors read, must not keep it (with the user's sign-in that follows from the same address)."""
    key = current_app.secret_key
    key = key.encode() if isinstance(key, str) else bytes(key)
    text = typed.encode("utf-8", "replace")
    digest = hmac.new(key, b"sign-in name\0" + text, hashlib.sha256).hexdigest()
    return UNKNOWN_NAME_PREFIX + digest[:12]


def validate_username(username: str) -> str:
    name = normalise_username(username)
    if not _username_ok(name):
        raise UserError("Use 1-64 letters, digits, dots, dashes, underscores or @.", "username")
    if name in audit.SYSTEM_ACTORS:
        raise UserError(
            f"The audit trail names CertDesk's own work {name!r}: choose another user name.",
            "username",
        )
    return name


# Passwords long enough for the length rule that are among the first any guesser tries.
COMMON_PASSWORDS = frozenset(
    {
        "1234567890",
        "12345678910",
        "123456789012",
        "0987654321",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "qwertyuiop",
        "qwertyuiop123",
        "asdfghjkl;",
        "zxcvbnm123",
        "password12",
        "password123",
        "password1234",
        "password!1",
        "passw0rd123",
        "p@ssw0rd123",
        "letmein123",
        "welcome123",
        "iloveyou12",
        "changeme123",
        "administrator",
        "admin12345",
        "admin123456",
        "certdesk123",
        "entrust123",
        "abcdefghij",
        "abcd1234efgh",
    }
)
MIN_DISTINCT_CHARACTERS = 5


def validate_password(password: str, field: str = "password", username: str = "") -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise UserError(f"Use at least {MIN_PASSWORD_LENGTH} characters.", field)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"Use at most {MAX_PASSWORD_LENGTH:,} characters.", field)
    if "\x00" in password:
        raise UserError("A password cannot contain a NUL character.", field)
    lowered = password.lower()
    if (
        lowered in COMMON_PASSWORDS
        or len(set(lowered)) < MIN_DISTINCT_CHARACTERS
        or (username and lowered == username.lower())
    ):
        raise UserError(
            "That password is among the first any guesser tries (a common one, the user name, "
            "or few different characters). Choose another.",
            field,
        )


def validate_profile(full_name: str, email: str) -> tuple[str, str]:
    """A user's full name and e-mail, checked against their columns (a UserError names both
    when both are wrong)."""
    problems = Problems()
    with problems.gathered():
        full_name = text(
            full_name, field="full_name", label="full name", max_length=FULL_NAME_LENGTH
        )
    with problems.gathered():
        email = text(email, field="email", label="e-mail address", max_length=EMAIL_LENGTH)
        # The e-mail address starts the requester of an order: the order form's rule, so that
        # it is not refused there, on a field the user did not type.
        if email and not is_email(email):
            raise UserError(
                "Enter an e-mail address such as name@example.com, or leave it empty.", "email"
            )
    problems.raise_any(UserError)
    return full_name, email


def validate_new_user(
    username: str, password: str, full_name: str, email: str, again: str | None = None
) -> tuple[str, str, str]:
    """(user name, full name, e-mail) of a new user, checked with the password (typed twice
    when ``again`` is given); a UserError names every field in error at once."""
    problems = Problems()
    name = ""
    if again is not None:
        with problems.gathered():
            typed_alike(password, again)
    with problems.gathered():
        name = validate_username(username)
    with problems.gathered():
        full_name, email = validate_profile(full_name, email)
    with problems.gathered():  # the first box's, even when the second differs
        validate_password(password, username=name or normalise_username(username))
    problems.raise_any(UserError)
    return name, full_name, email


def by_username(username: str) -> User | None:
    """The user of this name as typed (normalise_username); failing that, a user whose name was
    stored as typed before names took their NFKC form."""
    name = normalise_username(username)
    names = {name, _name_as_stored_before(username)}
    found = {
        u.username: u
        for u in db.session.execute(select(User).where(User.username.in_(names))).scalars()
    }
    return found.get(name) or next(iter(found.values()), None)


def any_users() -> bool:
    return db.session.execute(select(User.id).limit(1)).first() is not None


# -- sign-in -----------------------------------------------------------------------------------


# IPv4 addresses as an IPv6 socket that also takes IPv4 sees them (::ffff:a.b.c.d).
_IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")


def canonical_address(text: str) -> str | None:
    """``text`` as an IP address written one way (IPv6 compressed; an IPv4 address mapped into
    IPv6, as a dual-stack socket gives it, as the IPv4 address), or None when it is none (a
    scope id such as fe80::1%eth0 included): one address is one key for the sign-in throttles
    and one value in the audit trail, however a peer or a proxy wrote it."""
    text = text.strip().strip("[]")
    if "%" in text:
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def _networks(raw: str) -> str:
    """Validate the trusted-proxies setting: addresses or networks, separated by commas. IPv4
    ones written as IPv6 (::ffff:10.0.0.5) are kept as IPv4, and are as narrow as those must be."""
    out = []
    for part in (p.strip() for p in raw.replace(";", ",").split(",")):
        if not part:
            continue
        try:
            network = ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise ValueError(
                f"{part[:60]} is not an IP address or network (such as 10.0.0.5 or 10.0.0.0/24)."
            ) from None
        if network.version == 6 and network.subnet_of(_IPV4_MAPPED):
            network = ipaddress.ip_network(
                (int(network.network_address) & 0xFFFFFFFF, network.prefixlen - 96)
            )
        if network.prefixlen < WIDEST_PROXY_NETWORK[network.version]:
            raise ValueError(
                f"{part[:60]} takes in nearly every address: anyone could then choose the address "
                "CertDesk records for them (X-Forwarded-For), past the sign-in throttles. Name "
                "the proxies' own addresses or networks."
            )
        out.append(str(network))
    return ", ".join(out)


def https_at_proxy(remote: str | None, forwarded_proto: str | None) -> bool:
    """The browser reached a trusted reverse proxy over HTTPS: ``remote`` (the peer) is one, and
    says so in X-Forwarded-Proto (its first value, the hop nearest the browser)."""
    first = (forwarded_proto or "").split(",")[0].strip().lower()
    return first == "https" and _proxy_trust()(remote or "")


# The widest network (by prefix length) that may be named a trusted proxy, for IPv4 and IPv6.
WIDEST_PROXY_NETWORK = {4: 8, 6: 32}


TRUSTED_PROXIES = settings.register(
    "security.trusted_proxies",
    "",
    "Trusted reverse proxies",
    "Addresses or networks (CIDR) of the reverse proxies in front of CertDesk, separated by "
    "commas, e.g. 10.0.0.5, 192.168.10.0/24. A request from one of them counts as coming from the "
    "address it names in X-Forwarded-For (for sign-in throttling and the audit trail), and as "
    "HTTPS when it sends X-Forwarded-Proto: https (the session cookie is then Secure); from "
    "anywhere else those headers are ignored. Empty: CertDesk is reached directly.",
    validate=_networks,
)


def _proxy_trust():
    """A test of an address: is it a trusted reverse proxy (Admin › Settings)?"""
    trusted = [
        ipaddress.ip_network(n) for n in (settings.get(TRUSTED_PROXIES) or "").split(", ") if n
    ]

    def is_trusted(address: str) -> bool:
        canonical = canonical_address(address)
        if canonical is None:
            return False
        ip = ipaddress.ip_address(canonical)
        return any(ip in net for net in trusted)

    return is_trusted


def client_address(remote: str | None, forwarded_for: str | None) -> str:
    """The client's address: ``remote`` (the peer), or, when the peer is a trusted reverse proxy,
    the nearest address in X-Forwarded-For that is not itself a trusted proxy; each written one
    way (``canonical_address``)."""
    remote = canonical_address(remote or "") or (remote or "")
    if not forwarded_for:
        return remote
    is_trusted = _proxy_trust()
    if not is_trusted(remote):
        return remote
    client = remote
    for hop in reversed(forwarded_for.split(",")):
        address = canonical_address(hop)
        if address is None:
            break  # a malformed hop: trust nothing beyond it
        client = address
        if not is_trusted(address):
            break
    return client


@dataclass
class Throttle:
    """Failed sign-ins counted for one key (a user name from an address, or an address)."""

    failures: int
    last_failure_at: datetime | None
    free: int

    def wait(self, now: datetime) -> timedelta:
        """How long the next try must wait from ``now`` (zero: it may go ahead)."""
        if self.failures < self.free or self.last_failure_at is None:
            return timedelta(0)
        limit = timedelta(minutes=current_app.config["LOGIN_MAX_WAIT_MINUTES"])
        step = min(timedelta(seconds=2 ** min(self.failures - self.free, 20)), limit)
        return max(timedelta(0), self.last_failure_at + step - now)


def _failures(*conds, since: datetime) -> tuple[int, datetime | None]:
    count, last = db.session.execute(
        select(func.count(), func.max(LoginAttempt.at)).where(
            *conds, LoginAttempt.success.is_(False), LoginAttempt.at >= since
        )
    ).one()
    return count, last


def _last_success(*conds) -> datetime | None:
    return db.session.execute(
        select(func.max(LoginAttempt.at)).where(*conds, LoginAttempt.success.is_(True))
    ).scalar()


def _name_throttle(name: str, now: datetime) -> Throttle:
    """The failures of ``name`` from any address within the window. The owner's sign-ins do
    not reset it: they would give whoever guesses a fresh allowance each time."""
    cfg = current_app.config
    window = now - timedelta(hours=cfg["LOGIN_FAILURE_WINDOW_HOURS"])
    failures = _failures(LoginAttempt.username == name, since=window)
    return Throttle(*failures, cfg["LOGIN_FREE_FAILURES_PER_NAME"])


def throttles(name: str, address: str, now: datetime) -> list[Throttle]:
    """The throttles a sign-in from ``address`` as ``name`` passes: the name from this address
    (failures since its last success there), the address whatever the names, and, from an
    address the name has not signed in from lately, the name whatever the addresses (so that
    guesses spread over many addresses are slowed too, but not the owner at their own)."""
    cfg = current_app.config
    window = now - timedelta(hours=cfg["LOGIN_FAILURE_WINDOW_HOURS"])
    pair = (LoginAttempt.username == name, LoginAttempt.address == address)
    last_ok = _last_success(*pair)
    since = max(window, last_ok) if last_ok else window
    out = [
        Throttle(*_failures(*pair, since=since), cfg["LOGIN_FREE_FAILURES"]),
        Throttle(
            *_failures(LoginAttempt.address == address, since=window),
            cfg["LOGIN_FREE_FAILURES_PER_ADDRESS"],
        ),
    ]
    if last_ok is None or last_ok < now - timedelta(days=cfg["LOGIN_KNOWN_ADDRESS_DAYS"]):
        out.append(_name_throttle(name, now))
    return out


# How Slowed and clear_slowed name the throttle of a user name from the addresses it has not
# signed in from lately (no address is empty).
ANY_NEW_ADDRESS = ""


@dataclass
class Slowed:
    username: str
    address: str
    failures: int
    last_failure_at: datetime
    wait: timedelta


# Admin > Users looks for slowed sign-ins among this many of the newest failed ones. A sign-in
# attack from many addresses can leave hundreds of thousands in the failure window: grouping them
# all took the page seconds. Each pair found is then counted in full (throttles), by its index.
SLOWED_LOOKED_AT = 5000


def _newest_failures(window: datetime):
    """The newest SLOWED_LOOKED_AT failed sign-ins within the window, read back along the index
    on their time."""
    return (
        select(LoginAttempt.username, LoginAttempt.address, LoginAttempt.at)
        .where(LoginAttempt.success.is_(False), LoginAttempt.at >= window)
        .order_by(LoginAttempt.at.desc())
        .limit(SLOWED_LOOKED_AT)
        .subquery()
    )


def slowed_sign_ins(limit: int = 50) -> list[Slowed]:
    """User names being tried from an address that must now wait (Admin > Users), among the
    newest SLOWED_LOOKED_AT failed sign-ins (more_failures_than_looked_at says if there are
    older ones in the window)."""
    cfg, now = current_app.config, utcnow()
    window = now - timedelta(hours=cfg["LOGIN_FAILURE_WINDOW_HOURS"])
    newest = _newest_failures(window)
    pairs = db.session.execute(
        select(newest.c.username, newest.c.address)
        .group_by(newest.c.username, newest.c.address)
        .having(func.count() >= cfg["LOGIN_FREE_FAILURES"])
        .order_by(func.max(newest.c.at).desc())
        .limit(limit)
    ).all()
    out = []
    for name, address in pairs:
        pair = throttles(name, address, now)[0]
        if pair.failures >= pair.free:
            out.append(Slowed(name, address, pair.failures, pair.last_failure_at, pair.wait(now)))
    names = db.session.execute(
        select(newest.c.username)
        .group_by(newest.c.username)
        .having(func.count() >= cfg["LOGIN_FREE_FAILURES_PER_NAME"])
        .order_by(func.max(newest.c.at).desc())
        .limit(limit)
    ).scalars()
    for name in names:
        spread = _name_throttle(name, now)
        if spread.failures >= spread.free:
            out.append(
                Slowed(
                    name, ANY_NEW_ADDRESS, spread.failures, spread.last_failure_at, spread.wait(now)
                )
            )
    return out


def more_failures_than_looked_at() -> bool:
    """Whether the failure window holds more failed sign-ins than slowed_sign_ins looks at."""
    window = utcnow() - timedelta(hours=current_app.config["LOGIN_FAILURE_WINDOW_HOURS"])
    stmt = (
        select(LoginAttempt.id)
        .where(LoginAttempt.success.is_(False), LoginAttempt.at >= window)
        .order_by(LoginAttempt.at.desc())
        .offset(SLOWED_LOOKED_AT)
        .limit(1)
    )
    return db.session.execute(stmt).first() is not None


def clear_slowed(actor, username: str, address: str) -> int:
    """Forget the failed sign-ins of ``username`` from ``address`` (ANY_NEW_ADDRESS: from every
    address): no wait for it any more (audited, with how many were forgotten)."""
    rbac.check(actor, rbac.USERS_MANAGE)
    where = [LoginAttempt.username == username, LoginAttempt.success.is_(False)]
    if address != ANY_NEW_ADDRESS:
        where.append(LoginAttempt.address == address)
    cleared = db.session.execute(delete(LoginAttempt).where(*where)).rowcount
    user = db.session.execute(select(User).where(User.username == username)).scalar()
    audit.record(
        "auth.throttle_cleared",
        object_type="user",
        object_id=user.id if user is not None else username,
        actor=actor,
        detail={"username": username, "address": address, "failures": cleared},
    )
    db.session.commit()
    return cleared


def _wait(name: str, address: str, now: datetime) -> timedelta:
    """How long the sign-in throttles make ``name`` from ``address`` wait (zero: not at all)."""
    return max(t.wait(now) for t in throttles(name, address, now))


# The turns (``take_turn``) of sign-ins, and of changes that could leave no administrator.
SIGN_IN_TURN = int.from_bytes(b"CDSIGNIN")
ADMINS_TURN = int.from_bytes(b"CDADMINS")


def _throttled_after_check(name: str, address: str, ok: bool, *, keep_success=True) -> timedelta:
    """After the password check (a tenth of a second, without the database): the throttles again,
    one sign-in at a time, counting the tries decided meanwhile; then this one is recorded in the
    transaction (a success only with ``keep_success``). Guesses sent together were all checked,
    but only those the throttles still allow get their answer; a refused try is not recorded, and
    its answer, right or wrong, is "wait". Returns the wait (zero: go on, and commit)."""
    take_turn(SIGN_IN_TURN)
    wait = _wait(name, address, utcnow())
    if wait:
        db.session.rollback()
    elif keep_success or not ok:
        db.session.add(LoginAttempt(username=name, address=address, success=ok))
    return wait


# Sign-ins the throttles refused are not recorded one by one (a flood of guesses would be a
# flood of rows); the audit trail notes them at most once a minute per address (in this worker).
THROTTLED_NOTE_EVERY = timedelta(minutes=1)


def _note_throttled(name: str, address: str, wait: timedelta, user: User | None) -> None:
    """Audit that a sign-in from ``address`` was refused by the throttles, unless one was noted
    for that address within ``THROTTLED_NOTE_EVERY``."""
    noted: dict[str, datetime] = current_app.extensions.setdefault("sign_ins_throttled", {})
    now = utcnow()
    last = noted.get(address)
    if last is not None and now - last < THROTTLED_NOTE_EVERY:
        return
    if len(noted) >= 10_000:  # many addresses: forget those noted long enough ago
        for key, at in list(noted.items()):
            if now - at >= THROTTLED_NOTE_EVERY:
                noted.pop(key, None)
    noted[address] = now
    _record_refusal(
        "auth.login_throttled",
        name,
        "refused",
        {
            "address": address,
            "wait_seconds": _whole_seconds(wait),
            "noted": "at most once a minute per address; later refused tries are not recorded",
        },
        user,
    )


def _record_refusal(
    action: str, name: str, outcome: str, detail: dict, user: User | None = None
) -> None:
    """Audit a refused sign-in as ``name`` (which may be no user's), in its own transaction.
    The object is ``user`` by its id, as in every other event about a user (so that the trail
    filtered by ``user:<id>`` holds its failed sign-ins too); a name no user has stands alone."""
    audit.record(
        action,
        object_type="user",
        object_id=user.id if user is not None else name,
        outcome=outcome,
        actor=name or "-",
        detail=detail,
    )
    db.session.commit()


def _whole_seconds(wait: timedelta) -> int:
    return int(wait.total_seconds() + 0.999)


def _in_words(wait: timedelta) -> str:
    seconds = _whole_seconds(wait)
    if seconds < 120:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{-(-seconds // 60)} minutes"


_dummy: list[str] = []


def _check_password(password_hash: str | None, password: str) -> bool:
    """One password check, the same work whoever signs in: a name that is no user is checked
    against a hash of the same kind, so the answer's time does not tell which names exist."""
    if password_hash is None:
        if not _dummy:
            _dummy.append(User.hash_password(secrets.token_urlsafe(16)))
        password_hash = _dummy[0]
        User.verify_password(password_hash, password)
        return False
    return User.verify_password(password_hash, password)


def authenticate(
    username: str, password: str, address: str, user_agent: str = ""
) -> tuple[User, str]:
    """Check a sign-in; raise LoginRefused with the message to show. Records and audits the try.
    Returns the user and the token of the new server-side session (for the cookie)."""
    name = normalise_username(username)
    user = by_username(username) if _username_ok(name) else None
    # A name no user has is recorded as a wrong sign-in under a fingerprint (_unknown_name), so
    # neither a password typed in the wrong box nor line breaks or direction marks reach the
    # audit trail.
    name = user.username if user is not None else _unknown_name(name)
    address = (address or "")[:64]
    # A try the throttles hold already costs no password check.
    wait = _wait(name, address, utcnow())
    if not wait:
        matches = _check_password(user.password_hash if user is not None else None, password or "")
        ok = user is not None and matches and user.active
        wait = _throttled_after_check(name, address, ok)
    if wait:
        _note_throttled(name, address, wait, user)
        raise LoginRefused(
            f"Too many failed sign-in attempts from your address. Wait {_in_words(wait)} and "
            "try again.",
            retry_after=_whole_seconds(wait),
        )
    if not ok:
        reason = "disabled" if user and not user.active else "bad credentials"
        _record_refusal("auth.login_failed", name, "failure", {"reason": reason}, user)
        raise LoginRefused("Wrong user name or password.")
    user.last_login_at = utcnow()
    token = _new_session(user, address, user_agent)
    audit.record("auth.login", object_type="user", object_id=user.id, actor=user)
    db.session.commit()
    return user, token


def prune_login_attempts() -> int:
    """Forget failed sign-ins the throttles no longer count (older than the failure window,
    and at least two days), successful ones older than the days an address stays known
    (LOGIN_KNOWN_ADDRESS_DAYS), and sessions ended (or idle) for a week."""
    now, cfg = utcnow(), current_app.config
    known = timedelta(days=cfg["LOGIN_KNOWN_ADDRESS_DAYS"])
    failures = max(timedelta(days=2), timedelta(hours=cfg["LOGIN_FAILURE_WINDOW_HOURS"]))
    res = db.session.execute(
        delete(LoginAttempt).where(
            LoginAttempt.at < now - failures,
            or_(LoginAttempt.success.is_(False), LoginAttempt.at < now - known),
        )
    )
    db.session.execute(
        delete(UserSession).where(
            or_(
                UserSession.ended_at < now - SESSION_KEPT,
                UserSession.last_seen_at < now - SESSION_KEPT,
            )
        )
    )
    db.session.commit()
    return res.rowcount


# -- sessions ----------------------------------------------------------------------------------

SESSION_TOUCH = timedelta(seconds=60)  # last_seen_at is written at most this often
SESSION_KEPT = timedelta(days=7)  # ended sessions stay listed (Admin > Users) this long
SESSION_TOKEN_KEY = "sid"  # noqa: S105 (the cookie session's key holding the token)
END_REASONS = {
    "signed out": "signed out",
    "idle": "idle for longer than the timeout",
    "expired": "open for longer than a session may be",
    "password": "password changed",
    "reset": "password reset by an administrator",
    "role": "role changed",
    "own role": "role changed by the user",
    "disabled": "user disabled",
    "administrator": "ended by an administrator",
    "own": "ended by the user",
}


def _by_self(actor, user: User) -> bool:
    """Whether ``actor`` changes their own account (their sessions end with words that say so)."""
    return getattr(actor, "id", None) == user.id


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_session(user: User, address: str, user_agent: str) -> str:
    """Add a session for ``user`` to the transaction; return the token for the cookie."""
    token = secrets.token_urlsafe(32)
    db.session.add(
        UserSession(
            token_hash=_token_hash(token),
            user_id=user.id,
            address=(address or "")[:64],
            user_agent=(user_agent or "")[:200],
        )
    )
    return token


def _end_sessions(user: User, reason: str) -> int:
    """End every open session of ``user`` in the transaction; returns how many."""
    return db.session.execute(
        update(UserSession)
        .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=reason)
    ).rowcount


# Every signed-in request runs this, first of all its statements: built once (with its cache
# key), reading the few columns the check needs, and the user with it (``UserSession.user``).
# Built at its first use, not at import: ``load_only`` configures the mappers, and a module
# imported before all the models (a script importing a service first) would fail.
@functools.cache
def _session_by_token():
    return (
        select(UserSession)
        .options(
            load_only(
                UserSession.user_id,
                UserSession.created_at,
                UserSession.last_seen_at,
                UserSession.ended_at,
            )
        )
        .where(UserSession.token_hash == bindparam("token_hash"))
    )


def resume_session(
    token: str | None, user_ident: str | None, *, touch: bool = True
) -> tuple[User | None, str]:
    """The user of the session whose cookie holds ``token`` (and ``user_ident``, Flask-Login's
    id), or None and why: "idle" (ended now, after IDLE_TIMEOUT_MINUTES without a request),
    "expired" (ended now, SESSION_MAX_HOURS after its sign-in, however active), the reason it
    was ended with (one of END_REASONS: a role changed, the user disabled...), or
    "ended" (unknown). Notes the request as the session's last activity (unless not
    ``touch``: a page asking how long its session has left)."""
    if not token:
        return None, "ended"
    row = db.session.execute(_session_by_token(), {"token_hash": _token_hash(token)}).scalar()
    if row is None:
        return None, "ended"
    if row.ended_at is not None:
        return None, row.end_reason if row.end_reason in END_REASONS else "ended"
    if not row.user.active:
        return None, "disabled"
    if str(user_ident or "").partition(":")[0] != str(row.user_id):
        return None, "ended"
    now = utcnow()
    for reason, ended in (
        ("idle", row.last_seen_at < idle_before(now)),
        ("expired", row.created_at < expired_before(now)),
    ):
        if ended:
            row.ended_at, row.end_reason = now, reason
            db.session.commit()
            return None, reason
    if touch and now - row.last_seen_at > SESSION_TOUCH:
        row.last_seen_at = now
        db.session.commit()
    return row.user, ""


def session_ends_in(token: str | None) -> tuple[int, str]:
    """Seconds until the open session of ``token`` ends, and how: "idle" (its idle timeout,
    which any request moves on) or "expired" (its time limit, which nothing moves)."""
    row = db.session.execute(_session_by_token(), {"token_hash": _token_hash(token or "")}).scalar()
    if row is None or row.ended_at is not None:
        return 0, "ended"
    now = utcnow()
    idle = (row.last_seen_at - idle_before(now)).total_seconds()
    limit = (row.created_at - expired_before(now)).total_seconds()
    return (max(0, int(idle)), "idle") if idle <= limit else (max(0, int(limit)), "expired")


def sign_out(user: User, token: str | None) -> None:
    """End the session of this cookie (audited)."""
    if token:
        db.session.execute(
            update(UserSession)
            .where(UserSession.token_hash == _token_hash(token), UserSession.ended_at.is_(None))
            .values(ended_at=utcnow(), end_reason="signed out")
        )
    audit.record("auth.logout", object_type="user", object_id=user.id, actor=user)
    db.session.commit()


def is_this_session(row: UserSession, token: str | None) -> bool:
    """Whether ``row`` is the session of the cookie holding ``token`` (the browser asking)."""
    return bool(token) and hmac.compare_digest(row.token_hash, _token_hash(token))


def idle_before(now: datetime | None = None) -> datetime:
    """A session whose last request came before this has ended, idle (its next request is
    refused), though it is marked so only then."""
    now = now or utcnow()
    return now - timedelta(minutes=current_app.config["IDLE_TIMEOUT_MINUTES"])


def expired_before(now: datetime | None = None) -> datetime:
    """A session signed in before this has ended, however active (SESSION_MAX_HOURS)."""
    now = now or utcnow()
    return now - timedelta(hours=current_app.config["SESSION_MAX_HOURS"])


def sessions_of(user: User, limit: int = 20) -> list[UserSession]:
    """The user's sessions, open ones first, then the most recently active."""
    return list(
        db.session.execute(
            select(UserSession)
            .where(UserSession.user_id == user.id)
            .order_by(UserSession.ended_at.is_(None).desc(), UserSession.last_seen_at.desc())
            .limit(limit)
        ).scalars()
    )


def end_sessions(actor, user: User) -> int:
    """An administrator ends every open session of ``user`` (audited); returns how many."""
    rbac.check(actor, rbac.USERS_MANAGE)
    ended = _end_sessions(user, "own" if _by_self(actor, user) else "administrator")
    audit.record(
        "user.sessions_ended",
        object_type="user",
        object_id=user.id,
        actor=actor,
        detail={"username": user.username, "sessions": ended},
    )
    db.session.commit()
    return ended


# -- user management ---------------------------------------------------------------------------


def _active_admins() -> int:
    return db.session.execute(
        select(func.count()).select_from(User).where(User.role == "admin", User.active.is_(True))
    ).scalar_one()


def _guard_last_admin(user: User, new_role: str | None = None, new_active: bool | None = None):
    loses_admin = (new_role is not None and new_role != "admin") or new_active is False
    if user.role == "admin" and user.active and loses_admin:
        # Two administrators demoting each other at once: the second counts after the first.
        take_turn(ADMINS_TURN)
        if _active_admins() <= 1:
            db.session.rollback()
            raise UserError("This is the last active administrator; make another one first.")


def _check_role(role: str) -> None:
    if role not in rbac.ROLES:
        raise UserError("Choose a role.", "role")


def create_user(actor, username, password, role, full_name="", email="") -> User:
    """Create a user (admin only). Raises UserError on bad or duplicate input."""
    if actor is not None:
        rbac.check(actor, rbac.USERS_MANAGE)
    problems = Problems()
    name = ""
    with problems.gathered():
        name, full_name, email = validate_new_user(username, password, full_name, email)
    with problems.gathered():
        _check_role(role)
    problems.raise_any(UserError)
    if by_username(name):
        raise UserError("That user name is taken.", "username")
    user = User(username=name, role=role, full_name=full_name, email=email, active=True)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    audit.record(
        "user.create",
        object_type="user",
        object_id=user.id,
        actor=actor or "cli",
        detail={"username": name, "role": role},
    )
    db.session.commit()
    return user


def record_refused(actor, action: str, exc: InputError, user: User | None) -> None:
    """Audit a refused change of Admin › Users (``action``: the event the change would have
    left), in its own transaction, after rolling back whatever the change had begun: who tried
    it, on which user, and why, in the words they read (the form field too). Nothing typed is
    kept, so no password is."""
    user_id, username = (user.id, user.username) if user is not None else ("", "")
    db.session.rollback()
    audit.record(
        action,
        actor=actor,
        object_type="user",
        object_id=user_id,
        outcome="refused",
        detail={"username": username, "reason": str(exc)}
        | ({"field": exc.field} if exc.field else {}),
    )
    db.session.commit()


def record_refused_create(actor, username: str, role: str, exc: InputError) -> None:
    """Audit a refused new user as a refused sign-in is recorded: a name that is a user's
    (taken) by that user's id and name; any other by a keyed fingerprint, never as typed (a
    password typed in the wrong box must not reach the trail). The role asked for is kept."""
    name = normalise_username(username)
    taken = by_username(username) if _username_ok(name) else None
    taken_id, taken_name = (taken.id, taken.username) if taken is not None else (None, "")
    db.session.rollback()
    audit.record(
        "user.create",
        actor=actor,
        object_type="user",
        object_id=taken_id if taken_id is not None else (_unknown_name(name) if name else ""),
        outcome="refused",
        detail={
            "username": taken_name,
            "role": role if role in rbac.ROLES else "",
            "reason": str(exc),
        }
        | ({"field": exc.field} if exc.field else {}),
    )
    db.session.commit()


def get_user(user_id: int) -> User | None:
    return db.session.get(User, user_id)


def change_role(actor, user: User, role: str, opened: str | None = None) -> None:
    """``opened``: the role the form was opened with. When the role was changed since (by
    someone else, or in another tab), another choice raises ChangedMeanwhile and nothing is
    saved: the second of two administrators does not undo the first's change unknowingly."""
    rbac.check(actor, rbac.USERS_MANAGE)
    _check_role(role)
    if role == user.role:
        return
    if opened is not None and opened != user.role:
        raise ChangedMeanwhile(
            f"The role was changed to {rbac.ROLE_LABELS.get(user.role, user.role)} after this "
            "page was opened (by someone else, or in another tab); nothing was saved. Make your "
            "change again.",
            "role",
        )
    _guard_last_admin(user, new_role=role)
    old, user.role = user.role, role
    user.session_version += 1
    _end_sessions(user, "own role" if _by_self(actor, user) else "role")
    audit.record(
        "user.role_change",
        object_type="user",
        object_id=user.id,
        actor=actor,
        detail={"username": user.username, "from": old, "to": role},
    )
    db.session.commit()


_PROFILE_WORDS = {"full_name": "full name", "email": "e-mail address"}


def change_profile(
    actor, user: User, full_name: str, email: str, opened: dict[str, str] | None = None
) -> bool:
    """A user's full name and e-mail (the requester an order form starts with). Returns whether
    anything changed.

    ``opened``: the values the form was opened with. A field left as opened keeps what is
    stored (a change saved meanwhile elsewhere stays); one changed here while it was changed
    elsewhere too raises UserError, and nothing is saved."""
    rbac.check(actor, rbac.USERS_MANAGE)
    full_name, email = validate_profile(full_name, email)
    before = {"full_name": user.full_name, "email": user.email}
    after = {"full_name": full_name, "email": email}
    for name, was in (opened or {}).items():
        if name not in after:
            continue
        if after[name] == was.strip():
            after[name] = before[name]  # left as opened
        elif before[name] != was.strip() and after[name] != before[name]:
            now = before[name] or "empty"
            raise ChangedMeanwhile(
                f"The {_PROFILE_WORDS[name]} was changed to {now} after this page was opened (by "
                "someone else, or in another tab); nothing was saved. Make your change again.",
                name,
            )
    if before == after:
        return False
    user.full_name, user.email = after["full_name"], after["email"]
    changed = [k for k in after if after[k] != before[k]]
    audit.record(
        "user.profile_change",
        object_type="user",
        object_id=user.id,
        actor=actor,
        detail={
            "username": user.username,
            "from": {k: before[k] for k in changed},
            "to": {k: after[k] for k in changed},
        },
    )
    db.session.commit()
    return True


def set_active(actor, user: User, active: bool) -> None:
    rbac.check(actor, rbac.USERS_MANAGE)
    if user.active == active:
        return
    _guard_last_admin(user, new_active=active)
    if not active and getattr(actor, "id", None) == user.id:
        raise UserError("You cannot disable your own account; another administrator can.")
    user.active = active
    user.session_version += 1
    if not active:
        _end_sessions(user, "disabled")
    audit.record(
        "user.enable" if active else "user.disable",
        object_type="user",
        object_id=user.id,
        actor=actor,
        detail={"username": user.username},
    )
    db.session.commit()


def reset_password(actor, user: User, password: str) -> None:
    rbac.check(actor, rbac.USERS_MANAGE)
    if getattr(actor, "id", None) == user.id:
        # A reset asks for no current password: one's own is changed where it is asked for.
        raise UserError(
            "To change your own password, use Change password (it asks for the current one).",
            "password",
        )
    validate_password(password, username=user.username)
    user.set_password(password)
    user.session_version += 1
    _end_sessions(user, "reset")
    audit.record(
        "user.password_reset",
        object_type="user",
        object_id=user.id,
        actor=actor,
        detail={"username": user.username},
    )
    db.session.commit()


def change_own_password(
    user: User, current: str, password: str, again: str, address: str, user_agent: str = ""
) -> str:
    """A user's own password change: the new password typed twice alike (``again``), then the
    current password (a wrong one counts as a failed sign-in, so the throttle holds against a
    borrowed session), then the new one's rules. Every session of the user ends, and a new one
    begins for this browser; returns its token. Each refusal is audited
    (:func:`record_own_password_refused`) before it is raised."""
    address = (address or "")[:64]
    try:
        typed_alike(password, again)
        wait = _wait(user.username, address, utcnow())
        if not wait:
            ok = _check_password(user.password_hash, current or "")
            wait = _throttled_after_check(user.username, address, ok, keep_success=False)
        if wait:
            raise UserError(
                f"Too many wrong passwords. Wait {_in_words(wait)} and try again.",
                "current_password",
            )
        if not ok:  # committed with its failed try, which the throttle counts
            raise UserError("The current password is wrong.", "current_password")
        db.session.commit()  # the sign-in turn ends before the new password is hashed
        validate_password(password, username=user.username)
        if password == current:
            raise UserError("Choose a password other than the current one.", "password")
    except UserError as exc:
        record_own_password_refused(user, exc)
        raise
    user.set_password(password)
    user.session_version += 1
    _end_sessions(user, "password")
    token = _new_session(user, address, user_agent)
    audit.record("user.password_change", object_type="user", object_id=user.id, actor=user)
    db.session.commit()
    return token


def typed_alike(password: str, again: str) -> None:
    """The new password typed the same in both boxes, or UserError (on the second box)."""
    if password != again:
        raise UserError(
            "The passwords differ: type the new password in both boxes again.", "password2"
        )


def record_own_password_refused(user: User, exc: InputError) -> None:
    """Audit a refused change of one's own password (``user.password_change``, outcome failure),
    committed: why, in the words the page shows, and the form field. Nothing typed is kept. What
    the session holds is committed with it: a wrong current password's failed try, or nothing."""
    audit.record(
        "user.password_change",
        object_type="user",
        object_id=user.id,
        outcome="failure",
        actor=user,
        detail={"reason": str(exc)} | ({"field": exc.field} if exc.field else {}),
    )
    db.session.commit()


def users_query():
    """Every user by user name (the unique index on it serves the order and the pages)."""
    return select(User).order_by(User.username)


# -- first-run setup ---------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def record_setup_refused(username: str, exc: InputError) -> None:
    """Audit a refused first-run setup (``user.create`` by "anonymous", outcome failure),
    committed: the user name asked for, why, in the words the page shows, and the form field.
    No password typed is kept."""
    audit.record(
        "user.create",
        object_type="user",
        outcome="failure",
        actor="anonymous",
        detail={"username": (username or "")[:64], "via": "first-run setup", "reason": str(exc)}
        | ({"field": exc.field} if exc.field else {}),
    )
    db.session.commit()


def issue_setup_token() -> str | None:
    """While no user exists, make a fresh one-time setup token (only its hash is stored)."""
    if any_users():
        return None
    token = secrets.token_urlsafe(24)
    settings.put(SETUP_TOKEN_KEY, _digest(token))
    db.session.commit()
    return token


def setup_token_valid(token: str) -> bool:
    stored = settings.get(SETUP_TOKEN_KEY)
    return bool(token and stored) and hmac.compare_digest(stored, _digest(token))


def complete_setup(
    token: str,
    username: str,
    password: str,
    again: str,
    full_name: str = "",
    address: str = "",
    user_agent: str = "",
    email: str = "",
) -> tuple[User, str]:
    """Create the first administrator with the console token; the token then stops working.
    Returns the administrator and the token of their new session (signed in).

    The token is claimed in the transaction that creates the administrator: of several requests
    with the same link at once, exactly one claims it; the others are refused. Each refusal is
    audited (:func:`record_setup_refused`) before it is raised."""
    try:
        name, full_name, email = validate_new_user(username, password, full_name, email, again)
        password_hash = User.hash_password(password)  # before the claim: the claim locks the row
        if not token or not settings.claim(SETUP_TOKEN_KEY, _digest(token)) or any_users():
            raise UserError("This setup link is no longer valid.")
    except InputError as exc:
        db.session.rollback()
        record_setup_refused(username, exc)
        raise
    user = User(
        username=name,
        role="admin",
        full_name=full_name,
        email=email,
        password_hash=password_hash,
        active=True,
    )
    user.last_login_at = utcnow()  # the setup page signs them in
    db.session.add(user)
    db.session.flush()
    audit.record(
        "user.create",
        object_type="user",
        object_id=user.id,
        actor=user,
        detail={"username": name, "role": "admin", "via": "first-run setup"},
    )
    session_token = _new_session(user, address, user_agent)
    db.session.commit()
    return user, session_token
