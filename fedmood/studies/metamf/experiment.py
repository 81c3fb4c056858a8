"""One MetaMF / NoMetaMF run under a privacy budget β: train, select on validation, test per user group.

Checkpoints live under ``<results_root>/metamf/checkpoints/`` named by (data, model, β, seed and a
hash of the data's fingerprint), so
re-running the same configuration resumes a killed run instead of starting over; a finished run
removes them unless ``keep_checkpoints`` is set.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf

from fedmood.data.fingerprint import data_fingerprint
from fedmood.data.ratings import check_rating_range
from fedmood.errors import Problems, require_number, require_path, require_range
from fedmood.results import ResultsWriter
from fedmood.studies.metamf.data import RatingSplits, load_metamf_dataset, load_ratings_file, reveal, user_groups
from fedmood.studies.metamf.model import MetaMF
from fedmood.studies.metamf.train import MetaTrainConfig, best_checkpoint_path, fit, per_user_errors
from fedmood.training import torch_device


def load_data(cfg: dict) -> RatingSplits:
    """The configured data: a user's own ratings file (its ratings within ``rating_range``), or a published split."""
    if cfg.get("ratings_path"):
        data = load_ratings_file(cfg["ratings_path"], int(cfg["seed"]))
        ratings = np.concatenate([data.train.ratings, data.valid.ratings, data.test.ratings])
        check_rating_range(ratings, rating_range(cfg), cfg["ratings_path"], "rating_range")
        return data
    root = Path(cfg["data_path"])
    if not root.is_dir():
        raise FileNotFoundError(
            f"MetaMF data folder {root} not found (see ../shared/data/README.md); set data_path or ratings_path"
        )
    return load_metamf_dataset(root, cfg["dataset"])


def rating_range(cfg: dict) -> tuple[float, float]:
    """The ratings a user's own file may hold (``rating_range``; [0, 10] if unset)."""
    return tuple(cfg.get("rating_range") or (0.0, 10.0))


def data_label(cfg: dict) -> str:
    """The name a run's rows carry: the ratings file's stem, or the published data set's name."""
    return label_of(cfg["dataset"], cfg.get("ratings_path"))


def label_of(dataset: str, ratings_path: str | None) -> str:
    """The data's name: a user's own file's stem, else the published split's (Hydra's ``data_label``)."""
    return Path(ratings_path).stem if ratings_path else dataset


OmegaConf.register_new_resolver("data_label", label_of, replace=True)  # names run folders in conf/metamf.yaml


def run_identity(cfg: dict) -> dict:
    """What a resume checkpoint must share with this run: the data (fingerprinted) and the settings."""
    source = cfg["ratings_path"] or Path(cfg["data_path"])
    files = [source] if cfg["ratings_path"] else sorted(Path(source).glob(f"{cfg['dataset']}.*"))
    return {
        "data": data_label(cfg),
        "data_fingerprint": [data_fingerprint(f) for f in files],
        "variant": cfg["variant"],
        "beta": float(cfg["beta"]),
        "seed": int(cfg["seed"]),
    }


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


def check_config(cfg: dict) -> None:
    """Every setting of a MetaMF run, before any data is read (one InputError with all problems)."""
    p = Problems()
    require_number(p, "beta", cfg.get("beta"), low=0, high=1, low_open=True)
    require_number(p, "seed", cfg.get("seed"), low=0, integer=True)
    require_number(p, "threads", cfg.get("threads", 1), low=1, integer=True)
    if cfg.get("variant") not in ("metamf", "nometamf"):
        p.config("variant", f"must be metamf or nometamf, got {cfg.get('variant')!r}")
    if str(cfg.get("device", "auto")) not in ("auto", "cpu", "cuda", "mps"):
        p.config("device", f"must be auto, cpu, cuda or mps, got {cfg.get('device')!r}")
    t = cfg.get("training") or {}
    require_number(p, "training.lr", t.get("lr"), low=0, low_open=True)
    require_number(p, "training.weight_decay", t.get("weight_decay"), low=0)
    require_number(p, "training.batch_size", t.get("batch_size"), low=1, integer=True)
    require_number(p, "training.grad_clip", t.get("grad_clip"), low=0, low_open=True)
    require_number(p, "training.max_epochs", t.get("max_epochs"), low=1, integer=True)
    require_number(p, "training.patience", t.get("patience"), low=0, integer=True)
    require_range(p, "rating_range", rating_range(cfg))
    path = cfg.get("ratings_path")
    if path:
        require_path(p, "config key ratings_path", path, "file")
    elif not Path(cfg["data_path"]).is_dir():
        p.config(
            "data_path",
            f"MetaMF data folder {cfg['data_path']} not found (see ../shared/data/README.md); set it or ratings_path",
        )
    elif not list(Path(cfg["data_path"]).glob(f"{cfg.get('dataset')}.userlist*")):
        found = sorted({f.name.split(".")[0] for f in Path(cfg["data_path"]).glob("*.userlist*")})
        p.config("dataset", f"no {cfg.get('dataset')}.* split in {cfg['data_path']} (there: {', '.join(found)})")
    p.raise_if_any()


def run(cfg: dict, out_dir: str | Path, progress: bool = True) -> pd.DataFrame:
    """Train the configured model at the configured β and write the run's results folder."""
    check_config(cfg)
    torch.set_num_threads(int(cfg.get("threads", 2)))
    device = torch_device(str(cfg.get("device", "auto")))
    data = load_data(cfg)  # validated before anything is written
    beta, seed = float(cfg["beta"]), int(cfg["seed"])
    writer = ResultsWriter(out_dir)
    writer.config(cfg)
    train = reveal(data.train, data.n_users, beta, seed)
    torch.manual_seed(seed)
    model = MetaMF(data.n_users, data.n_items, meta=cfg["variant"] == "metamf").to(device)
    label, identity = data_label(cfg), run_identity(cfg)
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
    name = f"{label}-{cfg['variant']}-beta{beta:g}-seed{seed}-{key}.pt"  # other data: another checkpoint
    ckpt = Path(cfg["results_root"]) / "metamf" / "checkpoints" / name
    save = cfg.get("checkpoints", True)
    train_cfg = MetaTrainConfig(**cfg["training"], seed=seed)
    result = fit(model, train, data.valid, train_cfg, ckpt if save else None, progress, identity=identity)
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
