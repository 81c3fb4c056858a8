"""Each MotionSense subject as a device: a pool of windows to learn from and a held-out test part.

Every recording (one subject, one activity, one trial) is cut in time: its first
``1 - test_fraction`` becomes the device's *pool* (the windows a model may learn from; "the first
n windows" are drawn from it with :func:`fedmood.data.split.first_n`) and the rest its *test*
part. Windows are cut separately on each side of the cut, so no test window shares a sample
with a pool window. All six activities, all 24 subjects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from fedmood.data.motionsense import ACTIVITIES, Recording, sliding_windows, window_count
from fedmood.studies.personal.features import window_features, with_magnitudes


@dataclass
class UserData:
    """One device's feature windows: ``pool_*`` to learn from, ``test_*`` held out."""

    subject: int
    pool_x: np.ndarray
    pool_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray

    def all_x(self) -> np.ndarray:
        """Every window of the user (pool and test): what a *training* user contributes."""
        return np.concatenate([self.pool_x, self.test_x])

    def all_y(self) -> np.ndarray:
        return np.concatenate([self.pool_y, self.test_y])


def user_data(
    recordings: Iterable[Recording],
    width: int = 256,
    stride: int = 128,
    test_fraction: float = 0.3,
    activities: Sequence[str] = ACTIVITIES,
) -> dict[int, UserData]:
    """Per subject: feature windows of the first part of every recording (pool) and of the rest (test)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    parts: dict[int, dict[str, list[np.ndarray]]] = {}
    for rec in recordings:
        if rec.activity not in activities:
            continue
        signal = with_magnitudes(rec.data)
        cut = round(len(signal) * (1.0 - test_fraction))
        user = parts.setdefault(rec.subject, {"pool_x": [], "pool_y": [], "test_x": [], "test_y": []})
        for side, segment in (("pool", signal[:cut]), ("test", signal[cut:])):
            n = window_count(len(segment), width, stride)
            if n:
                user[f"{side}_x"].append(window_features(sliding_windows(segment, width, stride)))
                user[f"{side}_y"].append(np.full(n, activities.index(rec.activity), np.int64))
    if not parts:
        raise ValueError(f"no recording of {tuple(activities)} gave a window of {width} samples")
    out = {}
    for subject, p in sorted(parts.items()):
        if not p["pool_x"] or not p["test_x"]:
            raise ValueError(f"subject {subject}: recordings too short for windows of {width} samples on both sides")
        out[subject] = UserData(
            subject,
            np.concatenate(p["pool_x"]),
            np.concatenate(p["pool_y"]),
            np.concatenate(p["test_x"]),
            np.concatenate(p["test_y"]),
        )
    return out
