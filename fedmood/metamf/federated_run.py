"""Federated MetaMF in a Flower simulation: one SuperNode per user (``run_simulation``)."""

from __future__ import annotations

import logging

import numpy as np
import torch
from flwr.serverapp import Grid, ServerApp

from fedmood.data.metamf import Ratings
from fedmood.federated.server_app import wait_for_nodes
from fedmood.metamf.client_app import build_client_app
from fedmood.metamf.model import MetaMF
from fedmood.metamf.train import MetaTrainConfig, make_optimizer
from strategies.metamf_generator import MetaGeneratorStrategy


def user_rows(train: Ratings, n_users: int) -> list[Ratings]:
    """Each user's rows (the data of each device)."""
    starts = np.searchsorted(train.users, np.arange(n_users + 1))
    return [train.take(np.arange(starts[u], starts[u + 1])) for u in range(n_users)]


def run_federated_metamf(
    cfg: dict, n_users: int, n_items: int, train: Ratings, rounds: int, clients_per_round: int | None = None
) -> tuple[list[dict], MetaMF]:
    """Train MetaMF federatedly for ``rounds`` rounds; returns the per-round history and the server's model."""
    from flwr.simulation import run_simulation

    logging.getLogger("flwr").setLevel("WARNING")
    tcfg = MetaTrainConfig(**cfg["training"], seed=int(cfg["seed"]))
    torch.manual_seed(int(cfg["seed"]))
    model = MetaMF(n_users, n_items, meta=cfg.get("variant", "metamf") == "metamf")
    model.user_embedding.weight.requires_grad_(False)  # embeddings live on the devices
    strategy = MetaGeneratorStrategy(
        model,
        make_optimizer(model, tcfg).optimizers,
        tcfg.grad_clip,
        tcfg.weight_decay,
        clients_per_round,
        seed=int(cfg["seed"]),
    )
    device_cfg = {"n_users": n_users, "seed": int(cfg["seed"]), "training": dict(cfg["training"])}
    rows = user_rows(train, n_users)
    history: list[dict] = []
    server = ServerApp()

    @server.main()
    def _main(grid: Grid, context) -> None:
        nodes = wait_for_nodes(grid, n_users, 600.0)
        for rnd in range(1, rounds + 1):
            history.append(strategy.round(grid, nodes, rnd))
            h = history[-1]
            print(
                f"[federated metamf] round {rnd}/{rounds} train_mse={h['train_mse']:.4f} "
                f"down={h['bytes_down_per_client']:.0f} B up={h['bytes_up_per_client']:.0f} B per client",
                flush=True,
            )

    client = build_client_app(lambda _ctx: device_cfg, lambda _cfg, partition: rows[partition])
    run_simulation(
        server_app=server,
        client_app=client,
        num_supernodes=n_users,
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"num_cpus": 2, "log_to_driver": False, "logging_level": "ERROR"},
        },
        verbose_logging=False,
    )
    if len(history) != rounds:
        raise RuntimeError(f"federated MetaMF ended after {len(history)} of {rounds} rounds (see the Flower log)")
    return history, model
