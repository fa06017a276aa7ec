"""Input a person can correct, and the bounds every request's input stays within.

Every feature's input error (``PkiError``, ``CredentialError``, ``UserError`` ...) is an
``InputError``: a message to show, and the form field to show it next to (empty for the whole
form). Views catch it, render the form again with the message, and answer 422; nothing is stored.
:func:`text` checks one text field against its column.

Bounds that hold for every route, including routes added later (``create_app`` installs them):

- :func:`check_request`, before every request: no query value longer than ``MAX_QUERY_VALUE``
  characters, no form value longer than ``MAX_FORM_VALUE`` (a view raises that for a field with
  :func:`long_fields`), no NUL character anywhere (PostgreSQL cannot store one). Refused with 413
  or 400 and a message that names the field.
- :func:`refuse_pasted_keys`, beside it: a private key in any form field but the few where one
  belongs (:data:`KEY_FIELDS`) is refused (400, the field named), before anything is stored,
  sent to Entrust or written to the audit trail.
- :class:`IdConverter`, the ``<int:...>`` of every route: an id beyond what an INTEGER column
  holds (2**31 - 1 on PostgreSQL) is not found (404), as no row has it.
- :class:`Request`: ``request.args.get(name, type=int)`` (and ``form``) gives the default for a
  number an INTEGER column cannot hold.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from contextlib import contextmanager
from urllib.parse import SplitResult, urlsplit

from flask import Request as FlaskRequest
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url
from werkzeug.datastructures import CombinedMultiDict, ImmutableMultiDict
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.routing import IntegerConverter
from werkzeug.utils import cached_property

INT_MAX = 2**31 - 1  # what an INTEGER column holds on PostgreSQL (SQLite: 2**63 - 1)
INT_MIN = -(2**31)
MAX_QUERY_VALUE = 1_000  # characters: searches, filters, page numbers
MAX_FORM_VALUE = 64 * 1024  # characters: any form field a view does not declare longer


class InputError(ValueError):
    """Input that cannot be accepted; ``field`` names the form field it belongs to. ``errors``
    holds each field's problem when a form had several (the message and field are the first's,
    see ``Problems``)."""

    def __init__(self, message: str, field: str | None = None, errors=None):
        super().__init__(message)
        self.field = field or ""
        self.errors: dict[str, str] = dict(errors or {})

    @property
    def message(self) -> str:
        return str(self)

    def as_errors(self) -> dict[str, str]:
        """``{field: message}`` for a form template (``form`` when no field is named)."""
        return dict(self.errors) or {self.field or "form": str(self)}


class Problems:
    """The problems of one sending of a form, each field's first, so that one sending names
    them all rather than one per sending. Checks that depend on an earlier one run only when it
    passed."""

    def __init__(self):
        self.errors: dict[str, str] = {}

    @contextmanager
    def gathered(self):
        """Runs a check (the block); its refusal is kept and the checks after the block go on."""
        try:
            yield
        except InputError as exc:
            for field, message in exc.as_errors().items():
                self.errors.setdefault(field, message)

    def raise_any(self, error: type[InputError] = InputError) -> None:
        """Raises ``error`` (an InputError class) naming every problem kept, if any."""
        if self.errors:
            field, message = next(iter(self.errors.items()))
            raise error(message, field, self.errors)


# Bidirectional overrides and isolates: they make text read differently from what it holds.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def is_control(ch: str, multiline: bool = False) -> bool:
    """A control character, line or paragraph separator, or text-direction mark (line breaks
    and tabs are text when ``multiline``)."""
    if multiline and ch in "\t\r\n":
        return False
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in _BIDI_CONTROLS


# The characters is_control names, as one class: Cc is U+0000-U+001F and U+007F-U+009F in every
# Unicode version, Zl and Zp are U+2028 and U+2029 alone. A search is one pass in C, against a
# call a character (every name of every stored certificate goes through it).
_CONTROLS = "\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_ANY_CONTROL = re.compile(f"[\x00-\x1f{_CONTROLS}]")
_CONTROL_BUT_LINES = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f{_CONTROLS}]")


def has_control(value: str, multiline: bool = False) -> bool:
    """Whether any character of ``value`` is_control (line breaks and tabs are text when
    ``multiline``)."""
    return (_CONTROL_BUT_LINES if multiline else _ANY_CONTROL).search(value) is not None


def text(
    value: str | None,
    *,
    field: str,
    label: str,
    max_length: int,
    required: bool = False,
    multiline: bool = False,
) -> str:
    """``value`` stripped, checked against its column: at most ``max_length`` characters, no
    control characters (line breaks and tabs allowed when ``multiline``), not empty when
    ``required``. Raises InputError on ``field`` with a message that names ``label``."""
    value = (value or "").strip()
    if required and not value:
        raise InputError(f"Enter the {label}.", field)
    if len(value) > max_length:
        raise InputError(
            f"The {label} is {len(value):,} characters long; at most {max_length:,} fit.", field
        )
    if has_control(value, multiline):
        raise InputError(
            f"The {label} contains a control character (such as a line break, a tab or a "
            "text-direction override); type it again without one.",
            field,
        )
    return value


# An e-mail address as Entrust takes one: a local part, one @, and a domain name with a dot.
_EMAIL = re.compile(r"^[^@\s,;]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


def is_email(value: str) -> bool:
    """Whether ``value`` is one e-mail address (such as ann@example.com), at most 254
    characters, in ASCII (as Entrust takes them: a domain in its xn-- form)."""
    return len(value) <= 254 and value.isascii() and _EMAIL.match(value) is not None


# -- bounds on every request ----------------------------------------------------------------------


class FieldTooLong(RequestEntityTooLarge):
    """A query or form value longer than the request bounds allow (413, with the field named)."""


class BadCharacter(BadRequest):
    """A NUL character in a query or form value (400, with the field named)."""


class KeyPasted(BadRequest):
    """A private key in a form field not meant for one (400, with the field named)."""


# The form fields where a private key belongs: the key of a CSR, and the texts pasted in place of
# files that may hold one with what the field asks for (a CSR, certificates to import); the views
# of those take the key apart and never show it again.
KEY_FIELDS = frozenset({"key_text", "csr_text", "pem_text"})


def long_fields(**limits: int) -> Callable:
    """Declare form fields of a view that may be longer than MAX_FORM_VALUE (a pasted file):
    ``@long_fields(pem_text=1024 * 1024)``, placed right under the route decorator."""

    def mark(view):
        view.long_fields = limits
        return view

    return mark


def check_request(request, view=None) -> None:
    """Refuse a request whose query or form values are over-long or hold a NUL character.
    ``view`` is the endpoint's function (for its :func:`long_fields`)."""
    for name, value in request.args.items(multi=True):
        _check(name, value, MAX_QUERY_VALUE, "search or filter value")
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        allowed = getattr(view, "long_fields", {})
        for name, value in request.form.items(multi=True):
            _check(name, value, allowed.get(name, MAX_FORM_VALUE), "form field")


