"""Rating data for MetaMF / NoMetaMF: the published splits, a user's own file, β and user groups.

* :func:`load_metamf_dataset` reads ``<name>.{userlist,itemlist,train,valid,test}.rating`` (tab
  separated ``user item rating``; a file may be stored as ``<file>.gz``), as shipped with the
  MetaMF code (``../shared/data/metamf/``: ``ml`` and ``ciao`` are complete).
* :func:`load_ratings_file` takes any ``user, item, rating`` table (CSV/TSV/MovieLens ``::``) and
  splits it 80/10/10 per user with the same rule (:func:`fedmood.data.split.split_train_valid_test`).
* :func:`reveal` applies a privacy budget β: each user keeps ``ceil(β n_u)`` of their training
  ratings, drawn at random (seeded, nested: a smaller β keeps a subset of a larger one's rows).
* :func:`user_groups`: Low / Med / High, the 5 % of users with fewest, median-closest and most
  ratings over all splits.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fedmood.data.files import plain_or_gz
from fedmood.data.ratings import RatingsFormatError, read_ratings_table
from fedmood.data.split import split_train_valid_test

SPLITS = ("train", "valid", "test")


@dataclass
class Ratings:
    """Rows of ``(user, item, rating)``, sorted by user."""

    users: np.ndarray  # int64
    items: np.ndarray  # int64
    ratings: np.ndarray  # float32

    def __len__(self) -> int:
        return len(self.ratings)

    def take(self, idx: np.ndarray) -> Ratings:
        return Ratings(self.users[idx], self.items[idx], self.ratings[idx])

    def counts(self, n_users: int) -> np.ndarray:
        """Ratings per user."""
        return np.bincount(self.users, minlength=n_users)


@dataclass
class RatingSplits:
    """A data set: sizes and its train / valid / test rows."""

    name: str
    n_users: int
    n_items: int
    train: Ratings
    valid: Ratings
    test: Ratings

    def split(self, name: str) -> Ratings:
        return getattr(self, name)


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")


def _count_lines(path: Path) -> int:
    with _open_text(path) as fh:
        return sum(1 for line in fh if line.strip())


def read_rating_split(path: str | Path, n_users: int, n_items: int) -> Ratings:
    """One ``user<TAB>item<TAB>rating`` file; errors name the file, the line and the field."""
    path = plain_or_gz(Path(path))
    try:
        df = pd.read_csv(
            path, sep="\t", header=None, names=["user", "item", "rating"], dtype=str, keep_default_na=False
        )
    except pd.errors.ParserError as err:
        raise RatingsFormatError(f"{path}: {err}") from None
    users = pd.to_numeric(df["user"], errors="coerce")
    items = pd.to_numeric(df["item"], errors="coerce")
    ratings = pd.to_numeric(df["rating"], errors="coerce")
    checks = (
        (
            "user",
            users,
            users.isna() | (users % 1 != 0) | (users < 0) | (users >= n_users),
            f"an id in 0..{n_users - 1}",
        ),
        (
            "item",
            items,
            items.isna() | (items % 1 != 0) | (items < 0) | (items >= n_items),
            f"an id in 0..{n_items - 1}",
        ),
        ("rating", ratings, ratings.isna() | ~np.isfinite(ratings.fillna(0)), "a finite number"),
    )
    for field, _, bad, expected in checks:
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raw = df[field].iloc[row]
            raise RatingsFormatError(f"{path}: line {row + 1}: field '{field}': expected {expected}, got {raw!r}")
    order = np.argsort(users.to_numpy(np.int64), kind="stable")
    return Ratings(
        users.to_numpy(np.int64)[order], items.to_numpy(np.int64)[order], ratings.to_numpy(np.float32)[order]
    )


def load_metamf_dataset(root: str | Path, name: str) -> RatingSplits:
    """The published MetaMF split ``name`` (e.g. ``ml``, ``ciao``) from folder ``root``."""
    root = Path(root)
    n_users = _count_lines(plain_or_gz(root / f"{name}.userlist"))
    n_items = _count_lines(plain_or_gz(root / f"{name}.itemlist"))
    parts = {s: read_rating_split(root / f"{name}.{s}.rating", n_users, n_items) for s in SPLITS}
    return RatingSplits(name, n_users, n_items, **parts)


def load_ratings_file(path: str | Path, seed: int) -> RatingSplits:
    """A user's own ``user, item, rating`` table, split 80/10/10 per user (MetaMF's rule)."""
    df = read_ratings_table(path)
    user_codes, user_labels = pd.factorize(df["user"], sort=True)
    item_codes, item_labels = pd.factorize(df["item"], sort=True)
    rows = Ratings(user_codes.astype(np.int64), item_codes.astype(np.int64), df["rating"].to_numpy(np.float32))
    order = np.argsort(rows.users, kind="stable")
    rows = rows.take(order)
    starts = np.searchsorted(rows.users, np.arange(len(user_labels) + 1))
    idx: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for u in range(len(user_labels)):
        lo, hi = starts[u], starts[u + 1]
        for s, part in zip(SPLITS, split_train_valid_test(hi - lo, seed, u), strict=True):
            idx[s].append(lo + part)
    parts = {s: rows.take(np.concatenate(idx[s])) for s in SPLITS}
    return RatingSplits(Path(path).name, len(user_labels), len(item_labels), **parts)


def reveal(train: Ratings, n_users: int, beta: float, seed: int) -> Ratings:
    """The training rows each user reveals under budget β: ``ceil(β n_u)`` of them, at random."""
    if not 0 < beta <= 1:
        raise ValueError(f"beta must lie in (0, 1], got {beta}")
    starts = np.searchsorted(train.users, np.arange(n_users + 1))
    keep = []
    for u in range(n_users):
        lo, hi = starts[u], starts[u + 1]
        n = hi - lo
        if n == 0:
            continue
        perm = np.random.default_rng([seed, u, 0xBE7A]).permutation(n)
        keep.append(lo + np.sort(perm[: math.ceil(beta * n - 1e-9)]))
    return train.take(np.concatenate(keep)) if keep else train.take(np.zeros(0, np.int64))


def first_users(data: RatingSplits, n: int) -> RatingSplits:
    """The data of users ``0 .. n-1`` only (every split; the item catalogue unchanged)."""
    if not 1 <= n <= data.n_users:
        raise ValueError(f"users={n}: the data set {data.name!r} has {data.n_users} users")
    keep = {s: data.split(s).take(np.flatnonzero(data.split(s).users < n)) for s in SPLITS}
    return RatingSplits(data.name, n, data.n_items, **keep)


def user_groups(data: RatingSplits, frac: float = 0.05) -> dict[str, np.ndarray]:
    """User ids of the Low / Med / High groups (``frac`` of the users each) by ratings over all splits."""
    counts = sum(data.split(s).counts(data.n_users) for s in SPLITS)
    size = max(1, round(frac * data.n_users))
    order = np.lexsort((np.arange(data.n_users), counts))  # by count, then id
    median = float(np.median(counts))
    by_closeness = np.lexsort((np.arange(data.n_users), np.abs(counts - median)))
    return {
        "Low": np.sort(order[:size]),
        "Med": np.sort(by_closeness[:size]),
        "High": np.sort(order[-size:]),
    }
