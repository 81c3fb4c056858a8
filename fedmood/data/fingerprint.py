"""Fingerprints of input data, so that a checkpoint is only ever resumed on the data it was made from."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def data_fingerprint(path: str | Path) -> str:
    """A short hash identifying the data at ``path`` (a file or a folder of files).

    A file is hashed by its content; a folder by the relative path, size and modification time
    of every file under it (cheap for thousands of day logs). A missing path gives a
    fingerprint of its name only, so that it differs from any real data.
    """
    path = Path(path)
    h = hashlib.sha256(str(path.resolve()).encode())
    if path.is_file():
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    elif path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            st = f.stat()
            h.update(f"{f.relative_to(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]
