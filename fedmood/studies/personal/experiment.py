"""The personal-model study on MotionSense (Servia-Rodriguez et al., IoTDI 2018), centralised and federated.

Writes into the run folder: ``results.csv`` (user, seed, model, k, n, accuracy, macro_f1; saved
after every user, and a rerun into the same folder skips the (user, seed) pairs already there),
``curves.csv`` (mean/sd over users per model, k, n), ``crossovers.csv``/``.md``, the federated
comparison ``federated.csv`` with its rounds in ``federated_history.csv``, ``cost.json`` (the
on-device personalisation's time and memory), ``summary.json`` and ``figures/accuracy_vs_n.png``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fedmood.data.motionsense import load_recordings
from fedmood.data.split import first_n
from fedmood.results import ResultsWriter, atomic_write_text
from fedmood.studies.personal.cost import personalisation_cost
from fedmood.studies.personal.data import UserData, user_data
from fedmood.studies.personal.federated import train_federated_shared
from fedmood.studies.personal.figures import accuracy_figure
from fedmood.studies.personal.study import (
    StudyConfig,
    crossovers,
    curves,
    run_study,
    run_user,
    shared_training_set,
    training_users,
)
from fedmood.studies.personal.train import FitConfig, train_fresh


def study_config(cfg: dict) -> StudyConfig:
    """The protocol settings of a Hydra config."""
    s = cfg["study"]
    return StudyConfig(
        n_grid=tuple(int(n) for n in s["n_grid"]),
        k_users=tuple(int(k) for k in s["k_users"]),
        seeds=int(s["seeds"]),
        hidden=int(s["hidden"]),
        shared=FitConfig(**cfg["shared"]),
        local=FitConfig(**cfg["local"]),
        personal=FitConfig(**cfg["personal"]),
    )


def _previous_rows(out_dir: Path) -> list[dict]:
    path = out_dir / "results.csv"
    return pd.read_csv(path).to_dict("records") if path.is_file() else []


def federated_comparison(
    data: dict[int, UserData], users: list[int], study: StudyConfig, fed: dict, say
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per held-out user: Shared trained with FedAvg on the other users' devices, then personalised on theirs."""
    rows, history = [], []
    k = len(data) - 1
    one_k = replace(study, k_users=(k,))
    for user in users:
        clients = [(data[v].all_x(), data[v].all_y()) for v in sorted(data) if v != user]
        for seed in range(int(fed.get("seeds", 1))):
            t0 = time.perf_counter()
            cfg = replace(study.shared, epochs=int(fed["local_epochs"]))
            rounds = int(fed["num_rounds"])
            model, hist = train_federated_shared(clients, study.n_classes, study.hidden, cfg, rounds, seed)
            history += [{"user": user, "seed": seed, **h} for h in hist]
            for r in run_user(user, data, one_k, seed, shared_models={k: model}):
                if r["model"] != "local":
                    rows.append({**r, "model": f"federated_{r['model']}"})
            say(f"[personal] federated Shared for user {user} seed {seed}: {time.perf_counter() - t0:.0f}s")
    return pd.DataFrame(rows), pd.DataFrame(history)


def crossovers_markdown(cross: pd.DataFrame) -> str:
    lines = [
        "| Shared users k | Shared accuracy | Personal beats Shared from n = | Local matches Personal from n = |",
        "|---|---|---|---|",
    ]
    for _, r in cross.iterrows():
        cp = "never (n <= grid max)" if np.isnan(r.crossover_personal) else f"{int(r.crossover_personal)}"
        cl = "never (n <= grid max)" if np.isnan(r.crossover_local) else f"{int(r.crossover_local)}"
        lines.append(f"| {int(r.k)} | {r.shared_acc:.2f} | {cp} | {cl} |")
    return "\n".join(lines) + "\n"


def _at(curve: pd.DataFrame, model: str, k: int, n: int) -> float:
    c = curve[(curve.model == model) & (curve.k == k) & (curve.n == n)]
    return float(c.accuracy_mean.iloc[0]) if len(c) else float("nan")


