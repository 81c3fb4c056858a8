import os

import pandas as pd
import pytest

from fedmood.results import ResultsWriter, atomic_write_text
from fedmood.studies.mood import experiment as mood_experiment
from fedmood.studies.mood.data.logs import LogFormatError


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    path = atomic_write_text(tmp_path / "summary.csv", "old\n")

    def boom(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(path, "new\n")
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.csv"]


def test_writer_files(tmp_path):
    w = ResultsWriter(tmp_path / "run")
    w.config({"a": {"b": 1}})
    w.table("metrics", pd.DataFrame({"x": [1]}))
    assert (tmp_path / "run" / "config.yaml").read_text().startswith("a:")
    assert (tmp_path / "run" / "metrics.csv").read_text() == "x\n1\n"


def test_bad_log_fails_before_anything_is_written(small_cfg, small_logs, tmp_path):
    import shutil

    bad_root = tmp_path / "bad"
    shutil.copytree(small_logs, bad_root)
    victim = sorted((bad_root / "user0003").glob("*.json"))[1]
    victim.write_text(victim.read_text().replace('"hour":5,', '"hour":25,'))
    cfg = dict(small_cfg, data=dict(small_cfg["data"], logs_dir=str(bad_root)))
    out = tmp_path / "results" / "run1"
    with pytest.raises(LogFormatError, match=r"user0003/2026-01-06.json: field 'hours\[5\].hour'"):
        mood_experiment.run(cfg, out)
    assert not out.exists()
