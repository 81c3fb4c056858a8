"""The leave-one-user-out protocol of the personal-model study, and its summaries.

For every subject u (the device) and seed: *Shared* models trained on the other users' windows
(all 23 of them, and only k of them, drawn with the seed), *Local* models trained on u's first n
pool windows, *Personal* models = each Shared fine-tuned on the same n windows; all tested on u's
held-out test windows (:mod:`fedmood.studies.personal.data`). Nothing of u's is in any Shared training set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fedmood.classification import predict, scores
from fedmood.data.split import first_n
from fedmood.studies.personal.data import UserData
from fedmood.studies.personal.model import FeatureMLP
from fedmood.studies.personal.train import FitConfig, personalise, train_fresh

N_GRID = (1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200)


@dataclass(frozen=True)
class StudyConfig:
    """The protocol's grid and the three training recipes (Hydra ``study``, ``shared``, ``local``, ``personal``)."""

    n_grid: tuple[int, ...] = N_GRID
    k_users: tuple[int, ...] = (2, 5, 10, 23)
    seeds: int = 3
    hidden: int = 128
    n_classes: int = 6
    shared: FitConfig = field(default_factory=lambda: FitConfig(epochs=30, lr=1e-3, batch_size=64))
    local: FitConfig = field(default_factory=lambda: FitConfig(epochs=100, lr=1e-3, batch_size=32))
    personal: FitConfig = field(default_factory=lambda: FitConfig(epochs=30, lr=1e-3, batch_size=32))


def training_users(user: int, users: list[int], k: int, seed: int) -> list[int]:
    """The users a Shared model for ``user`` learns from: ``k`` of the others (all when k >= their number)."""
    others = [v for v in users if v != user]
    if k >= len(others):
        return others
    pick = np.random.default_rng([seed, user, k, 0x5A4D]).choice(len(others), size=k, replace=False)
    return sorted(others[i] for i in pick)


def shared_training_set(data: dict[int, UserData], users: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Every window (pool and test) of ``users``."""
    return np.concatenate([data[v].all_x() for v in users]), np.concatenate([data[v].all_y() for v in users])


def _row(user: int, seed: int, model: str, k: int, n: int, clf: FeatureMLP, test: UserData) -> dict:
    score = scores(test.test_y, predict(clf, test.test_x))
    return {"user": user, "seed": seed, "model": model, "k": k, "n": n, **score}


def run_user(
    user: int,
    data: dict[int, UserData],
    cfg: StudyConfig,
    seed: int,
    shared_models: dict[int, FeatureMLP] | None = None,
) -> list[dict]:
    """Every row of one device and seed: Shared per k, Local and Personal (per k) per n.

    ``shared_models`` (k -> model) replaces the centralised Shared models, e.g. federated ones.
    """
    users = sorted(data)
    own = data[user]
    rows = []
    shared = dict(shared_models or {})
    for k in cfg.k_users:
        if k not in shared:
            x, y = shared_training_set(data, training_users(user, users, k, seed))
            shared[k] = train_fresh(x, y, cfg.n_classes, cfg.hidden, cfg.shared, seed)
    k_used = {k: min(k, len(users) - 1) for k in shared}
    for k, model in shared.items():
        rows.append(_row(user, seed, "shared", k_used[k], 0, model, own))
    for n in cfg.n_grid:
        if n > len(own.pool_y):
            continue
        idx = first_n(len(own.pool_y), n, seed, user)
        x, y = own.pool_x[idx], own.pool_y[idx]
        rows.append(_row(user, seed, "local", 0, n, train_fresh(x, y, cfg.n_classes, cfg.hidden, cfg.local, seed), own))
        for k, model in shared.items():
            rows.append(_row(user, seed, "personal", k_used[k], n, personalise(model, x, y, cfg.personal, seed), own))
    return rows


def run_study(
    data: dict[int, UserData],
    cfg: StudyConfig,
    users: list[int] | None = None,
    progress: Callable[[str], None] | None = None,
    done: set[tuple[int, int]] | None = None,
    on_user: Callable[[list[dict]], None] | None = None,
) -> list[dict]:
    """:func:`run_user` for every (user, seed) not in ``done``; ``on_user`` gets each one's rows (to save them)."""
    rows: list[dict] = []
    for user in users or sorted(data):
        for seed in range(cfg.seeds):
            if done and (user, seed) in done:
                continue
            new = run_user(user, data, cfg, seed)
            rows.extend(new)
            if on_user:
                on_user(new)
            if progress:
                acc = {r["model"]: r["accuracy"] for r in new if r["n"] in (0, 20) and r["k"] == max(cfg.k_users)}
                progress(f"user {user} seed {seed}: " + " ".join(f"{m}={a:.1f}" for m, a in acc.items()))
    return rows


def curves(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd (over users; seeds averaged per user first) of accuracy and macro-F1 per (model, k, n)."""
    per_user = table.groupby(["model", "k", "n", "user"], as_index=False)[["accuracy", "macro_f1"]].mean()
    out = per_user.groupby(["model", "k", "n"])[["accuracy", "macro_f1"]].agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    return out.reset_index()


def crossovers(curve: pd.DataFrame) -> pd.DataFrame:
    """Per k: the smallest n where Personal beats Shared, and where Local matches Personal (mean accuracy).

    NaN where it never happens on the grid.
    """
    rows = []
    local = curve[curve.model == "local"].set_index("n")["accuracy_mean"]
    for k in sorted(curve.loc[curve.model == "shared", "k"].unique()):
        shared = float(curve[(curve.model == "shared") & (curve.k == k)]["accuracy_mean"].iloc[0])
        personal = curve[(curve.model == "personal") & (curve.k == k)].set_index("n")["accuracy_mean"]
        beats = personal.index[personal > shared]
        common = personal.index.intersection(local.index)
        matches = [n for n in common if local[n] >= personal[n]]
        rows.append(
            {
                "k": int(k),
                "shared_acc": shared,
                "crossover_personal": float(min(beats)) if len(beats) else float("nan"),
                "crossover_local": float(min(matches)) if matches else float("nan"),
            }
        )
    return pd.DataFrame(rows)
