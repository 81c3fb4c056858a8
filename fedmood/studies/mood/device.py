"""What a device computes, independent of how Flower delivers the instruction.

:func:`local_round` is the one local-training function: the Message-API train handler and the
legacy (SecAgg+) ``NumPyClient`` are thin adapters around it (``fedmood.studies.mood.client_app``).
The user's own embedding and bias never leave the device: they live in ``context.state``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
from flwr.app import ArrayRecord, Context, RecordDict

from fedmood.data.store import EncryptedStore
from fedmood.federated.device_report import add_to_report
from fedmood.keys import (
    CLIENT_SECONDS,
    FIT_SECONDS,
    LOCAL_STATE_KEY,
    PERSONAL_ITEMS_KEY,
    RUN_KEY,
    TRAIN_MSE,
    TRAIN_ROWS,
    USER,
    VAL_MSE_AFTER,
    VAL_MSE_BEFORE,
    VAL_N,
    VAL_ROWS,
    VAL_SSE,
)
from fedmood.privacy import dpsgd
from fedmood.privacy.noise import NoiseSource
from fedmood.privacy.settings import PrivacySettings
from fedmood.seeding import derived_seed
from fedmood.studies.mood.clustering import cluster_counts, slot_histograms
from fedmood.studies.mood.data.device_store import (
    FINAL_MODEL,
    FINAL_MODEL_META,
    PERSONAL_STATE,
    device_data_from_store,
    load_user_state,
    node_store_paths,
    save_user_state,
)
from fedmood.studies.mood.data.fragments import N_CODES
from fedmood.studies.mood.data.local import LocalData, load_local_data
from fedmood.studies.mood.model import GLOBAL_KEYS, LOCAL_KEYS, EmbeddingDotBias
from fedmood.studies.mood.settings import FederationSettings
from fedmood.studies.mood.suggest import SuggestContext, predicted_moods, suggest_kinds, user_suggestions
from fedmood.studies.mood.train import RoundSchedule, local_seed, train_dpsgd, train_plain
from fedmood.training import Batches, evaluate_mse, shuffled_batches, train_epoch, train_only

_HISTORY = "dpsgd-history"  # prefix of the DP-SGD accountant history arrays in a stored user state


@lru_cache(maxsize=8192)  # a simulation actor serves many nodes: keep every one it has loaded
def _cached_local_data(data_json: str, user: int, seed: int) -> LocalData:
    return load_local_data(json.loads(data_json), user, seed)


def node_context(partition: int, n_partitions: int) -> Context:
    """A node's Context as Flower's simulation builds it, to run device code in-process."""
    return Context(
        run_id=1,
        node_id=partition + 1,
        state=RecordDict(),
        node_config={"partition-id": partition, "num-partitions": n_partitions},
        run_config={},
    )


@lru_cache(maxsize=8192)
def _open_store(root: str, key_file: str) -> EncryptedStore:
    return EncryptedStore.open(root, key_file or None)


@lru_cache(maxsize=8192)
def _cached_store_data(store: EncryptedStore, val_frac: float, seed: int, version: tuple) -> LocalData:
    return device_data_from_store(store, val_frac, seed)


def _store_version(store: EncryptedStore) -> tuple:
    """When the device's rows were last written (a long-lived ClientApp must see refreshed fragments)."""
    names = ("meta", "fragments", "labels")
    return tuple(store.path(name).stat().st_mtime_ns if name in store else 0 for name in names)


def device_store(cfg: dict, context: Context) -> EncryptedStore | None:
    """This device's encrypted store, if it has one.

    A SuperNode names it in its node config (``store``, and ``store-key-file`` unless the key is
    in ``$FEDMOOD_STORE_KEY``); a simulation with ``federation.stores`` set finds node ``i``'s at
    ``<stores>/node-<i>/store`` with the key file ``<stores>/node-<i>/store.key``.
    """
    node = context.node_config
    if "store" in node:
        return _open_store(str(node["store"]), str(node.get("store-key-file", "")))
    root = FederationSettings.of(cfg).stores
    if root:
        store, key_file = node_store_paths(root, int(node["partition-id"]))
        return _open_store(str(store), str(key_file))
    return None


def device_data(cfg: dict, context: Context) -> LocalData:
    """This node's data: from its encrypted store, or else its user's rows of the configured data.

    Cached per process (a simulation actor serves many nodes; a warm SuperNode's ClientApp serves
    many runs): a store's rows are read again once its fragments were rewritten.
    """
    store = device_store(cfg, context)
    if store is not None:
        return _cached_store_data(store, float(cfg["data"]["val_frac"]), int(cfg["seed"]), _store_version(store))
    user = int(context.node_config["partition-id"])
    return _cached_local_data(json.dumps(cfg["data"], sort_keys=True), user, int(cfg["seed"]))


