"""Hourly fragments: each day log cut into 24 fragments (activity per 10-minute slot, and mood)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedmood.studies.mood.data.activities import ACTIVITIES
from fedmood.studies.mood.data.logs import DayLog, read_user_logs, user_folders

#: Column index of every known UKTUS code in the categorical encoding used for clustering.
CODE_INDEX: dict[int, int] = {a.code: i for i, a in enumerate(ACTIVITIES)}
N_CODES = len(ACTIVITIES)


@dataclass
class UserFragments:
    """One user's hourly fragments: ``slots[i]`` are the UKTUS codes of fragment i, ``moods[i]`` its mood."""

    user_id: str
    slots: np.ndarray  # (n, SLOTS_PER_HOUR) int64 UKTUS codes
    moods: np.ndarray  # (n,) float32
    dates: np.ndarray  # (n,) str
    hours: np.ndarray  # (n,) int

    def encoded(self) -> np.ndarray:
        """Slots as categorical indices (0..N_CODES-1), the form the clustering uses."""
        return encode_codes(self.slots)

    def weekend(self) -> np.ndarray:
        """Whether each fragment's day is a Saturday or a Sunday."""
        days = {d: dt.date.fromisoformat(str(d)).weekday() >= 5 for d in set(self.dates.tolist())}
        return np.array([days[d] for d in self.dates.tolist()], dtype=bool)


def encode_codes(slots: np.ndarray) -> np.ndarray:
    """Map UKTUS codes to categorical indices."""
    lut = np.full(max(CODE_INDEX) + 1, -1, dtype=np.int64)
    lut[list(CODE_INDEX)] = list(CODE_INDEX.values())
    return lut[slots]


def split_into_fragments(logs: list[DayLog]) -> UserFragments:
    """Cut each day log into its 24 hourly fragments, in date and hour order."""
    if not logs:
        raise ValueError("no day logs to split")
    slots = np.concatenate([d.activities for d in logs])
    moods = np.concatenate([d.moods for d in logs]).astype(np.float32)
    dates = np.repeat([d.date for d in logs], 24)
    hours = np.tile(np.arange(24), len(logs))
    return UserFragments(logs[0].user_id, slots, moods, dates, hours)


def load_user_fragments(folder: str | Path) -> UserFragments:
    """Read one user's folder of day logs and cut it into fragments."""
    return split_into_fragments(read_user_logs(folder))


def load_all_fragments(root: str | Path) -> list[UserFragments]:
    """Fragments of every user folder under ``root`` (sorted by folder name)."""
    return [load_user_fragments(f) for f in user_folders(root)]
