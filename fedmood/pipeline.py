"""The mood recommender comparison: centralised fastai-style baseline against the Flower run.

Both use the same day logs, the same per-user splits, the same model and the same trainer; the
experiment entry point (``experiments/mood.py``) and the benchmark call :func:`run_comparison`.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fedmood.clustering import agreement, assign, centres_from_clients, kmodes_centralised
from fedmood.data.fragments import N_CODES
from fedmood.data.local import LocalData, data_shape, load_all_local_data
from fedmood.data.ratings import stack
from fedmood.federated.device_report import merge_reports, read_reports
from fedmood.federated.server_app import FederatedRun
from fedmood.models import EmbeddingDotBias, shared_size
from fedmood.plotting import mse_curves
from fedmood.privacy.central import PrivacyLedger
from fedmood.privacy.settings import PrivacySettings
from fedmood.results import ResultsWriter
from fedmood.suggest import describe_centre, top_items
from fedmood.training import (
    Batches,
    TrainConfig,
    evaluate_mse,
    make_optimizer,
    make_scheduler,
    shuffled_batches,
    steps_per_epoch,
    train_epoch,
)

CENTRAL, FEDERATED = "centralised", "federated"


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


def run_federated_simulation(
    cfg: dict, client_mods: list | None = None, reports_dir: str | Path | None = None, wrap_grid=None
) -> FederatedRun:
    """The Flower run: one simulated SuperNode per user, ``run_simulation`` on Ray.

    ``client_mods`` wrap every client message (e.g. the privacy audit mod); ``wrap_grid(grid)``
    wraps the ServerApp's grid (e.g. to record what the server sees). Under a privacy mechanism
    the devices keep their metrics in their own reports (:mod:`fedmood.federated.device_report`):
    the experiment, which plays every user, reads them from ``reports_dir`` (a temporary folder
    if not given) into the run's history.
    """
    from fedmood.federated.client_app import build_client_app
    from fedmood.federated.server_app import build_server_app
    from fedmood.federated.simulation import simulate

    fed = cfg["federation"]
    logging.getLogger("flwr").setLevel(fed["flower_log_level"])
    privacy = PrivacySettings.from_cfg(cfg)
    n_users, n_items = data_shape(cfg["data"], int(cfg["seed"]))
    dim = shared_size(n_items, int(cfg["model"]["n_factors"]))
    PrivacyLedger(privacy, n_users, fed.get("clients_per_round"), int(fed["num_rounds"]), fed, dim)  # refuses early
    protected = privacy.protected
    with tempfile.TemporaryDirectory(prefix="fedmood-reports-") as tmp:
        if protected:
            folder = Path(reports_dir) if reports_dir is not None else Path(tmp)
            cfg = {**cfg, "federation": {**fed, "device_reports": str(folder)}}
        out: dict[str, FederatedRun] = {}
        server = build_server_app(lambda _ctx: cfg, lambda run, _cfg: out.setdefault("run", run), wrap_grid)
        client = build_client_app(lambda _ctx: cfg, client_mods)
        simulate(server, client, n_users, fed["client_num_cpus"], fed["backend_num_cpus"])
        if "run" not in out:
            raise RuntimeError("the federated run ended without a result (see the Flower log above)")
        run = out["run"]
        if protected:
            apply_device_reports(run, read_reports(cfg["federation"]["device_reports"]))
    return run


def apply_device_reports(run: FederatedRun, reports: dict) -> None:
    """The run's history, personalisation, suggestions and DP-SGD ε from the devices' own reports."""
    found = merge_reports(run.rounds, reports)
    run.personalisation, run.suggestions = found["personalisation"], found["suggestions"]
    if found["dpsgd"]:
        run.privacy.update(found["dpsgd"])


def metrics_table(model: str, rounds: list[dict]) -> pd.DataFrame:
    """Long-format metrics: one row per (epoch/round, split)."""
    rows = [
        {"model": model, "epoch": r["round"], "split": split, "mse": r[f"{split}_mse"], "seconds": r["seconds"]}
        for r in rounds
        for split in ("train", "val")
    ]
    return pd.DataFrame(rows)


def summary_row(model: str, rounds: list[dict]) -> dict:
    """Table I analogue: last train/val MSE and mean seconds per epoch."""
    secs = [r["seconds"] for r in rounds]
    return {
        "model": model,
        "train_mse": rounds[-1]["train_mse"],
        "val_mse": rounds[-1]["val_mse"],
        "sec_per_epoch": float(np.mean(secs)),
        "sec_per_epoch_after_first": float(np.mean(secs[1:])) if len(secs) > 1 else float(secs[0]),
    }


def federated_summary_row(run: FederatedRun) -> dict:
    """The federated run's summary row with its privacy columns (mechanism, noise, ε, δ, ...)."""
    row = summary_row(FEDERATED, run.rounds)
    row["sec_per_round"] = row["sec_per_epoch_after_first"]
    return row | run.privacy


