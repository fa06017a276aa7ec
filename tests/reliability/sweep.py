"""Discovering what a person can send: every route of the app's URL map, and every form (with its
fields and their defaults) on the pages those routes render. New routes and forms are covered by
the bad-input sweep without being listed anywhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlsplit

from werkzeug.routing.converters import NumberConverter

# Query parameters list pages share, and the names url_for treats as its own.
GENERIC_QUERY = ["page", "per_page", "sort", "dir", "q", "job", "credential", "next", "token"]
RESERVED_QUERY = ["endpoint", "_method", "_external", "_anchor", "_scheme"]

# Bad values: over every column's length, past the request bounds, characters PostgreSQL or HTTP
# cannot carry, numbers no 64-bit column holds, dates at the ends of the calendar, pattern and
# markup characters.
NASTY = [
    "",
    "x" * 65,
    "x" * 121,
    "x" * 201,
    "x" * 256,
    "x" * 501,
    "x" * 1001,
    "x" * (64 * 1024 + 1),
    "a\x00b",
    "line\r\nbreak",
    "\x1b[31mred\u202e",
    "名前ключ😀",
    "x\ud7ff",  # a range search's upper bound would step into the surrogates
    "a\U0010ffff",  # the last character Unicode has: no upper bound after it
    "usér—‘key’",
    "2147483648",
    "9223372036854775808",
    "-9223372036854775809",
    "²",
    "١٢",
    "-1",
    "9999-12-31",
    "0001-01-01",
    "%_\\' OR '1'='1",
    "<script>x</script>",
]
# Form fields: the same without what only a query parameter parses (dates, page numbers, digits).
FORM_NASTY = [v for v in NASTY if v not in ("x" * 1001, "-1", "0001-01-01", "١٢")]
PATH_INTS = [2**31, 2**63 - 1, 2**63, 10**30]  # an INTEGER column holds up to 2**31 - 1


@dataclass
class Form:
    page: str  # the page it was found on
    method: str
    action: str  # a path
    fields: dict[str, str] = field(default_factory=dict)  # name -> default value
    files: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple:
        return (self.method, self.action, tuple(sorted(self.fields)))


class _FormParser(HTMLParser):
    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.page = page
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: str | None = None
        self._first_option: str | None = None
        self._textarea: str | None = None
        self._extra_actions: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            action = a.get("action") or urlsplit(self.page).path
            self._form = Form(self.page, (a.get("method") or "get").upper(), action)
            self._extra_actions = []
            return
        form = self._form
        if form is None:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if kind == "file":
                form.files.append(name)
            elif kind in ("checkbox", "radio"):
                if "checked" in a:
                    form.fields[name] = a.get("value", "on")
            elif kind not in ("submit", "button", "reset", "image"):
                form.fields[name] = a.get("value", "")
        elif tag == "select" and name:
            self._select, self._first_option = name, None
        elif tag == "option" and self._select:
            value = a.get("value", "")
            if self._first_option is None:
                self._first_option = value
                form.fields.setdefault(self._select, value)
            if "selected" in a:
                form.fields[self._select] = value
        elif tag == "textarea" and name:
            self._textarea = name
            form.fields[name] = ""
        elif tag == "button" and a.get("formaction"):
            self._extra_actions.append(a["formaction"])

    def handle_data(self, data):
        if self._form is not None and self._textarea:
            self._form.fields[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form" and self._form is not None:
            self.forms.append(self._form)
            for action in self._extra_actions:
                self.forms.append(
                    Form(self.page, "POST", action, dict(self._form.fields), list(self._form.files))
                )
            self._form = None


def forms_on(page_url: str, html: str) -> list[Form]:
    parser = _FormParser(page_url)
    parser.feed(html)
    return parser.forms


def rules(app, method: str):
    return [
        r
        for r in app.url_map.iter_rules()
        if method in r.methods and r.endpoint != "static" and not r.rule.startswith("/static")
    ]


def build(rule, ids: dict[str, int], int_value=None) -> str:
    """A URL for ``rule``: int arguments from ``ids`` (by name, else 1) or ``int_value``."""
    values = {}
    for name, conv in rule._converters.items():
        if isinstance(conv, NumberConverter):
            values[name] = ids.get(name, 1) if int_value is None else int_value
        else:
            values[name] = "pem"
    if int_value is not None and int_value > 2**31 - 1:
        # The converter refuses to build it too: write the path by hand.
        path = rule.rule
        for name in values:
            path = path.replace(f"<int:{name}>", str(int_value)).replace(f"<{name}>", "pem")
        return path
    return rule.build(values, append_unknown=False)[1]


def discover(app, client, ids: dict[str, int], headers: dict) -> tuple[list[Form], list[str]]:
    """Every form on every page a GET route renders for ``client`` (ids filled from ``ids``),
    and the list of those pages."""
    pages, forms, seen = [], [], set()
    for rule in rules(app, "GET"):
        url = build(rule, ids)
        resp = client.get(url, headers=headers)
        if resp.status_code != 200 or resp.mimetype != "text/html":
            continue
        pages.append(url)
        for form in forms_on(url, resp.get_data(as_text=True)):
            if form.key not in seen:
                seen.add(form.key)
                forms.append(form)
    return forms, pages
