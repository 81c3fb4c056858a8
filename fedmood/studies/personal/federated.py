"""The Shared model trained federatedly: FedAvg on Flower, one client per training user.

1. Standardisation: every client answers a ``query`` with the count, sum and sum of squares of
   its features; the server turns them into the global mean and standard deviation (the same
   statistics a centralised Shared model computes, without any window leaving a device).
2. FedAvg (Flower's strategy, weighted by windows): each round every client trains the global MLP
   for ``local_epochs`` on all its windows (:func:`fedmood.studies.personal.train.fit`, seeded by round and
   client) and returns it.
The held-out user then personalises the result on their own device (:func:`personalise`).
"""

from __future__ import annotations

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from fedmood.federated.grid import query_all
from fedmood.federated.study import NODE_TIMEOUT, run_fedavg_study
from fedmood.keys import NUM_EXAMPLES
from fedmood.seeding import derived_seed
from fedmood.studies.personal.model import FeatureMLP
from fedmood.studies.personal.train import FitConfig, fit


def client_seed(seed: int, server_round: int, client: int) -> int:
    """The seed of one client's local training in one round (the centralised check recomputes it)."""
    return derived_seed(seed, server_round, client)


def feature_statistics(x: np.ndarray) -> dict[str, np.ndarray]:
    """What a device reveals for the standardisation: its window count, feature sums and squared sums."""
    x64 = x.astype(np.float64)
    return {"n": np.array([len(x)], np.float64), "sum": x64.sum(axis=0), "sumsq": (x64**2).sum(axis=0)}


def pooled_standardisation(stats: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Global mean and (population) standard deviation from the devices' statistics."""
    n = sum(float(s["n"][0]) for s in stats)
    mean = sum(s["sum"] for s in stats) / n
    var = np.maximum(sum(s["sumsq"] for s in stats) / n - mean**2, 0.0)
    return mean, np.sqrt(var)


def train_federated_shared(
    clients: list[tuple[np.ndarray, np.ndarray]],
    n_classes: int,
    hidden: int,
    cfg: FitConfig,
    rounds: int,
    seed: int = 0,
    progress: bool = False,
) -> tuple[FeatureMLP, list[dict]]:
    """FedAvg over ``clients`` (features, labels) per training user; the model and a row per round."""
    n_features = clients[0][0].shape[1]
    torch.manual_seed(seed)
    model = FeatureMLP(n_features, n_classes, hidden)
    client = ClientApp()

    @client.query()
    def _stats(msg: Message, context: Context) -> Message:
        x, _ = clients[int(context.node_config["partition-id"])]
        stats = feature_statistics(x)
        return Message(RecordDict({"stats": ArrayRecord({k: Array(v) for k, v in stats.items()})}), reply_to=msg)

    @client.train()
    def _train(msg: Message, context: Context) -> Message:
        pid = int(context.node_config["partition-id"])
        x, y = clients[pid]
        local = FeatureMLP(n_features, n_classes, hidden)
        local.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        fit(local, x, y, cfg, client_seed(seed, int(msg.content["config"]["server-round"]), pid))
        metrics = MetricRecord({NUM_EXAMPLES: len(y)})
        return Message(RecordDict({"arrays": ArrayRecord(local.state_dict()), "metrics": metrics}), reply_to=msg)

    def standardised_start(grid: Grid, nodes: list[int]) -> ArrayRecord:
        replies = query_all(grid, nodes, ConfigRecord({"stage": "feature-statistics"}), NODE_TIMEOUT)
        model.set_standardisation(
            *pooled_standardisation([{k: v.numpy() for k, v in r["stats"].items()} for r in replies])
        )
        return ArrayRecord(model.state_dict())

    strategy = FedAvg(
        fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=len(clients), min_available_nodes=len(clients)
    )
    final, history = run_fedavg_study(
        "federated Shared", client, strategy, standardised_start, rounds, len(clients),
        progress_line=(lambda r: f"[personal] federated Shared round {r['round']}/{rounds} ({r['seconds']:.1f}s)")
        if progress else None,
    )  # fmt: skip
    model.load_state_dict(final.to_torch_state_dict())
    return model, history
