import datetime as dt
import json

import numpy as np
import pytest

from fedmood.studies.mood.data.activities import ACTIVITY_BY_CODE, SLOTS_PER_HOUR, activity_set
from fedmood.studies.mood.data.generator import GeneratorConfig, generate_day_logs, write_day_logs
from fedmood.studies.mood.data.logs import LOG_FORMAT, read_day_log, user_folders


def test_same_seed_same_logs_and_other_seed_differs():
    cfg = GeneratorConfig(n_users=3, n_days=2, seed=5)
    a, aff_a = generate_day_logs(cfg)
    b, aff_b = generate_day_logs(cfg)
    assert json.dumps(a) == json.dumps(b)
    np.testing.assert_array_equal(aff_a, aff_b)
    c, _ = generate_day_logs(GeneratorConfig(n_users=3, n_days=2, seed=6))
    assert json.dumps(a) != json.dumps(c)


def test_written_logs_follow_the_format(small_logs):
    users = user_folders(small_logs)
    assert [u.name for u in users] == [f"user{i:04d}" for i in range(6)]
    files = sorted(users[0].glob("*.json"))
    assert len(files) == 4 and files[0].name == "2026-01-05.json"
    doc = json.loads(files[0].read_text())
    assert doc["format"] == LOG_FORMAT and doc["user_id"] == "user0000"
    for key in ("apps", "web", "calls", "sms", "locations"):
        assert isinstance(doc[key], list)
    assert doc["apps"] and doc["locations"]
    for ev in doc["apps"]:
        assert dt.datetime.fromisoformat(ev["start"]) <= dt.datetime.fromisoformat(ev["end"])
    assert [h["hour"] for h in doc["hours"]] == list(range(24))
    for h in doc["hours"]:
        assert len(h["activities"]) == SLOTS_PER_HOUR
        assert all(c in ACTIVITY_BY_CODE for c in h["activities"])
        assert h["mood"] in (-1, 0, 1)
    log = read_day_log(files[0])  # the loader accepts what the generator writes
    assert log.activities.shape == (24, SLOTS_PER_HOUR)
    assert (log.activities[0] == 110).all()  # asleep at midnight


def test_events_follow_activities():
    logs, _ = generate_day_logs(GeneratorConfig(n_users=2, n_days=3, seed=1))
    for days in logs.values():
        for day in days:
            codes = {c for h in day["hours"] for c in h["activities"]}
            assert bool(day["calls"]) == (5140 in codes)
            assert bool(day["sms"]) == (5141 in codes)


def test_config_controls_activities_scale_and_profiles():
    cfg = GeneratorConfig(
        n_users=4, n_days=2, n_activities=6, mood_scale="continuous", n_profiles=2, taste_noise=0.0, seed=3
    )
    logs, aff = generate_day_logs(cfg)
    allowed = {a.code for a in activity_set(6)}
    moods = []
    for days in logs.values():
        for day in days:
            for h in day["hours"]:
                assert set(h["activities"]) <= allowed
                moods.append(h["mood"])
    assert any(m not in (-1, 0, 1) for m in moods) and all(-1 <= m <= 1 for m in moods)
    np.testing.assert_allclose(aff[0], aff[2])  # same profile, no taste noise
    with pytest.raises(ValueError):
        GeneratorConfig(n_activities=2)
    with pytest.raises(ValueError):
        GeneratorConfig(mood_scale="likert")


def test_taste_is_low_rank_plus_noise():
    cfg = GeneratorConfig(n_users=40, n_days=1, rank=2, taste_noise=0.0, seed=2)
    _, aff = generate_day_logs(cfg)
    raw = np.arctanh(np.clip(aff[:, 1:], -0.999999, 0.999999))  # column 0 is sleep (neutral)
    centred = raw - raw.mean(axis=0)
    s = np.linalg.svd(centred, compute_uv=False)
    assert s[2] < 1e-6 * s[0]


def test_write_is_atomic_and_refuses_to_overwrite(tmp_path):
    out = write_day_logs(GeneratorConfig(n_users=1, n_days=1), tmp_path / "d")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(FileExistsError):
        write_day_logs(GeneratorConfig(n_users=1, n_days=1), out)
