"""The mood recommender's ServerApp: federated clustering, then FedAvg of the item parameters.

1. Federated k-modes (``query`` messages): clients send per-slot histograms, the server builds the
   starting centres; then rounds of per-cluster activity counts until the centres stop moving.
2. FedAvg (weighted by examples) of item factors and biases; a round is one local epoch per client.
   Validation MSE is computed on each client's own validation rows and aggregated by examples.
The run's history is handed to a callback (the Hydra experiment) or, under ``flwr run``, written to
a results folder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid, ServerApp

from fedmood.clustering import initial_centres, modes_from_counts
from fedmood.federated.run_config import config_from_context
from fedmood.models import GLOBAL_KEYS, EmbeddingDotBias
from strategies.deferred_eval import (
    CLIENT_SECONDS,
    FIT_SECONDS,
    VAL_N,
    VAL_SSE,
    DeferredEvalFedAvg,
    validation_history,
)
from strategies.strict import FailLoudly, check_replies

log = logging.getLogger("fedmood")


@dataclass
class FederatedRun:
    """What the ServerApp learnt and measured."""

    rounds: list[dict] = field(default_factory=list)  # round, train_mse, val_mse, seconds, ...
    centres: np.ndarray | None = None  # encoded cluster centres (None for ratings tables)
    cluster_iterations: int = 0
    cluster_seconds: float = 0.0
    item_state: dict[str, np.ndarray] = field(default_factory=dict)  # final global parameters
    suggestions: list[dict] = field(default_factory=list)  # from the devices that opted in


class MoodFedAvg(FailLoudly, DeferredEvalFedAvg):
    """FedAvg that fails loudly, evaluates on the next round's message, and reports progress."""

    def __init__(self, on_round: Callable[[int, MetricRecord | None], None], **kwargs) -> None:
        super().__init__(**kwargs)
        self.on_round = on_round

    def aggregate_train(self, server_round, replies):
        arrays, metrics = super().aggregate_train(server_round, replies)
        self.on_round(server_round, metrics)
        return arrays, metrics


def _query_all(
    grid: Grid, node_ids: list[int], config: ConfigRecord, timeout: float, arrays: ArrayRecord | None = None
) -> list[RecordDict]:
    content = {"config": config} | ({"arrays": arrays} if arrays is not None else {})
    msgs = [Message(RecordDict(content), dst_node_id=n, message_type="query") for n in node_ids]
    replies = check_replies("query", 0, len(msgs), grid.send_and_receive(msgs, timeout=timeout))
    return [r.content for r in replies]


def _centres_config(centres: np.ndarray) -> dict:
    return {"centres": [int(v) for v in centres.ravel()], "n-slots": int(centres.shape[1])}


def federated_clustering(
    grid: Grid, node_ids: list[int], k: int, max_iter: int, seed: int, timeout: float
) -> tuple[np.ndarray, int]:
    """Federated k-modes over the nodes' fragments; returns ``(centres, iterations)``."""
    stats = _query_all(grid, node_ids, ConfigRecord({"stage": "histograms"}), timeout)
    marg = sum(r["stats"]["marginals"].numpy() for r in stats)
    dominant = sum(r["stats"]["dominant"].numpy() for r in stats)
    centres = initial_centres(marg, dominant, k, seed)
    for it in range(1, max_iter + 1):
        cfg = ConfigRecord({"stage": "counts", **_centres_config(centres)})
        counts = sum(r["stats"]["counts"].numpy() for r in _query_all(grid, node_ids, cfg, timeout))
        new = modes_from_counts(counts, centres)
        log.info("clustering iteration %d: %d centres moved", it, int((new != centres).any(axis=1).sum()))
        if np.array_equal(new, centres):
            return centres, it
        centres = new
    return centres, max_iter


def initial_item_arrays(cfg: dict, n_items: int) -> ArrayRecord:
    """The server's seeded initial item factors and biases."""
    torch.manual_seed(int(cfg["seed"]))
    model = EmbeddingDotBias(1, n_items, int(cfg["model"]["n_factors"]), tuple(cfg["model"]["y_range"]))
    state = model.state_dict()
    return ArrayRecord({k: state[k] for k in GLOBAL_KEYS})


