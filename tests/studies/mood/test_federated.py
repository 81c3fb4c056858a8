"""Real Flower simulations (Ray) on a small data set: kept few and small."""

import shutil

import numpy as np
import pandas as pd
import pytest

from fedmood.studies.mood import experiment as mood_experiment
from fedmood.studies.mood.run import run_federated_simulation
from strategies.strict import ClientRoundError

pytestmark = pytest.mark.flower


def test_federated_matches_centralised_on_small_data(small_cfg, tmp_path):
    cfg = dict(small_cfg, training=dict(small_cfg["training"], epochs=30, lr_max=0.03))
    cfg["federation"] = dict(cfg["federation"], num_rounds=30)
    out = tmp_path / "run"
    res = mood_experiment.run(cfg, out, progress=False)
    s = res["summary"].set_index("model")
    c_val, f_val = s.loc["centralised", "val_mse"], s.loc["federated", "val_mse"]
    assert np.isfinite(f_val) and f_val < 1.3 * c_val
    fed = pd.DataFrame(res["federated"].rounds)
    assert fed["val_mse"].notna().all() and fed["val_mse"].iloc[-1] < fed["val_mse"].iloc[0]
    assert res["extra"]["cluster_ari"] > 0.9
    for name in (
        "config.yaml",
        "metrics.csv",
        "summary.csv",
        "suggestions.csv",
        "suggestion_quality.csv",
        "comparison.json",
        "figures/mse_centralised.png",
        "figures/mse_federated.png",
        "figures/mse_both.png",
    ):
        assert (out / name).is_file(), name
    metrics = pd.read_csv(out / "metrics.csv")
    assert set(metrics.columns) == {"model", "epoch", "split", "mse", "seconds"}
    assert len(metrics) == 2 * 2 * 30
    sugg = pd.read_csv(out / "suggestions.csv")
    assert set(sugg["model"]) == {"centralised", "federated"}
    assert sugg.groupby(["model", "user"]).size().between(1, 3).all()  # what is feasible at that hour
    quality = pd.read_csv(out / "suggestion_quality.csv")
    assert set(quality["model"]) == {"centralised", "federated", "personalised", "popularity"}
    assert (quality["non_discretionary"] == 0).all() and set(quality["truth"]) == {"generator"}
    assert {"centralised_p3", "federated_p3", "popularity_p3", "oracle_gain"} <= set(res["extra"])
    assert not [p for p in out.rglob(".*") if p.is_file()]  # no temporary files left


def test_a_failing_client_fails_the_run(small_cfg, small_logs, tmp_path):
    bad = tmp_path / "logs"
    shutil.copytree(small_logs, bad)
    (sorted((bad / "user0004").glob("*.json"))[0]).write_text("{not json")
    cfg = dict(small_cfg, data=dict(small_cfg["data"], logs_dir=str(bad)))
    with pytest.raises(ClientRoundError, match=r"(?s)1 of 6 clients failed.*user0004.*invalid JSON"):
        run_federated_simulation(cfg)