def restore_user_state(cfg: dict, context: Context, config: Mapping) -> None:
    """Put the user's stored parameters back into ``context.state`` when a fresh process lost them.

    This happens after a SuperNode restart or when a killed run is resumed: the state of the latest
    round of the same run (``config["run-key"]``) before this one is loaded from the store, with the
    DP-SGD accountant's history if the device trains privately (so its ε keeps counting every round).
    """
    if LOCAL_STATE_KEY in context.state or RUN_KEY not in config:
        return
    store = device_store(cfg, context)
    if store is None:
        return
    arrays = load_user_state(store, str(config[RUN_KEY]), int(config.get("server-round", 2**31)))
    if arrays is None:
        return
    history = [arrays.pop(f"{_HISTORY}.{k}", None) for k in ("noise", "rate", "steps")]
    if history[0] is not None:
        dpsgd.save_history(context.state, list(zip(*(h.tolist() for h in history), strict=True)))
    context.state[LOCAL_STATE_KEY] = ArrayRecord({k: torch.as_tensor(v) for k, v in arrays.items()})


def persist_user_state(cfg: dict, context: Context, config: Mapping, name: str | None = None) -> None:
    """Write the user's parameters from ``context.state`` to the store (no-op without a store).

    ``name`` given: under that record; else as the state after round ``server-round`` of the run.
    """
    store = device_store(cfg, context)
    if store is None or LOCAL_STATE_KEY not in context.state:
        return
    arrays = {k: v.numpy() for k, v in context.state[LOCAL_STATE_KEY].items()}
    history = dpsgd.load_history(context.state)
    if history:
        for i, k in enumerate(("noise", "rate", "steps")):
            arrays[f"{_HISTORY}.{k}"] = np.asarray([h[i] for h in history])
    if name is not None:
        store.put_arrays(name, **arrays)
    elif RUN_KEY in config:
        save_user_state(store, str(config[RUN_KEY]), int(config["server-round"]), arrays)


def report_or_send(cfg: dict, context: Context, user: int, kind: str, entry: dict, server_round: int = 0) -> dict:
    """``entry`` for the reply to the server when the run has no privacy mechanism; under one, it
    goes to the device's own report instead and nothing is sent (:mod:`fedmood.federated.device_report`)."""
    if not PrivacySettings.from_cfg(cfg).protected:
        return entry
    add_to_report(cfg, user, kind, {"round": server_round, **entry}, store=device_store(cfg, context))
    return {}


def centres_config(centres: np.ndarray) -> dict:
    """Cluster centres as config values (bytes, so they fit legacy configs too)."""
    return {"centres": np.ascontiguousarray(centres, dtype=np.int64).tobytes(), "n-slots": int(centres.shape[1])}


def centres_from_config(config: Mapping) -> np.ndarray | None:
    """Cluster centres sent by the server, if any."""
    if "centres" not in config:
        return None
    return np.frombuffer(config["centres"], dtype=np.int64).reshape(-1, int(config["n-slots"]))


def local_model(cfg: dict, n_items: int, context: Context, user: int) -> EmbeddingDotBias:
    """A model for this user: own parameters restored from ``context.state`` (or initialised)."""
    m = cfg["model"]
    torch.manual_seed(derived_seed(int(cfg["seed"]), user, seed_base=100_003))
    model = EmbeddingDotBias(1, n_items, int(m["n_factors"]), tuple(m["y_range"]))
    if LOCAL_STATE_KEY in context.state:
        model.load_state_dict(context.state[LOCAL_STATE_KEY].to_torch_state_dict(), strict=False)
    return model


def global_model(cfg: dict, items: Mapping[str, np.ndarray], context: Context, user: int) -> EmbeddingDotBias:
    """The user's model with the received global item parameters loaded."""
    if set(items) != set(GLOBAL_KEYS):
        raise ValueError(f"expected global arrays {GLOBAL_KEYS}, got {sorted(items)}")
    state = {k: torch.as_tensor(np.asarray(v)) for k, v in items.items()}
    model = local_model(cfg, state["item_factors.weight"].shape[0], context, user)
    model.load_state_dict(state, strict=False)
    return model


def user_model(
    cfg: dict, context: Context, items: Mapping[str, np.ndarray], config: Mapping, data: LocalData | None = None
) -> tuple[LocalData, EmbeddingDotBias]:
    """This device's data (or ``data``) and its model: ``items`` with the user's own parameters,
    restored from the device's store first if this process lost them (:func:`restore_user_state`)."""
    data = data if data is not None else device_data(cfg, context)
    restore_user_state(cfg, context, config)
    return data, global_model(cfg, items, context, data.user)


def split_batches(rows, split: str) -> Batches:
    """One split of the user's rows as tensors (user index 0: the device's only user)."""
    items, ratings = rows.part(split)
    return Batches.from_numpy(np.zeros(len(items), np.int64), items, ratings)


