"""A small synthetic MotionSense: DeviceMotion CSVs in a zip laid out as the real one."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from fedmood.data.motionsense import COLUMNS

AAE_TRIALS = {"dws": (1, 11), "ups": (3, 12), "wlk": (7, 15), "jog": (9, 16)}
ALL_TRIALS = {**AAE_TRIALS, "sit": (5, 13), "std": (6, 14)}
FREQ = {"dws": 1.0, "ups": 1.5, "wlk": 2.0, "jog": 3.0, "sit": 0.0, "std": 0.0}


def recording(subject: int, activity: str, n: int, rng) -> np.ndarray:
    """(n, 12) DeviceMotion samples: an activity-specific rhythm, a subject-specific amplitude and phase."""
    t = np.arange(n) / 50.0
    freq = FREQ[activity]
    data = 0.05 * rng.normal(size=(n, 12))
    data[:, 5] -= 1.0  # gravity.z
    if activity == "sit":
        data[:, 3] += 0.5  # gravity.x: the phone lies differently when sitting
    data[:, 6:9] += (0.5 + 0.05 * subject) * np.sin(2 * np.pi * freq * t)[:, None]  # rotationRate
    data[:, 9:12] += 0.3 * np.sin(2 * np.pi * freq * t + subject)[:, None]  # userAcceleration
    return data


def recording_csv(data: np.ndarray) -> str:
    """A MotionSense CSV (unnamed index column, then :data:`COLUMNS`)."""
    rows = ["," + ",".join(COLUMNS)] + [f"{i}," + ",".join(f"{v:.5f}" for v in r) for i, r in enumerate(data)]
    return "\n".join(rows) + "\n"


def synthetic_motionsense(
    folder: Path, trials: dict[str, tuple[int, ...]] = AAE_TRIALS, samples: int = 300, subjects: int = 24
) -> Path:
    """``folder/A_DeviceMotion_data.zip`` with every (activity, trial, subject) recording."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / "A_DeviceMotion_data.zip", "w") as z:
        for activity, ts in trials.items():
            for trial in ts:
                for s in range(1, subjects + 1):
                    csv = recording_csv(recording(s, activity, samples, rng))
                    z.writestr(f"A_DeviceMotion_data/{activity}_{trial}/sub_{s}.csv", csv)
    return folder
