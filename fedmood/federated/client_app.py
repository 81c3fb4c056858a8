"""The mood recommender's ClientApp: one per user, holding only that user's data.

What leaves the device: item factors and item biases after a local epoch (``train``), aggregate
metrics, and for the federated clustering per-cluster activity counts and histograms (``query``).
The user's own embedding and bias never leave it: they live in ``context.state`` between rounds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedmood.clustering import cluster_counts, slot_histograms
from fedmood.data.fragments import N_CODES
from fedmood.data.local import LocalData, load_local_data
from fedmood.federated.run_config import config_from_context
from fedmood.models import GLOBAL_KEYS, LOCAL_KEYS, EmbeddingDotBias
from fedmood.suggest import top_items
from fedmood.training import (
    Batches,
    TrainConfig,
    evaluate_mse,
    make_optimizer,
    make_scheduler,
    steps_per_epoch,
    train_epoch,
)
from strategies.deferred_eval import CLIENT_SECONDS, FIT_SECONDS, VAL_N, VAL_SSE

LOCAL_STATE_KEY = "user-state"  # context.state record holding the user's own parameters
ConfigFn = Callable[[Context], dict]


@lru_cache(maxsize=64)
def _cached_local_data(data_json: str, user: int, seed: int) -> LocalData:
    return load_local_data(json.loads(data_json), user, seed)


def device_data(cfg: dict, context: Context) -> LocalData:
    """This node's data (cached per process: a simulation actor serves many nodes)."""
    user = int(context.node_config["partition-id"])
    return _cached_local_data(json.dumps(cfg["data"], sort_keys=True), user, int(cfg["seed"]))


def centres_from_config(config: ConfigRecord) -> np.ndarray | None:
    """Cluster centres sent by the server (flattened ints plus slot count), if any."""
    if "centres" not in config:
        return None
    flat = np.asarray(config["centres"], dtype=np.int64)
    return flat.reshape(-1, int(config["n-slots"]))


def local_model(cfg: dict, n_items: int, context: Context, user: int) -> EmbeddingDotBias:
    """A model for this user: own parameters restored from ``context.state`` (or initialised)."""
    m = cfg["model"]
    torch.manual_seed(int(cfg["seed"]) * 100_003 + user)
    model = EmbeddingDotBias(1, n_items, int(m["n_factors"]), tuple(m["y_range"]))
    if LOCAL_STATE_KEY in context.state:
        model.load_state_dict(context.state[LOCAL_STATE_KEY].to_torch_state_dict(), strict=False)
    return model


def global_model(cfg: dict, arrays: ArrayRecord, context: Context, user: int) -> EmbeddingDotBias:
    """The user's model with the received global item parameters loaded."""
    state = arrays.to_torch_state_dict()
    if set(state) != set(GLOBAL_KEYS):
        raise ValueError(f"expected global arrays {GLOBAL_KEYS}, got {sorted(state)}")
    model = local_model(cfg, state["item_factors.weight"].shape[0], context, user)
    model.load_state_dict(state, strict=False)
    return model


def _split_batches(rows, split: str) -> Batches:
    items, ratings = rows.part(split)
    return Batches.from_numpy(np.zeros(len(items), np.int64), items, ratings)


def train_on_device(msg: Message, context: Context, cfg: dict) -> Message:
    """One local epoch on the user's training rows, starting from the global item parameters."""
    t_start = time.perf_counter()
    torch.set_num_threads(1)
    data = device_data(cfg, context)
    config = msg.content["config"]
    rows = data.rows(centres_from_config(config))
    model = global_model(cfg, msg.content["arrays"], context, data.user)
    metrics: dict[str, float] = {}
    val = _split_batches(rows, "val")
    if config.get("evaluate-first", False) and len(val):
        metrics[VAL_SSE] = evaluate_mse(model, val) * len(val)
        metrics[VAL_N] = float(len(val))
    train = _split_batches(rows, "train")
    tcfg = TrainConfig(**cfg["training"])
    rnd, n_rounds = int(config["server-round"]), int(cfg["federation"]["num_rounds"])
    spe = steps_per_epoch(len(train), tcfg.batch_size)
    opt = make_optimizer(model, tcfg)
    sched = make_scheduler(opt, tcfg, total_steps=n_rounds * spe, start_step=(rnd - 1) * spe)
    gen = torch.Generator().manual_seed(int(cfg["seed"]) * 7919 + data.user * 131 + rnd)
    t_fit = time.perf_counter()
    metrics["train_mse"] = train_epoch(model, train, opt, sched, tcfg.batch_size, gen) if len(train) else 0.0
    metrics[FIT_SECONDS] = time.perf_counter() - t_fit
    metrics["num-examples"] = float(len(train))
    state = model.state_dict()
    context.state[LOCAL_STATE_KEY] = ArrayRecord({k: state[k] for k in LOCAL_KEYS})
    metrics[CLIENT_SECONDS] = time.perf_counter() - t_start
    content = RecordDict({"arrays": ArrayRecord({k: state[k] for k in GLOBAL_KEYS}), "metrics": MetricRecord(metrics)})
    return Message(content, reply_to=msg)


