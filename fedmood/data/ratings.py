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
from fedmood.errors import InputError, Problem, Problems

#: Ratings beyond this magnitude are taken for corrupt values, not another scale.
MAX_RATING = 1e4


class RatingsFormatError(InputError):
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
    Raises :class:`RatingsFormatError` naming the file, the line and the field of every bad row
    (a short row, a rating that is not a finite number, an empty label, a (user, item) pair rated
    twice); the table has a ``line`` column (each row's line in the file).
    """
    path = Path(path)
    if not path.exists():
        raise RatingsFormatError(Problem(f"ratings file {path}", "does not exist"))
    if not path.is_file():
        raise RatingsFormatError(Problem(f"ratings file {path}", "is a folder, expected a file of ratings"))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise RatingsFormatError(Problem(f"{path}: line {line}", f"not UTF-8 text ({e.reason})")) from None
    lines = text.splitlines()
    first = lines[0] if lines else ""
    sep = "::" if "::" in first else "\t" if "\t" in first else ","
    has_header = [c.strip().lower() for c in first.split(sep)][:3] == ["user", "item", "rating"]
    problems, rows, seen = Problems(), [], {}
    for lineno, line in enumerate(lines, start=1):
        if (lineno == 1 and has_header) or not line.strip():
            continue
        where = f"{path}: line {lineno}"
        cols = line.split(sep)
        if len(cols) < 3:
            problems.add(where, f"expected 3 fields (user, item, rating), got {len(cols)}")
            continue
        user, item = cols[0].strip(), cols[1].strip()
        try:
            rating = float(cols[2])
        except ValueError:
            problems.add(f"{where}: field 'rating'", f"not a number: {cols[2]!r}")
            continue
        if not np.isfinite(rating):
            problems.add(f"{where}: field 'rating'", f"must be a finite number, got {cols[2]!r}")
            continue
        empty = [name for name, val in (("user", user), ("item", item)) if not val]
        if empty:
            problems.add(f"{where}: field '{empty[0]}'", "is empty")
            continue
        if (user, item) in seen:
            problems.add(where, f"user {user!r} rated item {item!r} already on line {seen[user, item]}")
            continue
        seen[user, item] = lineno
        rows.append((user, item, rating, lineno))
    if not rows and not problems:
        problems.add(str(path), "no rating rows")
    if problems:
        raise RatingsFormatError(problems.found)
    return pd.DataFrame(rows, columns=["user", "item", "rating", "line"])


def check_rows_per_user(table: pd.DataFrame, path: str | Path, minimum: int = 2) -> None:
    """Refuse users with fewer than ``minimum`` rows (one to train and one to validate, by default)."""
    counts = table.groupby("user", sort=False)["line"].agg(["size", "first"])
    few = counts[counts["size"] < minimum]
    if len(few):
        raise RatingsFormatError(
            [
                Problem(f"{path}: line {row['first']}", f"user {user!r} has {row['size']} rating(s), needs {minimum}+")
                for user, row in few.iterrows()
            ]
        )


def check_rating_range(ratings: np.ndarray, y_range: tuple[float, float], source: str, key: str) -> None:
    """Refuse ratings outside the model's output range ``y_range`` (set by config ``key``).

    The model's sigmoid cannot reach them, so training would silently fit the wrong scale.
    """
    lo, hi = float(np.min(ratings)), float(np.max(ratings))
    a, b = map(float, y_range)
    if lo < a or hi > b:
        pad = 0.1 * (hi - lo) if hi > lo else 0.5
        fix = (
            f"set {key}='[{lo - pad:g},{hi + pad:g}]' to fit this scale, or rescale the ratings"
            if max(abs(lo), abs(hi)) <= MAX_RATING
            else f"values beyond +-{MAX_RATING:g} are not ratings: fix the file"
        )
        raise InputError(
            Problem(source, f"ratings span [{lo:g}, {hi:g}] but the model predicts within {key}=[{a:g}, {b:g}]: {fix}")
        )


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
