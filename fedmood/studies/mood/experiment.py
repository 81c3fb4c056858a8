"""The mood recommender comparison: centralised fastai-style baseline against the Flower run.

Both use the same day logs, the same per-user splits, the same model and the same trainer; the
experiment entry point (``experiments/mood.py``) and the benchmark call :func:`run`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fedmood.data.ratings import stack
from fedmood.results import ResultsWriter
from fedmood.studies.mood.clustering import agreement, assign, centres_from_clients, kmodes_centralised
from fedmood.studies.mood.data.fragments import N_CODES
from fedmood.studies.mood.data.local import LocalData, data_shape, load_all_local_data
from fedmood.studies.mood.figures import mse_curves, suggestion_quality_figure
from fedmood.studies.mood.model import EmbeddingDotBias
from fedmood.studies.mood.run import (
    CENTRAL,
    FEDERATED,
    federated_summary_row,
    metrics_table,
    personalisation_summary,
    personalisation_table,
    run_federated_simulation,
    summary_row,
)
from fedmood.studies.mood.server_app import FederatedRun
from fedmood.studies.mood.suggest import (
    SuggestContext,
    Suggestion,
    describe_centre,
    predicted_moods,
    suggest_kinds,
    user_suggestions,
)
from fedmood.studies.mood.suggestion_quality import headline, model_quality, quality_summary
from fedmood.studies.mood.train import TrainConfig, make_optimizer, make_scheduler
from fedmood.training import Batches, evaluate_mse, shuffled_batches, steps_per_epoch, train_epoch


@dataclass
class CentralRun:
    """The centralised baseline's history, model and clusters."""

    rounds: list[dict] = field(default_factory=list)  # epoch, train_mse, val_mse, seconds
    model: EmbeddingDotBias | None = None
    centres: np.ndarray | None = None
    labels: np.ndarray | None = None
    cluster_seconds: float = 0.0


def centralised_clustering(devices: list[LocalData], k: int, max_iter: int, seed: int):
    """k-modes on all fragments pooled, from the same starting centres as the federated run."""
    frags = [d.fragments for d in devices]
    init = centres_from_clients(frags, k, N_CODES, seed)
    return kmodes_centralised(np.concatenate(frags), init, max_iter=max_iter, seed=seed)


def run_centralised(cfg: dict, devices: list[LocalData], progress: bool = True) -> CentralRun:
    """Cluster (day logs) and train the fastai-style baseline on all users' rows."""
    seed, tcfg = int(cfg["seed"]), TrainConfig(**cfg["training"])
    run = CentralRun()
    if devices[0].fragments is not None:
        t0 = time.perf_counter()
        run.labels, run.centres = centralised_clustering(
            devices, int(cfg["data"]["n_clusters"]), int(cfg["data"]["cluster_max_iter"]), seed
        )
        run.cluster_seconds = time.perf_counter() - t0
    rows = [d.rows(run.centres) for d in devices]
    n_users, n_items = len(devices), data_shape(cfg["data"], seed)[1]
    train, val = Batches.from_numpy(*stack(rows, "train")), Batches.from_numpy(*stack(rows, "val"))
    torch.manual_seed(seed)
    model = EmbeddingDotBias(n_users, n_items, int(cfg["model"]["n_factors"]), tuple(cfg["model"]["y_range"]))
    opt = make_optimizer(model, tcfg)
    sched = make_scheduler(opt, tcfg, total_steps=tcfg.epochs * steps_per_epoch(len(train), tcfg.batch_size))
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(1, tcfg.epochs + 1):
        t0 = time.perf_counter()
        train_mse = train_epoch(model, shuffled_batches(train, tcfg.batch_size, gen), opt, sched)
        val_mse = evaluate_mse(model, val)
        secs = time.perf_counter() - t0
        run.rounds.append({"round": epoch, "train_mse": train_mse, "val_mse": val_mse, "seconds": secs})
        if progress:
            print(
                f"[centralised] epoch {epoch}/{tcfg.epochs} train_mse={train_mse:.4f} "
                f"val_mse={val_mse:.4f} ({secs:.2f}s)",
                flush=True,
            )
    run.model = model
    return run


def _suggestion_rows(
    label: str, user: int, mean: float, shown: list[Suggestion], context: SuggestContext
) -> list[dict]:
    """Table rows for one user's ranked suggestions."""
    return [
        {
            "model": label,
            "user": user,
            "context": context.describe(),
            "rank": rank,
            "item": s.item,
            "activities": s.activities,
            "predicted_mood": s.predicted,
            "uncertainty": s.uncertainty,
            "own_hours": s.own_hours,
            "gain_over_mean": s.gain,
            "user_mean_mood": mean,
        }
        for rank, s in enumerate(shown, start=1)
    ]


