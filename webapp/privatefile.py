"""Owner-only files of the instance folder (the session key, the master key).

Workers started together on a new instance each find such a file missing and make one; they must
all go on with the one that got there first, and none may read one half-written.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (0600), replacing what is there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def create_once(path: Path, text: str) -> None:
    """Put ``text`` at ``path`` unless the file exists; either way it is there whole after.

    The text goes to a private file first, which is then linked into place: linking fails if the
    name exists, and the file appears with all its text."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    write(tmp, text)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process's file got there first
    finally:
        tmp.unlink()
