"""Every element that htmx sends by POST is disabled while its request runs (hx-disabled-elt):
htmx queues a click made meanwhile and sends it once the first answer came, so a double click
would test a login twice or start a second sync (tests/e2e/test_sent_once.py)."""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
SENDS = re.compile(
    r"<(?:form|button|a|input|div)\b[^>]*\shx-(?:post|put|patch|delete)=[^>]*>", re.S
)


def test_every_htmx_post_is_disabled_while_sent():
    found, missing = 0, []
    for path in sorted(TEMPLATES.rglob("*.html")):
        for tag in SENDS.findall(path.read_text(encoding="utf-8")):
            found += 1
            if "hx-disabled-elt=" not in tag:
                missing.append(f"{path.relative_to(TEMPLATES)}: {tag[:80]}")
    assert found >= 6
    assert not missing, missing
