"""Finding a data file as the shared data folder stores it."""

from __future__ import annotations

from pathlib import Path


def plain_or_gz(path: str | Path) -> Path:
    """``path``, or ``path.gz`` when only the compressed copy exists (files over 5 MB are stored
    gzipped); ``FileNotFoundError`` naming both otherwise."""
    path = Path(path)
    if path.is_file():
        return path
    gz = path.with_name(path.name + ".gz")
    if gz.is_file():
        return gz
    raise FileNotFoundError(f"{path} (or {gz.name}) does not exist")