def evaluate_on_device(msg: Message, context: Context, cfg: dict) -> Message:
    """Validation MSE of the global item parameters with this user's own parameters."""
    torch.set_num_threads(1)
    data = device_data(cfg, context)
    rows = data.rows(centres_from_config(msg.content["config"]))
    model = global_model(cfg, msg.content["arrays"], context, data.user)
    val = _split_batches(rows, "val")
    mse = evaluate_mse(model, val) if len(val) else 0.0
    return Message(
        RecordDict({"metrics": MetricRecord({"val_mse": mse, "num-examples": float(len(val))})}), reply_to=msg
    )


def suggest_on_device(data: LocalData, model: EmbeddingDotBias, centres: np.ndarray | None, n: int) -> ConfigRecord:
    """This user's top-``n`` items from the global item and the local user parameters."""
    mean = float(data.rows(centres).part("train")[1].mean())
    top = top_items(model, 0, mean, n)
    return ConfigRecord(
        {
            "user": data.user,
            "user-mean": mean,
            "items": [t[0] for t in top],
            "predicted": [t[1] for t in top],
            "gain": [t[2] for t in top],
        }
    )


def query_on_device(msg: Message, context: Context, cfg: dict) -> Message:
    """Federated k-modes statistics of this user's fragments (never the fragments themselves),
    or, for users who opted in to the demo, their on-device suggestions."""
    data = device_data(cfg, context)
    config = msg.content["config"]
    stage = config["stage"]
    centres = centres_from_config(config)
    if stage == "suggest":
        if data.user not in list(config["users"]):
            return Message(RecordDict({}), reply_to=msg)
        model = global_model(cfg, msg.content["arrays"], context, data.user)
        return Message(
            RecordDict({"suggestions": suggest_on_device(data, model, centres, int(config["n"]))}), reply_to=msg
        )
    if data.fragments is None:
        raise ValueError("this device holds a ratings table, not fragments: nothing to cluster")
    if stage == "histograms":
        marg, dominant = slot_histograms(data.fragments, N_CODES)
        rec = ArrayRecord({"marginals": Array(marg), "dominant": Array(dominant)})
    elif stage == "counts":
        rec = ArrayRecord({"counts": Array(cluster_counts(data.fragments, centres, N_CODES))})
    else:
        raise ValueError(f"unknown query stage {stage!r}")
    return Message(RecordDict({"stats": rec}), reply_to=msg)


def build_client_app(cfg_fn: ConfigFn, mods: list | None = None) -> ClientApp:
    """The ClientApp; ``cfg_fn(context)`` gives the experiment config (closure or run config)."""
    app = ClientApp(mods=mods or [])

    @app.train()
    def _train(msg: Message, context: Context) -> Message:
        return train_on_device(msg, context, cfg_fn(context))

    @app.evaluate()
    def _evaluate(msg: Message, context: Context) -> Message:
        return evaluate_on_device(msg, context, cfg_fn(context))

    @app.query()
    def _query(msg: Message, context: Context) -> Message:
        return query_on_device(msg, context, cfg_fn(context))

    return app


#: For ``flwr run .``: the config comes from the run config (pyproject's [tool.flwr.app.config]).
app = build_client_app(config_from_context)