def suggestions_table(
    model: EmbeddingDotBias,
    devices: list[LocalData],
    centres: np.ndarray | None,
    users: list[int],
    cfg: dict,
    label: str,
) -> pd.DataFrame:
    """The suggestions for each of ``users`` in the configured context, with the gain over their mean mood."""
    context, kinds, n, rows = SuggestContext.from_cfg(cfg), suggest_kinds(cfg), int(cfg["n_suggestions"]), []
    for u in users:
        shown = user_suggestions(predicted_moods(model, u), devices[u], centres, context, kinds, n)
        rows += _suggestion_rows(label, u, float(devices[u].rows(centres).part("train")[1].mean()), shown, context)
    return pd.DataFrame(rows)


def federated_suggestions(run: FederatedRun, cfg: dict) -> pd.DataFrame:
    """The suggestions the demo devices computed on-device, as a table."""
    context, rows = SuggestContext.from_cfg(cfg), []
    for s in sorted(run.suggestions, key=lambda s: s["user"]):
        shown = [
            Suggestion(item, describe_centre(None if run.centres is None else run.centres[item], item), p, g, u, h)
            for item, p, g, u, h in zip(
                s["items"], s["predicted"], s["gain"], s["uncertainty"], s["own-hours"], strict=True
            )
        ]
        rows += _suggestion_rows(FEDERATED, int(s["user"]), s["user-mean"], shown, context)
    return pd.DataFrame(rows)


def central_quality(cfg: dict, devices: list[LocalData], central: CentralRun) -> pd.DataFrame:
    """Per user: the centralised model's suggestions against the truth, on its own items."""
    predicted = {CENTRAL: np.stack([predicted_moods(central.model, d.user) for d in devices])}
    return model_quality(cfg, devices, central.centres, predicted, baseline=False)


def suggestion_quality(cfg: dict, devices: list[LocalData], central: CentralRun, fed: FederatedRun) -> pd.DataFrame:
    """Per model and user: the suggestions' quality against the truth (:mod:`~fedmood.studies.mood.suggestion_quality`)
    in ``cfg``'s context: centralised on its own items; federated, after personalisation and the
    popularity baseline on the federated run's items (each device's predictions from its own report).
    """
    tables = [central_quality(cfg, devices, central)]
    if fed.rankings:
        tables.append(model_quality(cfg, devices, fed.centres, fed.rankings, baseline=True))
    return pd.concat(tables, ignore_index=True)


def run(cfg: dict, out_dir: str | Path | None, progress: bool = True) -> dict:
    """Load data, run both models, write the results folder (if ``out_dir``), return the summary."""
    seed = int(cfg["seed"])
    devices = load_all_local_data(cfg["data"], seed)  # validates every log before anything is written
    writer = ResultsWriter(out_dir) if out_dir is not None else None
    if writer:
        writer.config(cfg)
    central = run_centralised(cfg, devices, progress)
    fed = run_federated_simulation(cfg, devices=devices)
    metrics = pd.concat([metrics_table(CENTRAL, central.rounds), metrics_table(FEDERATED, fed.rounds)])
    summary = pd.DataFrame([summary_row(CENTRAL, central.rounds), federated_summary_row(fed)])
    c, f = summary.iloc[0], summary.iloc[1]
    extra = {
        "val_mse_ratio": f["val_mse"] / c["val_mse"],
        "time_per_epoch_ratio": f["sec_per_epoch"] / c["sec_per_epoch"],
        "cluster_ari": np.nan,
        "fed_cluster_iterations": fed.cluster_iterations,
    }
    personal = personalisation_table(fed)
    extra.update(personalisation_summary(personal))
    if central.centres is not None:
        all_frags = np.concatenate([d.fragments for d in devices])
        extra["cluster_ari"] = agreement(central.labels, assign(all_frags, fed.centres))
    quality = pd.DataFrame()
    if (cfg.get("suggest") or {}).get("evaluate", False):
        quality = pd.concat([central_quality(cfg, devices, central), fed.quality], ignore_index=True)
        extra.update(headline(quality_summary(quality)))
    users = list(range(min(int(cfg["suggest_users"]), len(devices))))
    sugg = pd.concat(
        [
            suggestions_table(central.model, devices, central.centres, users, cfg, CENTRAL),
            federated_suggestions(fed, cfg),
        ]
    )
    result = {
        "summary": summary,
        "metrics": metrics,
        "extra": extra,
        "suggestions": sugg,
        "suggestion_quality": quality,
        "devices": devices,
        "central": central,
        "federated": fed,
    }
    if writer:
        writer.table("metrics", metrics)
        writer.table("summary", summary)
        writer.table("rounds_federated", pd.DataFrame(fed.rounds))
        writer.table("suggestions", sugg)
        if len(quality):
            writer.table("suggestion_quality", quality)
            writer.figure("suggestion_quality", suggestion_quality_figure(quality_summary(quality)))
        if len(personal):
            writer.table("personalisation", personal)
        writer.json("comparison", extra)
        writer.figure("mse_centralised", mse_curves(metrics, [CENTRAL], "Centralised (fastai-style)"))
        writer.figure("mse_federated", mse_curves(metrics, [FEDERATED], "Federated (Flower FedAvg)"))
        writer.figure("mse_both", mse_curves(metrics, title="Centralised vs federated"))
    return result
