"""Re-encrypt every sealed value under a new master key; safe to re-run after an interruption.

Steps: write instance/master.key.next (kept if it already exists), reseal each value not yet under
it (in batches, each committed), re-key the audit chain under the new key (one transaction, which
verifies every row under the old key and records the outcome in the trail), reseal the key check,
then move master.key.next over master.key. While master.key.next exists the app opens values
under either key and appends to the audit chain under whichever key keys it.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from webapp.audit import service as audit
from webapp.extensions import db
from webapp.security import secretbox as sb
from webapp.settings import service as settings

BATCH = 500


class TrailHeadMissing(Exception):
    """The audit trail has no head row: nothing can be appended to it (neither the re-keying's
    outcome nor the rotation), and making a new head would pass over rows removed at its end."""

    def __init__(self):
        super().__init__(
            f"{audit.HEAD_REMOVED}. The master key was not rotated and nothing was changed: "
            "restore the database from a backup whose trail verifies (`certdesk audit verify` "
            "says when it does), then run this again"
        )


def rotate(instance: Path, echo=print, *, actor="cli") -> int:
    """Rotate the file-based master key; returns how many values were resealed. Raises
    TrailHeadMissing, before anything is changed, when the audit trail has no head row."""
    key_path, next_path = instance / sb.KEY_FILE, instance / sb.NEXT_KEY_FILE
    if not key_path.exists():
        raise sb.MasterKeyError(f"{key_path} is missing; nothing to rotate")
    if not audit.head_present():
        raise TrailHeadMissing()
    old = sb._read_key_file(key_path)
    if next_path.exists():
        echo("Resuming an interrupted rotation.")
        new = sb._read_key_file(next_path)
    else:
        new = sb.new_key()
        sb.write_key_file(next_path, new)
    box = sb.SecretBox(new, old)
    current_app.extensions["secretbox"] = box  # this process seals under the new key from now on
    resealed = 0
    for model, column in sb.SEALED:
        ctx = sb.context_for(model, column)
        attr = getattr(model, column)
        pk = model.__mapper__.primary_key[0]
        last = None
        while True:
            stmt = select(model).where(attr.is_not(None)).order_by(pk).limit(BATCH)
            if last is not None:
                stmt = stmt.where(pk > last)
            rows = list(db.session.execute(stmt).scalars())
            if not rows:
                break
            for row in rows:
                token = getattr(row, column)
                if token and not box.is_current(token):
                    setattr(row, column, box.seal(box.open(token, ctx), ctx))
                    resealed += 1
            last = getattr(rows[-1], pk.key)
            db.session.commit()
    trail = audit.rekey(old, new, actor=actor)
    if not trail.ok:
        echo(
            f"Warning: the audit trail did not verify before it was re-keyed ({trail.problem}); "
            "the trail records that."
        )
    settings.put(sb.KEY_CHECK_SETTING, sb.key_check(box))
    db.session.commit()
    os.replace(next_path, key_path)
    current_app.extensions["secretbox"] = sb.SecretBox(new)
    return resealed
