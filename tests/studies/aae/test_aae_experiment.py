"""The AAE experiment end to end on a small synthetic MotionSense zip, and the anonymiser tool."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from synthetic_motionsense import recording as make_recording
from synthetic_motionsense import recording_csv, synthetic_motionsense

from fedmood.studies.aae.anonymise import main as anonymise_main
from fedmood.studies.aae.baselines import resample_roundtrip, ssa_reconstruct
from tests.conftest import run_experiment


def test_baselines_keep_the_window_shape():
    x = np.random.default_rng(0).normal(size=(6, 2, 128)).astype(np.float32)
    for y in (resample_roundtrip(x, 10.0), resample_roundtrip(x, 5.0), ssa_reconstruct(x, 1), ssa_reconstruct(x, 2)):
        assert y.shape == x.shape and y.dtype == np.float32
    low = np.abs(np.fft.rfft(resample_roundtrip(x, 5.0), axis=-1))
    assert low[..., 7:].max() < 1e-4  # 5 Hz of a 2.56 s window: nothing above bin 6 survives


def test_table2_experiment_and_the_anonymiser_tool(tmp_path):
    data = synthetic_motionsense(tmp_path / "ms")
    run_dir = tmp_path / "run"
    run_experiment(
        "aae",
        "aae_size=quick",
        f"data_path={data}",
        f"cache_dir={tmp_path / 'cache'}",
        "methods=[raw,resample_5hz,ssa_1,aae]",
        "aae.rounds=2",
        "classifier.epochs=2",
        "attacker.epochs=4",
        "eval_seeds=2",
        f"hydra.run.dir={run_dir}",
        timeout=900,
    )
    table = pd.read_csv(run_dir / "table2.csv")
    assert table["method"].tolist() == ["raw", "resample_5hz", "ssa_1", "aae"]
    assert table[["act_f1", "id_acc", "id_f1", "id_acc_adaptive"]].apply(lambda c: c.between(0, 100)).all().all()
    md = (run_dir / "table2.md").read_text()
    assert "92.51" in md and "6.98" in md and "adaptive attacker" in md  # the paper's numbers next to ours
    attacker = json.loads((run_dir / "attacker.json").read_text())  # which attacker measured every ID figure
    assert set(table["attacker"]) == {attacker["weights"]} and attacker["weights"] in md and attacker["seconds"] > 0
    assert (run_dir / "figures" / "windows_raw_vs_anonymised.png").is_file()
    assert (run_dir / "figures" / "embedding_by_user_and_activity.png").is_file()
    assert len(pd.read_csv(run_dir / "aae_history.csv")) == 2

    recording = tmp_path / "mine.csv"
    recording.write_text(recording_csv(make_recording(3, "wlk", 200, np.random.default_rng(1))))
    assert (
        anonymise_main(
            ["--model", str(run_dir / "aae.pt"), "--input", str(recording), "--output", str(tmp_path / "a.npz")]
        )
        == 0
    )
    with np.load(tmp_path / "a.npz") as z:
        assert z["windows"].shape == (8, 2, 128) and z["start"].tolist() == list(range(0, 80, 10))
    assert (
        anonymise_main(
            ["--model", str(run_dir / "aae.pt"), "--input", str(recording), "--output", str(tmp_path / "a.csv")]
        )
        == 0
    )
    assert len(pd.read_csv(tmp_path / "a.csv")) == 8 * 128


def test_the_anonymiser_tool_refuses_bad_input(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("time,rotationRate.x\n0,1.0\n")
    model = tmp_path / "none.pt"
    assert anonymise_main(["--model", str(model), "--input", str(bad), "--output", str(tmp_path / "o.npz")]) == 2
    assert "none.pt does not exist" in capsys.readouterr().err
    from fedmood.data.motionsense import Standardiser
    from fedmood.studies.aae.experiment import save_anonymiser  # a real (untrained) checkpoint for the column check
    from fedmood.studies.aae.model import Autoencoder
    from fedmood.studies.aae.train import AAEConfig

    save_anonymiser(
        model, Autoencoder(hidden=8), Standardiser(np.zeros((2, 1)), np.ones((2, 1))), 128, AAEConfig(hidden=8)
    )
    assert anonymise_main(["--model", str(model), "--input", str(bad), "--output", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "missing column(s) attitude.roll" in err
    assert not (tmp_path / "o.npz").exists()


def test_settings_are_refused_by_name_before_any_work():
    from omegaconf import OmegaConf

    from fedmood.paths import CONF_DIR
    from fedmood.studies.aae.experiment import study_configs

    base = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "aae.yaml"), resolve=False)
    assert study_configs(base).federated.reg_epochs == base["federated"]["reg_epochs"]
    assert study_configs(base).federated.server_momentum == base["federated"]["server_momentum"]
    # the attacker is the measuring instrument: another training seed keeps it (one cached attacker)
    assert study_configs({**base, "seed": 3}).attacker_seed == 0
    for change, message in (
        ({"methods": ["raw", "aae_gan"]}, "methods: unknown method 'aae_gan'"),
        ({"aae": {**base["aae"], "arch": "unet"}}, "aae: arch: 'unet'"),
        ({"aae": {**base["aae"], "reconstruction": "median"}}, r"aae: aae\.reconstruction: 'median'"),
        ({"classifier": {**base["classifier"], "arch": "resnet"}}, "classifier: classifier arch 'resnet'"),
        ({"attacker": {**base["attacker"], "epoch": 3}}, "attacker: .*epoch"),
        ({"aae": {**base["aae"], "pretrain_epochs": 2}}, "federated AAE has no pretraining phase"),
        ({"federated": {**base["federated"], "server_momentum": 1.0}}, r"federated: server_momentum: 1\.0"),
        ({"attacker_seed": -1}, "attacker_seed: -1 is not a seed"),
        ({"attacker_seed": "0"}, "attacker_seed: '0' is not a seed"),
    ):
        with pytest.raises(ValueError, match=message):
            study_configs({**base, **change})
    # without the federated row, pretraining is fine
    assert study_configs({**base, "methods": ["aae"], "aae": {**base["aae"], "pretrain_epochs": 2}}).aae.pretrain_epochs
