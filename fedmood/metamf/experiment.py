"""One MetaMF / NoMetaMF run under a privacy budget β: train, select on validation, test per user group.

Checkpoints live under ``<results_root>/metamf/checkpoints/`` named by (data, model, β, seed), so
re-running the same configuration resumes a killed run instead of starting over; a finished run
removes them unless ``keep_checkpoints`` is set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fedmood.data.metamf import RatingSplits, load_metamf_dataset, load_ratings_file, reveal, user_groups
from fedmood.metamf.model import MetaMF
from fedmood.metamf.train import MetaTrainConfig, best_checkpoint_path, fit, per_user_errors
from fedmood.results import ResultsWriter
from fedmood.training import resolve_device


def load_data(cfg: dict) -> RatingSplits:
    """The configured data: a user's own ratings file, or a published split."""
    if cfg.get("ratings_path"):
        return load_ratings_file(cfg["ratings_path"], int(cfg["seed"]))
    root = Path(cfg["data_root"])
    if not root.is_dir():
        raise FileNotFoundError(
            f"MetaMF data folder {root} not found (see ../shared/data/README.md); set data_root or ratings_path"
        )
    return load_metamf_dataset(root, cfg["dataset"])


def data_label(cfg: dict) -> str:
    """The name a run's rows carry: the ratings file's stem, or the published data set's name."""
    return Path(cfg["ratings_path"]).stem if cfg.get("ratings_path") else cfg["dataset"]


def group_rows(
    abs_sum: np.ndarray, sq_sum: np.ndarray, counts: np.ndarray, groups: dict[str, np.ndarray]
) -> list[dict]:
    """MAE and MSE for all users and for each group, from per-user error sums (over the group's ratings)."""
    rows = []
    for name, users in {"All": np.arange(len(counts)), **groups}.items():
        n = counts[users].sum()
        rows.append(
            {
                "group": name,
                "mae": float(abs_sum[users].sum() / max(n, 1)),
                "mse": float(sq_sum[users].sum() / max(n, 1)),
                "users": len(users),
                "ratings": int(n),
            }
        )
    return rows


def group_table(model: MetaMF, data: RatingSplits, groups: dict[str, np.ndarray]) -> list[dict]:
    """Test MAE and MSE for all users and for each group, in one prediction pass."""
    return group_rows(*per_user_errors(model, data.test, data.n_users), groups)


def run(cfg: dict, out_dir: str | Path, progress: bool = True) -> pd.DataFrame:
    """Train the configured model at the configured β and write the run's results folder."""
    torch.set_num_threads(int(cfg.get("threads", 2)))
    device = resolve_device(str(cfg.get("device", "auto")))
    data = load_data(cfg)  # validated before anything is written
    beta, seed = float(cfg["beta"]), int(cfg["seed"])
    writer = ResultsWriter(out_dir)
    writer.config(cfg)
    train = reveal(data.train, data.n_users, beta, seed)
    torch.manual_seed(seed)
    model = MetaMF(data.n_users, data.n_items, meta=cfg["variant"] == "metamf").to(device)
    label = data_label(cfg)
    ckpt = Path(cfg["results_root"]) / "metamf" / "checkpoints" / f"{label}-{cfg['variant']}-beta{beta:g}-seed{seed}.pt"
    save = cfg.get("checkpoints", True)
    result = fit(
        model, train, data.valid, MetaTrainConfig(**cfg["training"], seed=seed), ckpt if save else None, progress
    )
    writer.table("history", pd.DataFrame(result.history))
    table = pd.DataFrame(group_table(model, data, user_groups(data, float(cfg.get("group_frac", 0.05)))))
    table.insert(0, "beta", beta)
    table.insert(0, "model", cfg["variant"])
    table.insert(0, "dataset", label)
    table["best_epoch"], table["train_ratings"] = result.best_epoch, len(train)
    table["epochs_run"], table["device"] = len(result.history), device.type
    writer.table("summary", table)
    if not cfg.get("keep_checkpoints", False):  # a finished run needs no resume point (ciao's is ~7 GB)
        for path in (ckpt, best_checkpoint_path(ckpt)):
            path.unlink(missing_ok=True)
    return table