@dataclass
class LocalUpdate:
    """What a training round produces: item parameters, the FedAvg weight, this device's metrics.

    ``to_server`` is what of the metrics goes to the server: all of them without a privacy
    mechanism; none under one (they are in the device's report, :func:`report_or_send`).
    """

    items: dict[str, np.ndarray]
    weight: float
    metrics: dict[str, float] = field(default_factory=dict)
    to_server: dict[str, float] = field(default_factory=dict)


def local_round(
    cfg: dict,
    context: Context,
    items: Mapping[str, np.ndarray],
    config: Mapping,
    data: LocalData | None = None,
    noise: NoiseSource | None = None,
) -> LocalUpdate:
    """One round on the device: (evaluate the received model first, if asked), train, keep own state.

    ``config`` carries ``server-round``, the cluster centres and ``evaluate-first``. The local
    training is plain (:func:`train_plain`) or, with ``privacy.dpsgd.enabled``, Opacus DP-SGD
    (:func:`train_dpsgd`). ``data`` replaces the device's own rows and ``noise`` its DP-SGD noise
    source (the privacy audit's canaries and its deliberately broken mechanism).
    """
    t_start = time.perf_counter()
    torch.set_num_threads(1)
    data, model = user_model(cfg, context, items, config, data)
    rows = data.rows(centres_from_config(config))
    metrics: dict[str, float] = {}
    val = split_batches(rows, "val")
    if config.get("evaluate-first", False) and len(val):
        metrics[VAL_SSE] = evaluate_mse(model, val) * len(val)
        metrics[VAL_N] = float(len(val))
    train = split_batches(rows, "train")
    rnd = int(config["server-round"])
    schedule = RoundSchedule.of(cfg, rnd, len(train))
    privacy = PrivacySettings.from_cfg(cfg)
    t_fit = time.perf_counter()
    if privacy.dpsgd.enabled and len(train):
        noise = noise if noise is not None else privacy.noise(f"dpsgd/user-{data.user}/round-{rnd}")
        metrics[TRAIN_MSE], dp_metrics = train_dpsgd(model, train, schedule, privacy, context, noise)
    else:
        metrics[TRAIN_MSE], dp_metrics = train_plain(model, train, schedule, local_seed(cfg, data.user, rnd)), {}
    metrics[FIT_SECONDS] = time.perf_counter() - t_fit
    metrics.update(dp_metrics)
    state = model.state_dict()
    context.state[LOCAL_STATE_KEY] = ArrayRecord({k: state[k] for k in LOCAL_KEYS})
    persist_user_state(cfg, context, config)
    metrics[TRAIN_ROWS] = float(len(train))
    metrics[CLIENT_SECONDS] = time.perf_counter() - t_start
    weight = 1.0 if privacy.uniform_weights else float(len(train))
    to_server = report_or_send(cfg, context, data.user, "round", metrics, rnd)
    return LocalUpdate({k: state[k].numpy() for k in GLOBAL_KEYS}, weight, metrics, to_server)


def local_evaluation(
    cfg: dict, context: Context, items: Mapping[str, np.ndarray], config: Mapping
) -> tuple[float, int]:
    """Validation MSE of the global item parameters with this user's own parameters, and its rows."""
    torch.set_num_threads(1)
    data, model = user_model(cfg, context, items, config)
    val = split_batches(data.rows(centres_from_config(config)), "val")
    return (evaluate_mse(model, val) if len(val) else 0.0), len(val)


def suggestions(cfg: dict, context: Context, items: Mapping[str, np.ndarray], config: Mapping) -> dict:
    """This user's top-``n`` discretionary items for the configured context (:mod:`~fedmood.studies.mood.suggest`),
    from the device's own model: personalised, where it fine-tuned one."""
    centres = centres_from_config(config)
    data, model = user_model(cfg, context, own_items(context, items), config)
    shown = user_suggestions(
        predicted_moods(model, 0), data, centres, SuggestContext.from_cfg(cfg), suggest_kinds(cfg), int(config["n"])
    )
    return {
        "user": data.user,
        "user-mean": float(data.rows(centres).part("train")[1].mean()),
        "items": [s.item for s in shown],
        "predicted": [s.predicted for s in shown],
        "gain": [s.gain for s in shown],
        "uncertainty": [s.uncertainty for s in shown],
        "own-hours": [s.own_hours for s in shown],
    }


