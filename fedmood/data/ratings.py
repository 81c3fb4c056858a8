"""Per-user rating data for the MF stage, and a reader for plain ratings tables.

The mood recommender turns fragments into (user, item, mood) rows, with the item being the
fragment's cluster; a plain table of ``user, item, rating`` (CSV, TSV or MovieLens ``::``) can be
used instead, so the recommender runs on data not made by the generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fedmood.data.split import split_indices


class RatingsFormatError(ValueError):
    """A ratings table that cannot be read; the message names the file, line and field."""


@dataclass
class UserRatings:
    """One user's rows: item ids, ratings, and the indices of the train and validation rows."""

    user: int
    items: np.ndarray  # (n,) int64
    ratings: np.ndarray  # (n,) float32
    train: np.ndarray  # indices into items/ratings
    val: np.ndarray

    def part(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(items, ratings)`` of the ``"train"`` or ``"val"`` rows."""
        idx = self.train if split == "train" else self.val
        return self.items[idx], self.ratings[idx]


def make_user_ratings(user: int, items: np.ndarray, ratings: np.ndarray, val_frac: float, seed: int) -> UserRatings:
    """Wrap a user's rows with their seeded train/validation split."""
    train, val = split_indices(len(items), val_frac, seed, user)
    return UserRatings(user, np.asarray(items, np.int64), np.asarray(ratings, np.float32), train, val)


def stack(users: list[UserRatings], split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All users' ``split`` rows as ``(user ids, items, ratings)`` arrays (the centralised view)."""
    parts = [(np.full(len(i), u.user), i, r) for u in users for i, r in [u.part(split)]]
    return tuple(np.concatenate(c) for c in zip(*parts, strict=True))  # type: ignore[return-value]


def read_ratings_table(path: str | Path) -> pd.DataFrame:
    """Read ``user, item, rating`` rows from a CSV/TSV/``::`` file (header optional).

    Users and items may be any labels; they are kept as given (see :func:`index_ratings`).
    Raises :class:`RatingsFormatError` naming the file, the line and the field on bad input.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ratings file {path} does not exist")
    with path.open(encoding="utf-8") as f:
        first = f.readline()
    sep = "::" if "::" in first else "\t" if "\t" in first else ","
    fields = [c.strip().lower() for c in first.split(sep)]
    has_header = fields[:3] == ["user", "item", "rating"]
    rows = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if (lineno == 1 and has_header) or not line.strip():
                continue
            cols = line.rstrip("\r\n").split(sep)
            if len(cols) < 3:
                raise RatingsFormatError(
                    f"{path}: line {lineno}: expected 3 fields (user, item, rating), got {len(cols)}"
                )
            try:
                rating = float(cols[2])
            except ValueError:
                raise RatingsFormatError(f"{path}: line {lineno}: field 'rating': not a number: {cols[2]!r}") from None
            if not np.isfinite(rating):
                raise RatingsFormatError(f"{path}: line {lineno}: field 'rating': {cols[2]!r}")
            for name, val in (("user", cols[0]), ("item", cols[1])):
                if not val.strip():
                    raise RatingsFormatError(f"{path}: line {lineno}: field '{name}' is empty")
            rows.append((cols[0].strip(), cols[1].strip(), rating))
    if not rows:
        raise RatingsFormatError(f"{path}: no rating rows")
    return pd.DataFrame(rows, columns=["user", "item", "rating"])


def index_ratings(df: pd.DataFrame, val_frac: float, seed: int) -> tuple[list[UserRatings], int, list]:
    """Per-user rows with contiguous user/item ids; returns ``(users, n_items, item_labels)``."""
    users = sorted(df["user"].unique(), key=str)
    item_labels = sorted(df["item"].unique(), key=str)
    item_id = {v: i for i, v in enumerate(item_labels)}
    groups = dict(tuple(df.groupby("user", sort=False)))
    out = [
        make_user_ratings(
            u, groups[label]["item"].map(item_id).to_numpy(), groups[label]["rating"].to_numpy(), val_frac, seed
        )
        for u, label in enumerate(users)
    ]
    return out, len(item_labels), item_labels
