"""Per-window statistical features of MotionSense recordings.

The personal-model paper classifies WISDM activities from 10-s windows turned into 43 statistics
per window. Here a window of the 12 DeviceMotion columns plus the magnitudes of userAcceleration
and rotationRate (14 channels) becomes, per channel, its mean, standard deviation, minimum,
maximum, 10/25/50/75/90th percentiles and mean absolute deviation: 140 features.
"""

from __future__ import annotations

import numpy as np

from fedmood.data.motionsense import COLUMNS

CHANNELS = (*COLUMNS, "userAcceleration.magnitude", "rotationRate.magnitude")
STATISTICS = ("mean", "std", "min", "max", "p10", "p25", "p50", "p75", "p90", "mad")
PERCENTILES = (10, 25, 50, 75, 90)


def with_magnitudes(data: np.ndarray) -> np.ndarray:
    """(samples, 12) in :data:`~fedmood.data.motionsense.COLUMNS` order -> (samples, 14) with the two magnitudes."""
    if data.ndim != 2 or data.shape[1] != len(COLUMNS):
        raise ValueError(f"expected (samples, {len(COLUMNS)}) DeviceMotion data, got shape {data.shape}")
    col = {c: i for i, c in enumerate(COLUMNS)}
    acc = data[:, [col[f"userAcceleration.{a}"] for a in "xyz"]]
    rot = data[:, [col[f"rotationRate.{a}"] for a in "xyz"]]
    mags = np.stack([np.linalg.norm(acc, axis=1), np.linalg.norm(rot, axis=1)], axis=1)
    return np.concatenate([data, mags], axis=1).astype(np.float32)


def feature_names() -> list[str]:
    """Names of :func:`window_features`' columns: ``<channel>:<statistic>``."""
    return [f"{c}:{s}" for c in CHANNELS for s in STATISTICS]


def window_features(windows: np.ndarray) -> np.ndarray:
    """(N, channels, width) windows -> (N, channels * 10) statistics, channel-major (see :func:`feature_names`)."""
    if windows.ndim != 3:
        raise ValueError(f"expected (windows, channels, width), got shape {windows.shape}")
    w = windows.astype(np.float64)
    mean = w.mean(axis=2)
    pct = np.percentile(w, PERCENTILES, axis=2)  # (5, N, C)
    stats = [
        mean,
        w.std(axis=2),
        w.min(axis=2),
        w.max(axis=2),
        *pct,
        np.abs(w - mean[..., None]).mean(axis=2),
    ]
    return np.stack(stats, axis=2).reshape(len(w), -1).astype(np.float32)
