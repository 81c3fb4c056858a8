"""MotionSense (Malekzadeh et al.): 24 subjects carrying an iPhone in the front trouser pocket.

The data is read straight from ``A_DeviceMotion_data.zip`` (members
``A_DeviceMotion_data/<activity>_<trial>/sub_<k>.csv``: 50 Hz Core Motion DeviceMotion, 12 columns)
or from a folder holding the extracted ``A_DeviceMotion_data/`` tree, e.g. a user's own copy. The
parsed recordings are cached as one ``.npz`` (written atomically, keyed by the source's size and
modification time), so only the first load parses the 360 CSV files.

Windows never cross a recording (one subject's one trial of one activity). The two splits of
Malekzadeh et al. (IoTDI 2019): *subject* (test subjects 5, 10, 12, 22: activity recognition on
unseen people) and *trial* (test on the short trials 11-16 of everyone: identity recognition).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fedmood.errors import InputError
from fedmood.paths import PROJECT_ROOT
from fedmood.results import atomic_write_with

COLUMNS = (
    "attitude.roll",
    "attitude.pitch",
    "attitude.yaw",
    "gravity.x",
    "gravity.y",
    "gravity.z",
    "rotationRate.x",
    "rotationRate.y",
    "rotationRate.z",
    "userAcceleration.x",
    "userAcceleration.y",
    "userAcceleration.z",
)
ACTIVITIES = ("dws", "ups", "wlk", "jog", "sit", "std")  # down-/upstairs, walking, jogging, sitting, standing
AAE_ACTIVITIES = ("dws", "ups", "wlk", "jog")  # the four of the anonymisation paper
SUBJECTS = tuple(range(1, 25))
TEST_SUBJECTS = (5, 10, 12, 22)  # the subject split's test people
SHORT_TRIALS = tuple(range(11, 17))  # the trial split's test trials
ZIP_NAME = "A_DeviceMotion_data.zip"
MEMBER = re.compile(r"(?:^|/)A_DeviceMotion_data/([a-z]+)_(\d+)/sub_(\d+)\.csv$")


#: Largest magnitude accepted in a DeviceMotion column (radians, g, rad/s: real values are below 100).
MAX_ABS_VALUE = 1e4


class MotionSenseFormatError(InputError):
    """A MotionSense file that cannot be read as such; the message names the file (and line)."""


def default_root() -> Path:
    """Where the shared copy lives: ``../shared/data/motionsense`` beside the project."""
    return PROJECT_ROOT.parent / "shared" / "data" / "motionsense"


@dataclass(frozen=True)
class Recording:
    """One subject's one trial of one activity: ``data`` is (samples, 12) in :data:`COLUMNS` order."""

    subject: int
    activity: str
    trial: int
    data: np.ndarray


