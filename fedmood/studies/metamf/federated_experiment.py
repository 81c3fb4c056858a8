"""Federated MetaMF in a Flower simulation: one SuperNode per user (``run_simulation``).

:func:`run_federated_metamf` runs the rounds (and the devices' evaluation); :func:`run`
is the Hydra experiment ``experiments/metamf_federated.py``: the first ``users`` users of a data set
(or of a ratings file of one's own), each revealing ``ceil(β n_u)`` training ratings, ``num_rounds``
rounds, then a results folder with the per-round history (train MSE, validation MAE, bytes per
client) and the test MAE/MSE for all users and the Low/Med/High groups, evaluated on the devices.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from flwr.serverapp import Grid, ServerApp

from fedmood.federated.grid import wait_for_nodes
from fedmood.federated.simulation import simulate
from fedmood.results import ResultsWriter
from fedmood.studies.metamf.client_app import build_client_app
from fedmood.studies.metamf.data import SPLITS, Ratings, RatingSplits, first_users, reveal, user_groups
from fedmood.studies.metamf.experiment import data_label, group_rows, load_data
from fedmood.studies.metamf.generator_loop import MetaGeneratorStrategy
from fedmood.studies.metamf.model import MetaMF
from fedmood.studies.metamf.train import MetaTrainConfig, make_optimizer


def user_rows(rows: Ratings, n_users: int) -> list[Ratings]:
    """Each user's rows (the data of each device)."""
    starts = np.searchsorted(rows.users, np.arange(n_users + 1))
    return [rows.take(np.arange(starts[u], starts[u + 1])) for u in range(n_users)]


def per_user_arrays(per_user: dict[int, tuple[float, float, int]], n_users: int) -> tuple[np.ndarray, ...]:
    """The devices' evaluation sums as (abs_sum, sq_sum, counts) arrays indexed by user."""
    out = np.zeros((3, n_users))
    for user, sums in per_user.items():
        out[:, user] = sums
    return out[0], out[1], out[2].astype(np.int64)


def run_federated_metamf(
    cfg: dict,
    data: RatingSplits,
    rounds: int,
    clients_per_round: int | None = None,
    eval_every: int = 0,
    wrap_grid=None,
    client_mods: list | None = None,
) -> tuple[list[dict], MetaMF, tuple[np.ndarray, ...] | None]:
    """Train MetaMF federatedly on ``data.train`` (one SuperNode per user) for ``rounds`` rounds.

    Every ``eval_every`` rounds (and after the last) the devices evaluate on their validation rows;
    after the last round, on their test rows. Returns the per-round history, the server's model and
    the test sums per user (abs, squared, count; ``None`` without test rows). ``wrap_grid`` wraps
    the server's grid and ``client_mods`` every device message (the threat study's recorders);
    ``cfg["defence"]`` turns on the devices' rating-level DP.
    """
    logging.getLogger("flwr").setLevel("WARNING")
    tcfg = MetaTrainConfig(**cfg["training"], seed=int(cfg["seed"]))
    torch.manual_seed(int(cfg["seed"]))
    n_users = data.n_users
    model = MetaMF(n_users, data.n_items, meta=cfg.get("variant", "metamf") == "metamf")
    model.user_embedding.weight.requires_grad_(False)  # embeddings live on the devices
    strategy = MetaGeneratorStrategy(
        model,
        make_optimizer(model, tcfg).optimizers,
        tcfg.grad_clip,
        tcfg.weight_decay,
        clients_per_round,
        seed=int(cfg["seed"]),
    )
    device_cfg = {
        "n_users": n_users,
        "seed": int(cfg["seed"]),
        "training": dict(cfg["training"]),
        "defence": dict(cfg.get("defence") or {}),
    }
    rows = {split: user_rows(data.split(split), n_users) for split in SPLITS}
    history: list[dict] = []
    test: list[tuple[np.ndarray, ...]] = []
    server = ServerApp()

    @server.main()
    def _main(grid: Grid, context) -> None:
        grid = wrap_grid(grid) if wrap_grid is not None else grid
        nodes = wait_for_nodes(grid, n_users, 600.0)
        for rnd in range(1, rounds + 1):
            h = strategy.round(grid, nodes, rnd)
            line = (
                f"[federated metamf] round {rnd}/{rounds} train_mse={h['train_mse']:.4f} "
                f"down={h['bytes_down_per_client']:.0f} B up={h['bytes_up_per_client']:.0f} B per client"
            )
            if len(data.valid) and (rnd == rounds or (eval_every and rnd % eval_every == 0)):
                val = strategy.evaluate(grid, nodes, rnd, "valid")
                h.update(
                    val_mae=val["mae"], val_mse=val["mse"], eval_bytes_down_per_client=val["bytes_down_per_client"]
                )
                line += f" val_mae={val['mae']:.4f}"
            history.append(h)
            print(line, flush=True)
        if len(data.test):
            test.append(per_user_arrays(strategy.evaluate(grid, nodes, rounds, "test")["per_user"], n_users))

    client = build_client_app(
        lambda _ctx: device_cfg, lambda _cfg, partition, split: rows[split][partition], client_mods
    )
    simulate(server, client, n_users)
    if len(history) != rounds:
        raise RuntimeError(f"federated MetaMF ended after {len(history)} of {rounds} rounds (see the Flower log)")
    return history, model, (test[0] if test else None)


