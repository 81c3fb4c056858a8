"""MotionSense: reading from a zip or folder, the cache, windows, the two splits, bad input."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from fedmood.data.motionsense import (
    AAE_ACTIVITIES,
    COLUMNS,
    SHORT_TRIALS,
    TEST_SUBJECTS,
    MotionSenseFormatError,
    Recording,
    Standardiser,
    data_files_present,
    load_recordings,
    magnitudes,
    make_windows,
    subject_split,
    trial_split,
    window_count,
)


def _csv(rows: np.ndarray, columns=COLUMNS) -> str:
    lines = ["," + ",".join(columns)]
    lines += [f"{i}," + ",".join(f"{v:.6f}" for v in row) for i, row in enumerate(rows)]
    return "\n".join(lines) + "\n"


def _zip(path, recordings: dict[str, np.ndarray]):
    with zipfile.ZipFile(path, "w") as z:
        for name, rows in recordings.items():
            z.writestr(f"A_DeviceMotion_data/{name}", _csv(rows))
    return path


def test_windows_stay_inside_one_recording_and_are_counted():
    recs = [
        Recording(s, act, trial, np.full((n, 12), 100 * s + trial, dtype=np.float32))
        for s, act, trial, n in [(1, "wlk", 7, 300), (1, "jog", 9, 127), (2, "wlk", 7, 128), (3, "sit", 5, 500)]
    ]
    w = make_windows(recs, width=128, stride=10, channels=lambda d: d[:, :2])
    # 300 samples: (300 - 128) // 10 + 1 = 18; 127 samples: none; 128 samples: 1; sitting is not an AAE activity
    assert [window_count(n, 128, 10) for n in (300, 127, 128)] == [18, 0, 1]
    assert len(w) == 19 and w.x.shape == (19, 2, 128)
    assert (w.x.min(axis=(1, 2)) == w.x.max(axis=(1, 2))).all()  # every window from a single recording
    assert w.subject.tolist() == [1] * 18 + [2] and set(w.activity.tolist()) == {AAE_ACTIVITIES.index("wlk")}
    assert w.identity().tolist() == [0] * 18 + [1]


def test_windows_follow_the_stride():
    ramp = np.repeat(np.arange(200, dtype=np.float32)[:, None], 12, axis=1)
    w = make_windows([Recording(1, "dws", 1, ramp)], width=128, stride=10, channels=lambda d: d[:, :1])
    assert w.x[:, 0, 0].tolist() == [0, 10, 20, 30, 40, 50, 60, 70]
    assert w.x[3, 0, -1] == 30 + 127


def test_magnitudes_add_gravity_to_user_acceleration():
    row = np.zeros((1, 12), dtype=np.float32)
    col = {c: i for i, c in enumerate(COLUMNS)}
    row[0, col["rotationRate.x"]], row[0, col["rotationRate.y"]] = 3.0, 4.0
    row[0, col["gravity.z"]], row[0, col["userAcceleration.z"]] = -1.0, 0.5
    assert magnitudes(row).tolist() == [[5.0, 0.5]]


def test_standardiser_uses_training_statistics():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(50, 2, 16)).astype(np.float32)
    z = Standardiser.fit(x)
    assert np.allclose(z(x).mean(axis=(0, 2)), 0, atol=1e-5) and np.allclose(z(x).std(axis=(0, 2)), 1, atol=1e-4)
    assert np.allclose(z.inverse(z(x)), x, atol=1e-5)


def test_zip_is_read_and_cached_atomically(tmp_path):
    rng = np.random.default_rng(0)
    data = {f"{a}_{t}/sub_{s}.csv": rng.normal(size=(150, 12)) for a, t in [("wlk", 7), ("ups", 12)] for s in (1, 2)}
    source = _zip(tmp_path / "A_DeviceMotion_data.zip", data)
    first = load_recordings(tmp_path, cache_dir=tmp_path / "cache")
    cached = list((tmp_path / "cache").iterdir())
    assert len(cached) == 1 and cached[0].suffix == ".npz"  # no temporary file left behind
    again = load_recordings(source, cache_dir=tmp_path / "cache")
    assert [(r.subject, r.activity, r.trial) for r in first] == [
        (1, "ups", 12),
        (1, "wlk", 7),
        (2, "ups", 12),
        (2, "wlk", 7),
    ]
    for a, b in zip(first, again, strict=True):
        assert (a.subject, a.activity, a.trial) == (b.subject, b.activity, b.trial)
        assert np.array_equal(a.data, b.data)
    assert np.allclose(first[0].data, data["ups_12/sub_1.csv"], atol=1e-6)


def test_an_extracted_folder_is_read_too(tmp_path):
    folder = tmp_path / "mine" / "A_DeviceMotion_data" / "jog_9"
    folder.mkdir(parents=True)
    (folder / "sub_3.csv").write_text(_csv(np.ones((130, 12))))
    (rec,) = load_recordings(tmp_path / "mine")
    assert (rec.subject, rec.activity, rec.trial, rec.data.shape) == (3, "jog", 9, (130, 12))


def test_bad_csv_names_the_file_and_line(tmp_path):
    folder = tmp_path / "A_DeviceMotion_data" / "wlk_7"
    folder.mkdir(parents=True)
    (folder / "sub_1.csv").write_text(_csv(np.ones((3, 11)), columns=COLUMNS[:-1]))
    with pytest.raises(MotionSenseFormatError, match=r"sub_1\.csv: missing column\(s\) userAcceleration\.z"):
        load_recordings(tmp_path)
    text = _csv(np.ones((3, 12))).splitlines()
    text[2] = text[2].replace("1.000000", "oops", 1)
    (folder / "sub_1.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(MotionSenseFormatError, match=r"sub_1\.csv, line 3: column 'attitude\.roll' is 'oops'"):
        load_recordings(tmp_path)
    with pytest.raises(FileNotFoundError, match="MotionSense not found"):
        load_recordings(tmp_path / "nowhere")


@pytest.mark.skipif(not data_files_present(), reason="MotionSense not in ../shared/data/motionsense (see its README)")
def test_the_shared_copy_and_the_papers_splits():
    recs = load_recordings()
    assert len(recs) == 360 and {r.subject for r in recs} == set(range(1, 25))
    w = make_windows(recs)
    train, test = subject_split(w)
    assert set(test.subject.tolist()) == set(TEST_SUBJECTS) and not set(train.subject.tolist()) & set(TEST_SUBJECTS)
    train, test = trial_split(w)
    assert set(test.trial.tolist()) <= set(SHORT_TRIALS) and max(train.trial) < min(SHORT_TRIALS)
    assert set(train.subject.tolist()) == set(test.subject.tolist()) == set(range(1, 25))