def personalisation_table(run: FederatedRun) -> pd.DataFrame:
    """Per device: validation MSE of the federated model and of the device's personalised one."""
    table = pd.DataFrame(run.personalisation)
    if len(table):
        table["user"] = table["user"].astype(int)
        table["val_mse_change"] = table["val_mse_after"] - table["val_mse_before"]
    return table


def personalisation_summary(table: pd.DataFrame) -> dict:
    """Row-weighted validation MSE before/after personalisation and the share of devices it helped."""
    if not len(table):
        return {}
    rows = table[table.val_rows > 0]
    w = rows.val_rows
    return {
        "personal_val_mse_before": float((rows.val_mse_before * w).sum() / w.sum()),
        "personal_val_mse_after": float((rows.val_mse_after * w).sum() / w.sum()),
        "personal_users_improved": float((rows.val_mse_change < 0).mean()),
    }


def _suggestion_rows(
    label: str, user: int, mean: float, top: list[tuple[int, float, float]], centres: np.ndarray | None
) -> list[dict]:
    """Table rows for one user's ranked ``(item, predicted mood, gain)`` suggestions."""
    return [
        {
            "model": label,
            "user": user,
            "rank": rank,
            "item": item,
            "activities": describe_centre(None if centres is None else centres[item], item),
            "predicted_mood": pred,
            "gain_over_mean": gain,
            "user_mean_mood": mean,
        }
        for rank, (item, pred, gain) in enumerate(top, start=1)
    ]


def suggestions_table(
    model: EmbeddingDotBias, devices: list[LocalData], centres: np.ndarray | None, users: list[int], n: int, label: str
) -> pd.DataFrame:
    """Top-``n`` items for each of ``users`` with the predicted gain over their mean mood."""
    rows = []
    for u in users:
        mean = float(devices[u].rows(centres).part("train")[1].mean())
        rows += _suggestion_rows(label, u, mean, top_items(model, u, mean, n), centres)
    return pd.DataFrame(rows)


def federated_suggestions(run: FederatedRun) -> pd.DataFrame:
    """The suggestions the demo devices computed on-device, as a table."""
    rows = []
    for s in sorted(run.suggestions, key=lambda s: s["user"]):
        top = list(zip(s["items"], s["predicted"], s["gain"], strict=True))
        rows += _suggestion_rows(FEDERATED, s["user"], s["user-mean"], top, run.centres)
    return pd.DataFrame(rows)


def run_comparison(cfg: dict, out_dir: str | Path | None, progress: bool = True) -> dict:
    """Load data, run both models, write the results folder (if ``out_dir``), return the summary."""
    seed = int(cfg["seed"])
    devices = load_all_local_data(cfg["data"], seed)  # validates every log before anything is written
    writer = ResultsWriter(out_dir) if out_dir is not None else None
    if writer:
        writer.config(cfg)
    central = run_centralised(cfg, devices, progress)
    fed = run_federated_simulation(cfg)
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
    users = list(range(min(int(cfg["suggest_users"]), len(devices))))
    sugg = pd.concat(
        [
            suggestions_table(central.model, devices, central.centres, users, int(cfg["n_suggestions"]), CENTRAL),
            federated_suggestions(fed),
        ]
    )
    result = {
        "summary": summary,
        "metrics": metrics,
        "extra": extra,
        "suggestions": sugg,
        "central": central,
        "federated": fed,
    }
    if writer:
        writer.table("metrics", metrics)
        writer.table("summary", summary)
        writer.table("rounds_federated", pd.DataFrame(fed.rounds))
        writer.table("suggestions", sugg)
        if len(personal):
            writer.table("personalisation", personal)
        writer.json("comparison", extra)
        writer.figure("mse_centralised", mse_curves(metrics, [CENTRAL], "Centralised (fastai-style)"))
        writer.figure("mse_federated", mse_curves(metrics, [FEDERATED], "Federated (Flower FedAvg)"))
        writer.figure("mse_both", mse_curves(metrics, title="Centralised vs federated"))
    return result


def write_federated_only(run: FederatedRun, cfg: dict, out: str | Path | None = None) -> Path:
    """Results of a federated-only run (``flwr run .``, the privacy experiments): metrics, summary, figure."""
    out = Path(out) if out is not None else Path(cfg["results_root"]) / time.strftime("%Y-%m-%d_%H-%M-%S")
    writer = ResultsWriter(out)
    writer.config(cfg)
    metrics = metrics_table(FEDERATED, run.rounds)
    writer.table("metrics", metrics)
    writer.table("rounds_federated", pd.DataFrame(run.rounds))
    writer.table("summary", pd.DataFrame([federated_summary_row(run)]))
    personal = personalisation_table(run)
    if len(personal):
        writer.table("personalisation", personal)
    writer.figure(
        "mse_federated",
        mse_curves(metrics, [FEDERATED], f"Federated (Flower FedAvg), {run.privacy.get('mechanism', 'none')}"),
    )
    print(f"results: {out}", flush=True)
    return out