def run(cfg: dict, out_dir: str | Path, progress: bool = True) -> dict:
    """The whole study into ``out_dir``; returns the summary (the benchmark's numbers)."""
    torch.set_num_threads(int(cfg.get("threads", 2)))
    say = (lambda m: print(m, flush=True)) if progress else (lambda _m: None)
    out_dir = Path(out_dir)
    writer = ResultsWriter(out_dir)
    writer.config(cfg)
    w = cfg["window"]
    t0 = time.perf_counter()
    data = user_data(
        load_recordings(cfg.get("data_path"), cfg.get("cache_dir")),
        int(w["width"]),
        int(w["stride"]),
        float(w["test_fraction"]),
    )
    users = [int(u) for u in cfg.get("users") or sorted(data)]
    say(
        f"[personal] {len(data)} devices, {sum(len(d.pool_y) for d in data.values())} pool and "
        f"{sum(len(d.test_y) for d in data.values())} test windows ({time.perf_counter() - t0:.0f}s)"
    )
    study = study_config(cfg)
    rows = _previous_rows(out_dir)
    done = {(int(r["user"]), int(r["seed"])) for r in rows}

    def save(new: list[dict]) -> None:
        rows.extend(new)
        writer.table("results", pd.DataFrame(rows))

    run_study(data, study, users, progress=lambda m: say(f"[personal] {m}"), done=done, on_user=save)
    table = pd.DataFrame(rows)
    table = table[table.user.isin(users)]
    curve = curves(table)
    writer.table("curves", curve)
    cross = crossovers(curve)
    writer.table("crossovers", cross)
    atomic_write_text(out_dir / "crossovers.md", crossovers_markdown(cross))
    k_row = int(curve.loc[curve.model == "shared", "k"].max())  # the Shared of the most users studied
    k_fed = len(data) - 1  # the federated Shared learns from every other user
    fed_curve = None
    fed = cfg.get("federated") or {}
    fed_users = [int(u) for u in (fed.get("users") or [])]
    summary: dict[str, float] = {}
    if fed_users:
        fed_rows, fed_hist = federated_comparison(data, fed_users, study, fed, say)
        writer.table("federated_history", fed_hist)
        central = table[(table.user.isin(fed_users)) & (table.seed < int(fed.get("seeds", 1))) & (table.k == k_fed)]
        both = pd.concat([fed_rows, central[central.model.isin(["shared", "personal"])]])
        writer.table("federated", both)
        fed_curve = curves(fed_rows)
        fed_curve = fed_curve[fed_curve.model == "federated_personal"]
        per = curves(both)
        summary["federated_shared_acc"] = _at(per, "federated_shared", k_fed, 0)
        summary["central_shared_acc_same_users"] = _at(per, "shared", k_fed, 0)
        summary["federated_personal_acc_at_20"] = _at(per, "federated_personal", k_fed, 20)
        summary["federated_rounds"] = int(fed["num_rounds"])
    cost_cfg = cfg.get("cost") or {}
    n_cost = int(cost_cfg.get("n", 20))
    user = users[0]
    x, y = shared_training_set(data, training_users(user, sorted(data), k_row, 0))
    shared = train_fresh(x, y, study.n_classes, study.hidden, study.shared, 0)
    own = data[user]
    idx = first_n(len(own.pool_y), min(n_cost, len(own.pool_y)), 0, user)
    cost = personalisation_cost(shared, own.pool_x[idx], own.pool_y[idx], study.personal)
    writer.json("cost", {"user": user, "n": len(idx), **cost})
    writer.figure("accuracy_vs_n", accuracy_figure(curve, k_row, fed_curve))
    crow = cross[cross.k == k_row].iloc[0]
    summary = {
        "shared_acc": _at(curve, "shared", k_row, 0),
        "personal_acc_at_20": _at(curve, "personal", k_row, 20),
        "local_acc_at_20": _at(curve, "local", 0, 20),
        "crossover_personal": float(crow.crossover_personal),
        "crossover_local": float(crow.crossover_local),
        "personalise_sec": cost["seconds"],
        "personalise_peak_mb": cost["peak_rss_mb"],
        **summary,
    }
    writer.json("summary", summary)
    return summary
