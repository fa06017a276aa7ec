"""Reading uploaded files: one reader, with a size limit, for every form that takes a file."""

from __future__ import annotations

from flask import request

from webapp.validation import InputError

MAX_FILE_BYTES = 1024 * 1024  # one CSR, key, certificate or CA bundle; bundles are far smaller


def read(name: str, limit: int = MAX_FILE_BYTES) -> bytes | None:
    """The bytes of the file uploaded as ``name``, or None when none was chosen (or it is empty).

    Raises InputError (on that field) when the file is larger than ``limit``; the rest of the
    file is not read."""
    return _read(request.files.get(name), name, limit)


def read_all(name: str, limit: int = MAX_FILE_BYTES) -> list[tuple[str, bytes]]:
    """Every file uploaded as ``name`` (a multiple file input): ``[(file name, bytes)]``."""
    out = []
    for f in request.files.getlist(name):
        data = _read(f, name, limit)
        if data is not None:
            out.append((f.filename or "upload", data))
    return out


def _read(storage, field: str, limit: int) -> bytes | None:
    if storage is None or not storage.filename:
        return None
    data = storage.read(limit + 1)
    if len(data) > limit:
        raise InputError(
            f"{storage.filename}: the file is larger than {limit // 1024:,} KiB.", field
        )
    return data or None
