"""Log lines that cannot be forged: control characters in logged values are escaped.

A value that reaches a log message (a credential name, a URL, an error text from Entrust) could
carry CR/LF and write a line of its own that looks like a genuine record, or ANSI escape codes that
rewrite a terminal. Every record's message is escaped here, whatever logger it comes from: CR, LF,
ESC and the other C0/C1 controls, DEL, and the Unicode line and paragraph separators are shown as
``\\r``, ``\\n``, ``\\x1b``, ``\\u2028``... Tracebacks keep their lines, escaped and indented, so a
line that starts at the margin is always the start of a record.
"""

from __future__ import annotations

import logging
import re
import sys

from flask import g, has_request_context

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u0085]")
_NAMED = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}


def _escape_one(match: re.Match) -> str:
    ch = match.group()
    if ch in _NAMED:
        return _NAMED[ch]
    return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"


def escape(text: str) -> str:
    """``text`` with every control character written as an escape sequence."""
    return _CONTROL.sub(_escape_one, text)


class SafeRecord(logging.LogRecord):
    """A log record whose message (format and arguments, merged) has its controls escaped; made
    while a request is handled, it keeps that request's id (webapp.accesslog)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.request_id = g.get("request_id", "") if has_request_context() else ""

    def getMessage(self) -> str:  # noqa: N802 (logging's name)
        return escape(super().getMessage())


class SafeFormatter(logging.Formatter):
    """Escapes the whole record line, which ends with the id of the request it was logged in
    (if any); a traceback's lines are escaped and indented."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802
        line = super().formatMessage(record)
        request_id = getattr(record, "request_id", "")
        return escape(f"{line} [request {request_id}]" if request_id else line)

    def formatException(self, ei) -> str:  # noqa: N802
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return _indented(super().formatStack(stack_info))


def _indented(text: str) -> str:
    return "\n".join("    " + escape(line) for line in text.rstrip("\n").split("\n"))


# What Alembic says each time it looks at the database (every start and every command, whether or
# not there is anything to migrate): which dialect, and that DDL is not transactional, which
# migrations/env.py makes untrue on SQLite. Its "Running upgrade" lines stay.
_ALEMBIC_CHATTER = ("Context impl ", "Will assume ")


def _not_alembic_chatter(record: logging.LogRecord) -> bool:
    return not (isinstance(record.msg, str) and record.msg.startswith(_ALEMBIC_CHATTER))


def install(level: str | int = "INFO") -> None:
    """Escape every record from now on; give the root logger CertDesk's handler when it has
    none yet (as logging.basicConfig would). Safe to call more than once."""
    if logging.getLogRecordFactory() is logging.LogRecord:
        logging.setLogRecordFactory(SafeRecord)
    logging.getLogger("alembic.runtime.migration").addFilter(_not_alembic_chatter)  # once
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(SafeFormatter(FORMAT))
        root.addHandler(handler)
        root.setLevel(level)
