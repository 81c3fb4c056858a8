"""Personal model training: features, the device split, leave-one-user-out, fine-tuning, FedAvg."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from synthetic_motionsense import ALL_TRIALS, recording, synthetic_motionsense

import fedmood.studies.personal.study as study_mod
from fedmood.data.motionsense import ACTIVITIES, COLUMNS, Recording
from fedmood.data.split import first_n
from fedmood.studies.personal.data import user_data
from fedmood.studies.personal.features import feature_names, window_features, with_magnitudes
from fedmood.studies.personal.model import FeatureMLP
from fedmood.studies.personal.study import StudyConfig, crossovers, run_user, shared_training_set, training_users
from fedmood.studies.personal.train import FitConfig, fit, personalise
from tests.conftest import run_experiment


def _recordings(subjects: int = 4, samples: int = 1500) -> list[Recording]:
    rng = np.random.default_rng(0)
    return [
        Recording(s, a, t, recording(s, a, samples, rng))
        for a, trials in ALL_TRIALS.items()
        for t in trials
        for s in range(1, subjects + 1)
    ]


def test_window_features_by_hand():
    w = np.zeros((1, 14, 4), np.float32)
    w[0, 0] = [1, 2, 3, 4]
    f = window_features(w)
    assert f.shape == (1, 140) and len(feature_names()) == 140
    named = dict(zip(feature_names(), f[0], strict=True))
    assert named[f"{COLUMNS[0]}:mean"] == pytest.approx(2.5)
    assert named[f"{COLUMNS[0]}:max"] == 4 and named[f"{COLUMNS[0]}:min"] == 1
    assert named[f"{COLUMNS[0]}:p50"] == pytest.approx(2.5)
    assert named[f"{COLUMNS[0]}:mad"] == pytest.approx(1.0)
    assert named[f"{COLUMNS[0]}:std"] == pytest.approx(np.std([1, 2, 3, 4]))
    data = np.zeros((5, 12))
    data[:, 9:12] = [3.0, 4.0, 0.0]
    assert with_magnitudes(data)[0, 12] == pytest.approx(5.0)
    with pytest.raises(ValueError, match="DeviceMotion"):
        with_magnitudes(np.zeros((5, 3)))


def test_pool_and_test_windows_never_share_a_sample():
    n = 1000
    data = np.zeros((n, 12))
    data[:, 0] = np.arange(n)  # attitude.roll = the sample's index
    users = user_data([Recording(1, "wlk", 7, data)], width=100, stride=50, test_fraction=0.3)
    u = users[1]
    col = feature_names().index(f"{COLUMNS[0]}:max")
    low = feature_names().index(f"{COLUMNS[0]}:min")
    assert u.pool_x[:, col].max() < 700 <= u.test_x[:, low].min()
    assert len(u.pool_y) == (700 - 100) // 50 + 1 and len(u.test_y) == (300 - 100) // 50 + 1
    assert set(u.pool_y) == {ACTIVITIES.index("wlk")}


def test_first_n_is_seeded_nested_and_bounded():
    a, b = first_n(100, 10, seed=0, user=3), first_n(100, 30, seed=0, user=3)
    assert np.array_equal(a, b[:10]) and len(set(b)) == 30
    assert np.array_equal(a, first_n(100, 10, seed=0, user=3))
    assert not np.array_equal(a, first_n(100, 10, seed=1, user=3))
    with pytest.raises(ValueError, match="asked for 101 of 100"):
        first_n(100, 101, 0)


def test_leave_one_user_out_keeps_the_device_out_of_every_training_set(monkeypatch):
    data = user_data(_recordings(), width=256, stride=128)
    user = 2
    own = data[user]
    own_rows = {r.tobytes() for r in np.concatenate([own.pool_x, own.test_x])}
    test_rows = {r.tobytes() for r in own.test_x}
    pool_rows = {r.tobytes() for r in own.pool_x}
    for k in (1, 2, 3):
        chosen = training_users(user, sorted(data), k, seed=0)
        assert user not in chosen and len(chosen) == k
        x, _ = shared_training_set(data, chosen)
        assert not own_rows & {r.tobytes() for r in x}
    seen = []
    real_fresh, real_personalise = study_mod.train_fresh, study_mod.personalise
    monkeypatch.setattr(
        study_mod, "train_fresh", lambda x, *a, **k: seen.append(("fresh", x)) or real_fresh(x, *a, **k)
    )
    monkeypatch.setattr(
        study_mod, "personalise", lambda m, x, *a, **k: seen.append(("personal", x)) or real_personalise(m, x, *a, **k)
    )
    cfg = StudyConfig(
        n_grid=(1, 5, 20),
        k_users=(2, 3),
        seeds=1,
        shared=FitConfig(epochs=2),
        local=FitConfig(epochs=2),
        personal=FitConfig(epochs=2),
    )
    rows = run_user(user, data, cfg, seed=0)
    assert {(r["model"], r["k"], r["n"]) for r in rows} >= {("shared", 3, 0), ("local", 0, 20), ("personal", 2, 5)}
    for kind, x in seen:
        got = {r.tobytes() for r in x}
        assert not got & test_rows  # no test window of the device is ever trained on
        if kind == "personal" or len(x) <= 20:
            assert got <= pool_rows  # the device's own training windows come from its pool
        else:
            assert not got & own_rows  # Shared: other users only


def test_fine_tuning_touches_only_the_chosen_parameters():
    torch.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(40, 140)).astype(np.float32)
    y = np.arange(40) % 6
    shared = FeatureMLP(140, 6).fit_standardisation(x)
    before = copy.deepcopy(shared.state_dict())
    head_only = personalise(shared, x, y, FitConfig(epochs=3, params="head"))
    assert all(torch.equal(shared.state_dict()[k], v) for k, v in before.items())  # Shared untouched
    after = head_only.state_dict()
    for key, value in before.items():
        changed = not torch.equal(after[key], value)
        assert changed == key.startswith("head."), key
    assert all(p.requires_grad for p in head_only.parameters())  # nothing left frozen afterwards
    everything = personalise(shared, x, y, FitConfig(epochs=3, params="all")).state_dict()
    assert not torch.equal(everything["body.0.weight"], before["body.0.weight"])
    assert torch.equal(everything["mean"], before["mean"])  # the standardisation travels unchanged
    with pytest.raises(ValueError, match="params"):
        fit(FeatureMLP(140, 6), x, y, FitConfig(params="body"))


def test_crossovers_on_a_hand_made_curve():
    curve = pd.DataFrame(
        [
            ("shared", 23, 0, 80.0),
            *[("personal", 23, n, a) for n, a in ((1, 70.0), (10, 79.0), (20, 85.0), (50, 90.0))],
            *[("local", 0, n, a) for n, a in ((1, 20.0), (10, 50.0), (20, 70.0), (50, 91.0))],
        ],
        columns=["model", "k", "n", "accuracy_mean"],
    )
    row = crossovers(curve).iloc[0]
    assert row.crossover_personal == 20 and row.crossover_local == 50 and row.shared_acc == 80


@pytest.mark.flower
def test_federated_shared_equals_fedavg_by_hand():
    from fedmood.studies.personal.federated import client_seed, pooled_standardisation, train_federated_shared

    rng = np.random.default_rng(0)
    clients = [(rng.normal(size=(n, 10)).astype(np.float32), rng.integers(0, 3, n)) for n in (12, 30)]
    cfg = FitConfig(epochs=1, batch_size=8)
    model, history = train_federated_shared(clients, 3, 16, cfg, rounds=2, seed=5)
    assert len(history) == 2
    # by hand: pooled statistics, then per round each client trains from the global model; weighted mean
    torch.manual_seed(5)
    glob = FeatureMLP(10, 3, 16)
    all_x = np.concatenate([c[0] for c in clients]).astype(np.float64)
    mean, std = pooled_standardisation(
        [{"n": np.array([len(x)], float), "sum": x.sum(0), "sumsq": (x.astype(float) ** 2).sum(0)} for x, _ in clients]
    )
    assert np.allclose(mean, all_x.mean(0)) and np.allclose(std, all_x.std(0))
    glob.set_standardisation(mean, std)
    for rnd in (1, 2):
        states, weights = [], []
        for pid, (x, y) in enumerate(clients):
            local = copy.deepcopy(glob)
            fit(local, x, y, cfg, client_seed(5, rnd, pid))
            states.append(local.state_dict())
            weights.append(len(y))
        total = sum(weights)
        glob.load_state_dict(
            {k: sum(w * s[k] for w, s in zip(weights, states, strict=True)) / total for k in states[0]}
        )
    for key, value in glob.state_dict().items():
        assert torch.allclose(model.state_dict()[key], value, atol=1e-6), key


def test_personal_experiment_end_to_end(tmp_path):
    data = synthetic_motionsense(tmp_path / "ms", ALL_TRIALS, samples=1200, subjects=4)
    run_dir = tmp_path / "run"
    overrides = [
        "personal_size=quick",
        f"data_path={data}",
        f"cache_dir={tmp_path / 'cache'}",
        "users=[1,2]",
        "study.n_grid=[1,5,20]",
        "study.k_users=[2,3]",
        "federated.users=[]",
        f"hydra.run.dir={run_dir}",
    ]
    run_experiment("personal", *overrides)
    table = pd.read_csv(run_dir / "results.csv")
    assert set(table.model) == {"shared", "local", "personal"} and set(table.user) == {1, 2}
    assert set(table[table.model == "shared"].k) == {2, 3}
    assert (run_dir / "figures" / "accuracy_vs_n.png").stat().st_size > 0
    assert (run_dir / "crossovers.md").read_text().startswith("| Shared users k")
    cost = pd.read_json(run_dir / "cost.json", typ="series")
    assert cost["seconds"] > 0 and cost["peak_rss_mb"] > 10
    # a rerun into the same folder resumes: nothing is recomputed, the table is unchanged
    run_experiment("personal", *overrides)
    assert len(pd.read_csv(run_dir / "results.csv")) == len(table)