def refuse_pasted_keys(form, holds_private_key: Callable[[str], bool]) -> None:
    """A private key typed or pasted in a field not meant for one (a requester's name, a
    comment, a user name) would be stored in clear, sent to Entrust or audited; refused with the
    field named, and the page that sent it keeps what was typed (nothing is sent back).
    ``holds_private_key`` is ``pki.holds_private_key`` (which reads this module)."""
    for name, value in form.items(multi=True):
        if name not in KEY_FIELDS and value and holds_private_key(value):
            shown = name if len(name) <= 40 and name.isprintable() else "a field"
            raise KeyPasted(
                f"The form field “{shown}” holds a private key. CertDesk takes a key only where "
                "one is asked for, and nothing was saved or sent: take the key out of that "
                "field and try again."
            )


def _check(name: str, value: str, limit: int, what: str) -> None:
    shown = name if len(name) <= 40 and name.isprintable() else "a field"
    if len(value) > limit or len(name) > 200:
        raise FieldTooLong(
            f"The {what} “{shown}” is {len(value):,} characters long; CertDesk takes at most "
            f"{limit:,}. Shorten it and try again."
        )
    if "\x00" in value or "\x00" in name:
        raise BadCharacter(
            f"The {what} “{shown.replace(chr(0), '')}” contains a NUL character, which CertDesk "
            "cannot store. Remove it and try again."
        )