def read_recording_csv(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """The 12 DeviceMotion columns of a MotionSense-style CSV as float32 (samples, 12).

    Extra columns (such as the unnamed index column) are ignored; a missing column, a non-numeric
    value or a recording of no rows raises :class:`MotionSenseFormatError` naming the file (and line).
    """
    name = name or str(source)
    try:
        frame = pd.read_csv(io.BytesIO(source) if isinstance(source, bytes) else source, dtype=str)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise MotionSenseFormatError(f"{name}: not a readable CSV file ({exc})") from exc
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise MotionSenseFormatError(f"{name}: missing column(s) {', '.join(missing)} (expected {', '.join(COLUMNS)})")
    if frame.empty:
        raise MotionSenseFormatError(f"{name}: no rows")
    values = frame[list(COLUMNS)]
    numbers = values.apply(pd.to_numeric, errors="coerce")
    bad = numbers.isna().to_numpy()
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise MotionSenseFormatError(
            f"{name}, line {row + 2}: column {COLUMNS[col]!r} is {values.iat[row, col]!r}, not a number"
        )
    out = numbers.to_numpy(np.float64)
    wild = ~(np.abs(out) <= MAX_ABS_VALUE)  # inf, NaN and values no phone's motion sensor gives
    if wild.any():
        row, col = np.argwhere(wild)[0]
        raise MotionSenseFormatError(
            f"{name}, line {row + 2}: column {COLUMNS[col]!r} is {values.iat[row, col]!r}: "
            f"every value must be finite and within +-{MAX_ABS_VALUE:g}"
        )
    return out.astype(np.float32)


def _members(source: Path) -> Iterable[tuple[str, Callable[[], bytes]]]:
    if source.is_file():
        archive = zipfile.ZipFile(source)
        for name in sorted(archive.namelist()):
            yield name, lambda name=name: archive.read(name)
    else:
        for path in sorted(source.rglob("*.csv")):
            yield path.relative_to(source).as_posix(), path.read_bytes


def _source(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir() and (path / ZIP_NAME).is_file():
        return path / ZIP_NAME
    if path.is_file() or path.is_dir():
        return path
    raise FileNotFoundError(
        f"MotionSense not found at {path}: give the folder holding {ZIP_NAME}, the zip itself, or a folder "
        "with the extracted A_DeviceMotion_data/ tree (see ../shared/data/README.md)"
    )


def parse_recordings(path: str | Path) -> list[Recording]:
    """Every recording in a MotionSense zip or extracted folder (no cache)."""
    source = _source(path)
    out = []
    for name, read in _members(source):
        match = MEMBER.search(name)
        if not match:
            continue
        activity, trial, subject = match.group(1), int(match.group(2)), int(match.group(3))
        if activity not in ACTIVITIES:
            raise MotionSenseFormatError(f"{source}: {name}: unknown activity {activity!r} (expected {ACTIVITIES})")
        out.append(Recording(subject, activity, trial, read_recording_csv(read(), f"{source}: {name}")))
    if not out:
        raise MotionSenseFormatError(f"{source}: no A_DeviceMotion_data/<activity>_<trial>/sub_<k>.csv files")
    return sorted(out, key=lambda r: (r.subject, ACTIVITIES.index(r.activity), r.trial))


def _cache_path(source: Path, cache_dir: Path) -> Path:
    stat = source.stat()
    return cache_dir / f"motionsense-{source.name}-{stat.st_size}-{int(stat.st_mtime)}.npz"


def load_recordings(path: str | Path | None = None, cache_dir: str | Path | None = None) -> list[Recording]:
    """The recordings of a MotionSense copy (default: the shared one), from the cache when it is there.

    ``cache_dir`` defaults to ``.cache/`` in the project; the cache of a zip is keyed by its size and
    modification time (an extracted folder is parsed every time).
    """
    source = _source(path or default_root())
    if not source.is_file():
        return parse_recordings(source)
    cache = _cache_path(source, Path(cache_dir) if cache_dir else PROJECT_ROOT / ".cache")
    if cache.is_file():
        with np.load(cache) as z:
            data, lengths, subject, activity, trial = (
                z[k] for k in ("data", "lengths", "subject", "activity", "trial")
            )
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        return [
            Recording(int(s), ACTIVITIES[int(a)], int(t), data[bounds[k] : bounds[k + 1]])
            for k, (s, a, t) in enumerate(zip(subject, activity, trial, strict=True))
        ]
    recordings = parse_recordings(source)
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_with(
        cache,
        lambda f: np.savez(
            f,
            data=np.concatenate([r.data for r in recordings]),
            lengths=np.array([len(r.data) for r in recordings]),
            subject=np.array([r.subject for r in recordings]),
            activity=np.array([ACTIVITIES.index(r.activity) for r in recordings]),
            trial=np.array([r.trial for r in recordings]),
        ),
    )
    return recordings


def magnitudes(data: np.ndarray) -> np.ndarray:
    """The anonymisation paper's 2 channels: |rotationRate| and |userAcceleration + gravity| (samples, 2)."""
    col = {c: i for i, c in enumerate(COLUMNS)}
    rot = data[:, [col[f"rotationRate.{a}"] for a in "xyz"]]
    acc = data[:, [col[f"userAcceleration.{a}"] for a in "xyz"]] + data[:, [col[f"gravity.{a}"] for a in "xyz"]]
    return np.stack([np.linalg.norm(rot, axis=1), np.linalg.norm(acc, axis=1)], axis=1).astype(np.float32)


@dataclass
class Windows:
    """Fixed-length windows: ``x`` (N, channels, width) with activity index, subject (1-24) and trial."""

    x: np.ndarray
    activity: np.ndarray
    subject: np.ndarray
    trial: np.ndarray
    activities: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.x)

    def take(self, idx: np.ndarray) -> Windows:
        return Windows(self.x[idx], self.activity[idx], self.subject[idx], self.trial[idx], self.activities)

    def identity(self, subjects: Sequence[int] = SUBJECTS) -> np.ndarray:
        """Subject labels as class indices 0.. over ``subjects``."""
        lookup = {s: k for k, s in enumerate(subjects)}
        return np.array([lookup[s] for s in self.subject], dtype=np.int64)


def window_count(n_samples: int, width: int, stride: int) -> int:
    """Windows of ``width`` samples every ``stride`` samples that fit in a recording of ``n_samples``."""
    return max(0, (n_samples - width) // stride + 1)


def sliding_windows(signal: np.ndarray, width: int, stride: int) -> np.ndarray:
    """Windows (n, channels, width) of a (samples, channels) signal, one every ``stride`` samples."""
    n = window_count(len(signal), width, stride)
    view = np.lib.stride_tricks.sliding_window_view(signal, width, axis=0)[::stride][:n]
    return np.ascontiguousarray(view, dtype=np.float32)


def make_windows(
    recordings: Iterable[Recording],
    activities: Sequence[str] = AAE_ACTIVITIES,
    width: int = 128,
    stride: int = 10,
    channels: Callable[[np.ndarray], np.ndarray] = magnitudes,
) -> Windows:
    """Windows of every recording of ``activities``, each within one recording (none crosses a boundary)."""
    xs, act, sub, tri = [], [], [], []
    for rec in recordings:
        if rec.activity not in activities:
            continue
        n = window_count(len(rec.data), width, stride)
        if n == 0:
            continue
        xs.append(sliding_windows(channels(rec.data), width, stride))
        act.append(np.full(n, activities.index(rec.activity)))
        sub.append(np.full(n, rec.subject))
        tri.append(np.full(n, rec.trial))
    if not xs:
        raise ValueError(f"no window of {width} samples in any recording of {tuple(activities)}")
    return Windows(
        np.concatenate(xs),
        np.concatenate(act).astype(np.int64),
        np.concatenate(sub).astype(np.int64),
        np.concatenate(tri).astype(np.int64),
        tuple(activities),
    )


def subject_split(windows: Windows, test_subjects: Sequence[int] = TEST_SUBJECTS) -> tuple[Windows, Windows]:
    """(train, test): the test subjects' windows held out (activity recognition on unseen people)."""
    test = np.isin(windows.subject, test_subjects)
    return windows.take(np.flatnonzero(~test)), windows.take(np.flatnonzero(test))


def trial_split(windows: Windows, test_trials: Sequence[int] = SHORT_TRIALS) -> tuple[Windows, Windows]:
    """(train, test): everyone's short trials held out (identity recognition on known people)."""
    test = np.isin(windows.trial, test_trials)
    return windows.take(np.flatnonzero(~test)), windows.take(np.flatnonzero(test))


@dataclass(frozen=True)
class Standardiser:
    """Per-channel z-scoring with statistics of a training set."""

    mean: np.ndarray  # (channels, 1)
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardiser:
        return cls(x.mean(axis=(0, 2), keepdims=True)[0], x.std(axis=(0, 2), keepdims=True)[0] + 1e-8)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)

    def inverse(self, x: np.ndarray) -> np.ndarray:
        return (x * self.std + self.mean).astype(np.float32)


def data_files_present(path: str | Path | None = None) -> bool:
    """Whether a MotionSense copy is at ``path`` (default: the shared one): for tests to skip cleanly."""
    try:
        _source(path or default_root())
    except FileNotFoundError:
        return False
    return True
