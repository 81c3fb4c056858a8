"""What one device holds, loaded the same way for a federated client and for the centralised run.

A device holds one user's rows: either hourly fragments read from its own folder of day logs (the
item of a fragment is its cluster, known once the clusters are), or its rows of a plain ratings
table (items given). The train/validation split is :func:`fedmood.data.split.split_indices`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from fedmood.data.ratings import UserRatings, index_ratings, read_ratings_table
from fedmood.data.split import split_indices
from fedmood.studies.mood.clustering import assign
from fedmood.studies.mood.data.fragments import load_user_fragments
from fedmood.studies.mood.data.logs import user_folders


@dataclass
class LocalData:
    """One user's labelled rows and, for day logs, the encoded fragments behind them."""

    user: int
    ratings: np.ndarray  # (n,) float32 moods / ratings
    train: np.ndarray
    val: np.ndarray
    fragments: np.ndarray | None = None  # (n, slots) encoded activities (day logs)
    items: np.ndarray | None = None  # (n,) item ids (ratings tables)
    hours: np.ndarray | None = None  # (n,) hour of day of each fragment (day logs)
    weekend: np.ndarray | None = None  # (n,) whether its day was a Saturday or Sunday (day logs)
    _assigned: dict = field(default_factory=dict, repr=False)

    def rows(self, centres: np.ndarray | None = None) -> UserRatings:
        """The rows with their items: given ones, or each fragment's nearest centre."""
        if self.fragments is None:
            items = self.items
        else:
            if centres is None:
                raise ValueError("day-log data needs cluster centres to know its items")
            key = np.asarray(centres).tobytes()
            if key not in self._assigned:
                self._assigned = {key: assign(self.fragments, np.asarray(centres))}
            items = self._assigned[key]
        return UserRatings(self.user, items, self.ratings, self.train, self.val)


def _from_fragments(user: int, folder: Path, val_frac: float, seed: int) -> LocalData:
    frags = load_user_fragments(folder)
    train, val = split_indices(len(frags.moods), val_frac, seed, user)
    return LocalData(
        user, frags.moods, train, val, fragments=frags.encoded(), hours=frags.hours, weekend=frags.weekend()
    )


@lru_cache(maxsize=4)
def _ratings_table(path: str, val_frac: float, seed: int) -> tuple[list[UserRatings], int]:
    users, n_items, _ = index_ratings(read_ratings_table(path), val_frac, seed)
    return users, n_items


def _from_rows(r: UserRatings) -> LocalData:
    return LocalData(r.user, r.ratings, r.train, r.val, items=r.items)


@lru_cache(maxsize=8)
def _user_folders(root: str) -> tuple[Path, ...]:
    """The user folders of a logs root, listed once per process (a simulation actor serves many
    devices: listing 5000 folders for each of them cost 33 ms a device)."""
    return tuple(user_folders(root))


def data_shape(data_cfg: dict, seed: int) -> tuple[int, int]:
    """``(n_users, n_items)`` of the configured data source."""
    if data_cfg["source"] == "ratings":
        users, n_items = _ratings_table(str(data_cfg["ratings_path"]), data_cfg["val_frac"], seed)
        return len(users), n_items
    return len(_user_folders(str(data_cfg["logs_dir"]))), int(data_cfg["n_clusters"])


def load_local_data(data_cfg: dict, user: int, seed: int) -> LocalData:
    """The data of device ``user`` only (its own log folder, or its rows of the table)."""
    if data_cfg["source"] == "ratings":
        users, _ = _ratings_table(str(data_cfg["ratings_path"]), data_cfg["val_frac"], seed)
        return _from_rows(users[user])
    folders = _user_folders(str(data_cfg["logs_dir"]))
    if not 0 <= user < len(folders):
        raise IndexError(f"device {user} has no user folder ({len(folders)} users in {data_cfg['logs_dir']})")
    return _from_fragments(user, folders[user], data_cfg["val_frac"], seed)


def load_all_local_data(data_cfg: dict, seed: int) -> list[LocalData]:
    """Every device's data, for the centralised baseline (same rows, same splits)."""
    n_users, _ = data_shape(data_cfg, seed)
    return [load_local_data(data_cfg, u, seed) for u in range(n_users)]