def defence_epsilon(cfg: dict, rounds: int) -> float:
    """The devices' rating-level ε (δ = 1e-5) under ``cfg["defence"]``, nan without it: one Gaussian
    release per round taken part in (at most ``rounds``; no credit taken for sampling)."""
    from fedmood.privacy.accounting import user_level_epsilon

    defence = cfg.get("defence") or {}
    if not defence.get("enabled"):
        return float("nan")
    return user_level_epsilon(float(defence["noise_multiplier"]), 1.0, rounds, 1e-5)


def run(cfg: dict, out_dir: str | Path) -> pd.DataFrame:
    """The federated MetaMF experiment (``conf/metamf_federated.yaml``): train, evaluate on the devices, write."""
    torch.set_num_threads(int(cfg.get("threads", 2)))
    data = load_data(cfg)
    if cfg.get("users"):
        data = first_users(data, int(cfg["users"]))
    beta, seed = float(cfg["beta"]), int(cfg["seed"])
    writer = ResultsWriter(out_dir)
    writer.config(cfg)
    data = RatingSplits(
        data.name, data.n_users, data.n_items, reveal(data.train, data.n_users, beta, seed), data.valid, data.test
    )
    history, _model, test = run_federated_metamf(
        cfg, data, int(cfg["num_rounds"]), cfg.get("clients_per_round"), int(cfg.get("eval_every", 0))
    )
    writer.table("history", pd.DataFrame(history))
    if test is None:
        raise ValueError(f"{cfg.get('ratings_path') or cfg['dataset']}: the selected users have no test ratings")
    table = pd.DataFrame(group_rows(*test, user_groups(data, float(cfg.get("group_frac", 0.05)))))
    last = history[-1]
    for key, value in {
        "dataset": data_label(cfg),
        "model": cfg["variant"],
        "beta": beta,
        "users_total": data.n_users,
        "rounds": len(history),
        "train_ratings": len(data.train),
        "bytes_down_per_client_per_round": float(np.mean([h["bytes_down_per_client"] for h in history])),
        "bytes_up_per_client_per_round": float(np.mean([h["bytes_up_per_client"] for h in history])),
        "sec_per_round": float(np.mean([h["seconds"] for h in history])),
        "defence_epsilon": defence_epsilon(cfg, len(history)),
        "final_val_mae": last.get("val_mae", float("nan")),
    }.items():
        table[key] = value
    writer.table("summary", table)
    return table
