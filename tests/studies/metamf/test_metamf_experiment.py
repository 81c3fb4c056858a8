"""The MetaMF experiments end to end on a small ratings file of one's own (β sweep; federated run)."""

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_experiment


def _ratings_file(path, n_users=30, n_items=40, seed=0):
    rng = np.random.default_rng(seed)
    taste = rng.normal(size=(n_users, 3)) @ rng.normal(size=(3, n_items))
    rows = ["user,item,rating"]
    for u in range(n_users):
        for i in rng.choice(n_items, size=rng.integers(12, 35), replace=False):
            rows.append(f"u{u},m{i},{int(np.clip(np.round(3 + taste[u, i]), 1, 5))}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_beta_sweep_writes_the_delta_mae_table_and_figures(tmp_path):
    ratings = _ratings_file(tmp_path / "mine.csv")
    run_experiment(
        "metamf_privacy",
        "-m",
        "dataset=ml",
        "variant=metamf,nometamf",
        "beta=1.0,0.3",
        f"ratings_path={ratings}",
        "training.max_epochs=2",
        "training.lr=0.003",
        "group_frac=0.1",
        f"results_root={tmp_path / 'results'}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )
    table = pd.read_csv(tmp_path / "sweep" / "beta_sweep.csv")
    assert set(table.columns) >= {"dataset", "model", "beta", "group", "mae", "mse", "delta_mae"}
    assert len(table) == 2 * 2 * 4  # model x beta x (All, Low, Med, High)
    assert set(table["dataset"]) == {"mine"} and set(table["group"]) == {"All", "Low", "Med", "High"}
    full = table[table["beta"] == 1.0]
    assert np.allclose(full["delta_mae"], 1.0)
    low = table[(table["beta"] == 0.3) & (table["group"] == "All")]
    assert (low["train_ratings"] < full[full["group"] == "All"]["train_ratings"].max()).all()
    assert (tmp_path / "sweep" / "figures" / "delta_mae_mine.png").is_file()
    assert "### mine: ΔMAE@β" in (tmp_path / "sweep" / "beta_sweep.md").read_text()
    # finished runs leave no checkpoints behind (they exist only to resume a killed run)
    assert not list((tmp_path / "results" / "metamf" / "checkpoints").glob("*.pt"))


@pytest.mark.flower
def test_federated_metamf_experiment_evaluates_on_the_devices(tmp_path):
    ratings = _ratings_file(tmp_path / "mine.csv", n_users=8)
    run_experiment(
        "metamf_federated",
        f"ratings_path={ratings}",
        "users=null",
        "num_rounds=4",
        "eval_every=2",
        "beta=0.5",
        "group_frac=0.25",
        f"results_root={tmp_path / 'results'}",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert history["round"].tolist() == [1, 2, 3, 4]
    assert history["val_mae"].notna().tolist() == [False, True, False, True]
    summary = pd.read_csv(tmp_path / "run" / "summary.csv")
    assert summary["group"].tolist() == ["All", "Low", "Med", "High"]
    everyone = summary[summary["group"] == "All"].iloc[0]
    assert everyone["users"] == 8 and everyone["beta"] == 0.5 and 0 < everyone["mae"] < 4
    assert everyone["bytes_up_per_client_per_round"] > 4 * 32 * 128  # M's gradient share at least
