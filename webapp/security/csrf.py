"""The pages' CSRF token: a session's token is signed once per worker, not at every page.

Every page carries the token (htmx sends it as a header, forms as a field), through the templates'
``csrf_token()``. Flask-WTF's ``generate_csrf`` signs the session's raw token afresh for each
request: a serializer, a key derivation and a timestamp, 1% of a list page's instructions. The
timestamp is not checked (``WTF_CSRF_TIME_LIMIT`` is None: a token lives as long as its session),
so the first token signed for a session serves every later page of it. With a time limit set,
every page gets a freshly signed token again.
"""

from __future__ import annotations

from functools import wraps

from flask import Flask, current_app, g, render_template, request, session
from flask_wtf.csrf import generate_csrf

FIELD = "csrf_token"  # Flask-WTF's name for it, in the session (raw) and in g (signed)
REMEMBERED = 4096  # sessions whose signed token a worker keeps (it forgets them all when full)

_signed: dict[tuple[str, str], str] = {}


def csrf_token() -> str:
    """The signed CSRF token of the request's session (``generate_csrf``, remembered)."""
    signed = g.get(FIELD)
    if signed is not None:
        return signed
    if current_app.config["WTF_CSRF_TIME_LIMIT"] is not None:  # a kept token would expire
        return generate_csrf()
    secret = current_app.config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key
    raw = session.get(FIELD)
    if isinstance(raw, str) and (signed := _signed.get((secret, raw))) is not None:
        setattr(g, FIELD, signed)  # where Flask-WTF looks first, as it would have put it
        return signed
    signed = generate_csrf()  # makes the raw token when the session has none
    if len(_signed) >= REMEMBERED:
        _signed.clear()
    _signed[secret, session[FIELD]] = signed
    return signed


def init_app(app: Flask) -> None:
    """In place of Flask-WTF's (a global, and a context processor whose answer wins)."""
    app.jinja_env.globals["csrf_token"] = csrf_token
    context = {"csrf_token": csrf_token}
    app.context_processor(lambda: context)


# -- GETs that record something ---------------------------------------------------------------

OTHER_SITES = ("cross-site", "same-site")  # Sec-Fetch-Site of a request another site started


def asked_here(what: str):
    """For a GET that records something in the audit trail (an export): when the browser says
    another site started the request (``Sec-Fetch-Site``; a link or a form there), the view is
    not run and a page asks the user to start it from CertDesk, so a foreign page cannot write
    exports into someone's audit trail. Requests without the header (scripts, old browsers)
    are served: the CSRF rule is about what browsers do on their own."""

    def wrap(view):
        @wraps(view)
        def inner(*args, **kwargs):
            if request.headers.get("Sec-Fetch-Site", "") in OTHER_SITES:
                url = request.full_path.rstrip("?")
                return render_template("asked_elsewhere.html", what=what, url=url), 403
            return view(*args, **kwargs)

        return inner

    return wrap