def wait_for_nodes(grid: Grid, n: int, timeout: float) -> list[int]:
    """Node ids once ``n`` nodes are connected."""
    end = time.time() + timeout
    while True:
        ids = sorted(grid.get_node_ids())
        if len(ids) >= n:
            return ids
        if time.time() > end:
            raise TimeoutError(f"only {len(ids)} of {n} nodes connected after {timeout:.0f} s")
        time.sleep(0.2)


def run_federated(grid: Grid, cfg: dict) -> FederatedRun:
    """The whole federated job on ``grid`` (clustering, then FedAvg training)."""
    from fedmood.data.local import data_shape

    fed = cfg["federation"]
    if hasattr(grid, "pull_interval"):  # simulation's in-memory grid polls for replies
        grid.pull_interval = float(fed["grid_pull_interval"])
    n_users, n_items = data_shape(cfg["data"], int(cfg["seed"]))
    timeout = float(fed["round_timeout"])
    node_ids = wait_for_nodes(grid, n_users, timeout)
    run = FederatedRun()
    train_config: dict = {}
    if cfg["data"]["source"] != "ratings":
        t0 = time.perf_counter()
        run.centres, run.cluster_iterations = federated_clustering(
            grid, node_ids, n_items, int(cfg["data"]["cluster_max_iter"]), int(cfg["seed"]), timeout
        )
        run.cluster_seconds = time.perf_counter() - t0
        train_config = _centres_config(run.centres)
    num_rounds = int(fed["num_rounds"])
    stamps: list[float] = []
    train_hist: dict[int, MetricRecord] = {}

    def on_round(rnd: int, metrics: MetricRecord | None) -> None:
        train_hist[rnd] = metrics
        if metrics is not None:
            val = metrics.get(VAL_SSE, float("nan")) / max(metrics.get(VAL_N, 0.0), 1.0)
            print(
                f"[federated] round {rnd}/{num_rounds} train_mse={metrics['train_mse']:.4f}"
                + (f" val_mse(round {rnd - 1})={val:.4f}" if rnd > 1 else ""),
                flush=True,
            )

    def timestamp(rnd: int, arrays: ArrayRecord) -> None:
        stamps.append(time.perf_counter())

    strategy = MoodFedAvg(
        on_round,
        num_rounds=num_rounds,
        fraction_train=1.0,
        fraction_evaluate=1.0,
        min_train_nodes=n_users,
        min_evaluate_nodes=n_users,
        min_available_nodes=n_users,
    )
    result = strategy.start(
        grid=grid,
        initial_arrays=initial_item_arrays(cfg, n_items),
        num_rounds=num_rounds,
        timeout=timeout,
        train_config=ConfigRecord(train_config),
        evaluate_config=ConfigRecord(train_config),
        evaluate_fn=timestamp,
    )
    val = validation_history(result, num_rounds)
    for rnd in range(1, num_rounds + 1):
        m = train_hist.get(rnd) or {}
        run.rounds.append(
            {
                "round": rnd,
                "train_mse": float(m.get("train_mse", np.nan)),
                "val_mse": val.get(rnd, np.nan),
                "seconds": stamps[rnd] - stamps[rnd - 1],
                "client_seconds": float(m.get(CLIENT_SECONDS, np.nan)),
                "fit_seconds": float(m.get(FIT_SECONDS, np.nan)),
            }
        )
    run.item_state = {k: v.numpy() for k, v in result.arrays.items()}
    demo_users = list(range(min(int(cfg["suggest_users"]), n_users)))
    if demo_users:
        query = ConfigRecord({"stage": "suggest", "users": demo_users, "n": int(cfg["n_suggestions"]), **train_config})
        for reply in _query_all(grid, node_ids, query, timeout, arrays=result.arrays):
            if "suggestions" in reply:
                run.suggestions.append(dict(reply["suggestions"]))
    return run


def build_server_app(cfg_fn: Callable[[Context], dict], on_done: Callable[[FederatedRun, dict], None]) -> ServerApp:
    """A ServerApp that runs :func:`run_federated` and hands the outcome to ``on_done``."""
    app = ServerApp()

    @app.main()
    def _main(grid: Grid, context: Context) -> None:
        cfg = cfg_fn(context)
        on_done(run_federated(grid, cfg), cfg)

    return app


def _write_flwr_run_results(run: FederatedRun, cfg: dict) -> None:
    from fedmood.pipeline import write_federated_only

    write_federated_only(run, cfg)


#: For ``flwr run .``: results go to ``results_root`` from the run config.
app = build_server_app(config_from_context, _write_flwr_run_results)