def ids(values, limit: int | None = None) -> list[int]:
    """The distinct row ids among ``values`` (e.g. the ticked check boxes of a list), in order;
    anything that is not a whole number an INTEGER column holds is left out."""
    out = sorted(
        {
            int(v)
            for v in values
            if isinstance(v, int | str)
            and str(v).isascii()
            and str(v).isdigit()
            and len(str(v)) <= 10
            and 0 < int(v) <= INT_MAX
        }
    )
    return out[:limit] if limit else out


class IdConverter(IntegerConverter):
    """``<int:...>`` within an INTEGER column's range: a larger id is simply not found."""

    regex = r"[0-9]+"  # ASCII digits: not the other scripts' digits that int() also reads

    def __init__(self, map, *args, **kwargs):  # noqa: A002 (werkzeug's name)
        kwargs.setdefault("max", INT_MAX)
        super().__init__(map, *args, **kwargs)


class _BoundedGet:
    """``get(name, type=int)`` stays within an INTEGER column's range (the default otherwise),
    so a number no column holds never reaches the database."""

    def get(self, key, default=None, type=None):  # noqa: A002 (werkzeug's name)
        value = super().get(key, default, type)
        if type is int and isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
            return default
        return value


class BoundedParams(_BoundedGet, ImmutableMultiDict):
    """Query and form values (``request.args``, ``request.form``)."""


class BoundedValues(_BoundedGet, CombinedMultiDict):
    """Query and form values together (``request.values``)."""


class Request(FlaskRequest):
    parameter_storage_class = BoundedParams

    @cached_property
    def values(self) -> BoundedValues:
        # As werkzeug builds it (the form only for other methods than GET), bounded.
        sources = [self.args] if self.method == "GET" else [self.args, self.form]
        return BoundedValues(sources)


# A URL's "user:password@": after the scheme, up to the authority's last "@" (a password may
# hold one), not past the first "/", which begins the path.
_USER_PASSWORD = re.compile(r"(?i)^(\s*[a-z][a-z0-9+.-]*://[^:@/]*:)[^/]*@")
HIDDEN = "***"


def password_hidden(value: str) -> str:
    """``value`` as a form shows it again after a refusal: a URL's password (a proxy's, say,
    which CertDesk refuses to store) replaced by ``***``, so the page never carries it; the
    address stays refused until the password is taken out."""
    if not isinstance(value, str) or "@" not in value:
        return value
    return _USER_PASSWORD.sub(lambda m: f"{m.group(1)}{HIDDEN}@", value, count=1)


def http_url(value: str) -> SplitResult | None:
    """``value`` split, when it is an http:// or https:// URL with a host and, if any, a port
    from 1 to 65535; None otherwise (a port past 65535 or a bracket left open would fail only
    at the first call made with it).

    Also None when the HTTP client would connect to another host than the one read here: a
    backslash, say, ends the host for the client but not for ``urlsplit``, so that
    ``http://elsewhere\\@127.0.0.1/`` would pass a check for this machine and then go elsewhere."""
    if "\\" in value or any(c.isspace() for c in value):
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
        connects_to = parse_url(value).host
    except (ValueError, LocationParseError):
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        return None
    if (connects_to or "").strip("[]").lower() != parts.hostname:
        return None
    return parts
