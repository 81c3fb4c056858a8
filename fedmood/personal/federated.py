"""The Shared model trained federatedly: FedAvg on Flower, one client per training user.

1. Standardisation: every client answers a ``query`` with the count, sum and sum of squares of
   its features; the server turns them into the global mean and standard deviation (the same
   statistics a centralised Shared model computes, without any window leaving a device).
2. FedAvg (Flower's strategy, weighted by windows): each round every client trains the global MLP
   for ``local_epochs`` on all its windows (:func:`fedmood.personal.train.fit`, seeded by round and
   client) and returns it.
The held-out user then personalises the result on their own device (:func:`personalise`).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from fedmood.federated.server_app import query_all, wait_for_nodes
from fedmood.federated.simulation import simulate
from fedmood.keys import NUM_EXAMPLES
from fedmood.personal.models import FeatureMLP
from fedmood.personal.train import FitConfig, fit
from strategies.strict import FailLoudly


def client_seed(seed: int, server_round: int, client: int) -> int:
    """The seed of one client's local training in one round (the centralised check recomputes it)."""
    return seed * 1_000_003 + server_round * 1_009 + client


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
    logging.getLogger("flwr").setLevel("WARNING")
    n_features = clients[0][0].shape[1]
    torch.manual_seed(seed)
    model = FeatureMLP(n_features, n_classes, hidden)
    history: list[dict] = []
    result: list[ArrayRecord] = []
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

    server = ServerApp()

    @server.main()
    def _main(grid: Grid, context: Context) -> None:
        nodes = wait_for_nodes(grid, len(clients), 600.0)
        replies = query_all(grid, nodes, ConfigRecord({"stage": "feature-statistics"}), 600.0)
        model.set_standardisation(
            *pooled_standardisation([{k: v.numpy() for k, v in r["stats"].items()} for r in replies])
        )
        clock = [time.perf_counter()]

        def on_aggregate(rnd: int, _arrays, _metrics, n: int) -> None:
            now = time.perf_counter()
            history.append({"round": rnd, "clients": n, "seconds": now - clock[0]})
            clock[0] = now
            if progress:
                print(f"[personal] federated Shared round {rnd}/{rounds} ({history[-1]['seconds']:.1f}s)", flush=True)

        strategy = FedAvg(
            fraction_train=1.0,
            fraction_evaluate=0.0,
            min_train_nodes=len(clients),
            min_available_nodes=len(clients),
        )
        out = FailLoudly(strategy, on_aggregate=on_aggregate).start(
            grid=grid, initial_arrays=ArrayRecord(model.state_dict()), num_rounds=rounds, train_config=ConfigRecord({})
        )
        result.append(out.arrays)

    simulate(server, client, len(clients))
    if not result or len(history) != rounds:
        raise RuntimeError(f"federated Shared ended after {len(history)} of {rounds} rounds (see the Flower log)")
    model.load_state_dict(result[0].to_torch_state_dict())
    return model, history