def own_items(context: Context, items: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
    """The device's own fine-tuned copy of the item parameters if it personalised one, else ``items``."""
    if PERSONAL_ITEMS_KEY in context.state:
        return {k: v.numpy() for k, v in context.state[PERSONAL_ITEMS_KEY].items()}
    return items


def ranking_on_device(cfg: dict, context: Context, items: Mapping[str, np.ndarray], config: Mapping) -> dict:
    """This user's predicted mood in every item, for their own report (never sent): with the received
    item parameters and their own parameters, or after personalisation (``config["model"]``
    ``personalised``) with their own copy of the items, if they fine-tuned one."""
    label = str(config["model"])
    data, model = user_model(cfg, context, own_items(context, items) if label == "personalised" else items, config)
    return {"model": label, "user": data.user, "predicted": predicted_moods(model, 0).tolist()}


def keep_final_model(cfg: dict, context: Context, items: Mapping[str, np.ndarray], config: Mapping) -> None:
    """Keep the model the run ends with in the device's store: the final item parameters (or the
    device's own fine-tuned copy), its own user parameters (personalised, if it was) and the
    activity items' centres, so that the phone can suggest from them later
    (``python -m fedmood.studies.mood.suggest``). No-op without a store."""
    store = device_store(cfg, context)
    if store is None:
        return
    _, model = user_model(cfg, context, own_items(context, items), config)
    state = model.state_dict()
    centres = centres_from_config(config)
    arrays = {k: state[k].numpy() for k in GLOBAL_KEYS + LOCAL_KEYS}
    store.put_arrays(FINAL_MODEL, **arrays, **({} if centres is None else {"centres": centres}))
    m = cfg["model"]
    meta = {"run_key": str(config.get(RUN_KEY, "")), "n_factors": int(m["n_factors"]), "y_range": list(m["y_range"]),
            "val_frac": float(cfg["data"]["val_frac"]), "seed": int(cfg["seed"])}  # fmt: skip
    store.put_json(FINAL_MODEL_META, meta)


#: Federated k-modes stages and the statistics each returns, in this order.
CLUSTERING_STAGES = {"histograms": ("marginals", "dominant"), "counts": ("counts",)}


def clustering_statistics(cfg: dict, context: Context, config: Mapping) -> dict[str, np.ndarray]:
    """Federated k-modes statistics of this user's fragments (never the fragments themselves),
    in the order of :data:`CLUSTERING_STAGES`."""
    data = device_data(cfg, context)
    if data.fragments is None:
        raise ValueError("this device holds a ratings table, not fragments: nothing to cluster")
    stage = config["stage"]
    if stage == "histograms":
        marg, dominant = slot_histograms(data.fragments, N_CODES)
        return {"marginals": marg, "dominant": dominant}
    if stage == "counts":
        return {"counts": cluster_counts(data.fragments, centres_from_config(config), N_CODES)}
    raise ValueError(f"unknown query stage {stage!r}")


def personalise_on_device(
    cfg: dict, context: Context, items: Mapping[str, np.ndarray], config: Mapping
) -> dict[str, float]:
    """After federated training: fine-tune this user's own parameters on their own rows; val MSE before/after.

    ``cfg["personalise"]``: ``epochs`` of Adam at ``lr`` over the user's factors and bias, and with
    ``items: true`` over a local copy of the item factors and biases too. The result stays on the
    device (``context.state``); only the two validation errors and row counts are returned.
    """
    torch.set_num_threads(1)
    p = cfg["personalise"]
    data, model = user_model(cfg, context, items, config)
    rows = data.rows(centres_from_config(config))
    train, val = split_batches(rows, "train"), split_batches(rows, "val")
    before = evaluate_mse(model, val) if len(val) else float("nan")
    keys = LOCAL_KEYS + (GLOBAL_KEYS if p.get("items", False) else ())
    opt = torch.optim.Adam(train_only(model, lambda name: name in keys), lr=float(p["lr"]))
    gen = torch.Generator().manual_seed(derived_seed(int(cfg["seed"]), data.user, seed_base=6_007))
    batch_size = int(cfg["training"]["batch_size"])
    for _ in range(int(p["epochs"]) if len(train) else 0):
        train_epoch(model, shuffled_batches(train, batch_size, gen), opt, None)
    after = evaluate_mse(model, val) if len(val) else float("nan")
    state = model.state_dict()
    context.state[LOCAL_STATE_KEY] = ArrayRecord({k: state[k] for k in LOCAL_KEYS})
    persist_user_state(cfg, context, config, name=PERSONAL_STATE)
    if p.get("items", False):
        context.state[PERSONAL_ITEMS_KEY] = ArrayRecord({k: state[k] for k in GLOBAL_KEYS})
        store = device_store(cfg, context)
        if store is not None:
            store.put_arrays(PERSONAL_ITEMS_KEY, **{k: state[k].numpy() for k in GLOBAL_KEYS})
    return {
        USER: float(data.user),
        VAL_MSE_BEFORE: before,
        VAL_MSE_AFTER: after,
        VAL_ROWS: float(len(val)),
        TRAIN_ROWS: float(len(train)),
    }
