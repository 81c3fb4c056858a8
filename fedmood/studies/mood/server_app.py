"""The mood recommender's ServerApp: federated clustering, then FedAvg of the item parameters.

1. Federated k-modes (``query`` messages): clients send per-slot histograms, the server builds the
   starting centres; then rounds of per-cluster activity counts until the centres stop moving.
2. FedAvg (weighted by examples) of item factors and biases; a round is one local epoch per client.
   Validation MSE is computed on each client's own validation rows and aggregated by examples.
3. With ``personalise.enabled``: every device fine-tunes its own parameters on its own rows against
   the final item parameters (``query`` stage ``personalise``) and reports its validation MSE
   before and after; the personalised parameters stay on the device.
The run's history is handed to a callback (the Hydra experiment) or, under ``flwr run``, written to
a results folder.

The same app runs on a real federation (``conf/federation/deployment.yaml``): the server then knows
only how many SuperNodes to expect (``federation.nodes``), never the data; with ``strict: false``
a round, and each clustering step, goes on with the nodes that replied if there are at least
``federation.min_replies`` of them. With ``federation.checkpoint`` set the server saves a
checkpoint after every round (:mod:`fedmood.federated.checkpoint`); ``federation.resume`` continues
a killed run from it.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, RecordDict
from flwr.serverapp import Grid, ServerApp

from fedmood.federated.checkpoint import (
    CheckpointError,
    ServerCheckpoint,
    config_fingerprint,
    load_checkpoint,
    new_run_key,
    save_checkpoint,
)
from fedmood.federated.grid import query_all, wait_for_nodes, with_pull_interval
from fedmood.keys import CLIENT_SECONDS, FIT_SECONDS, RUN_KEY, TRAIN_MSE, VAL_N, VAL_SSE
from fedmood.privacy.central import PrivacyLedger
from fedmood.privacy.settings import PrivacySettings
from fedmood.studies.mood.clustering import initial_centres, modes_from_counts
from fedmood.studies.mood.data.public import public_centres
from fedmood.studies.mood.device import CLUSTERING_STAGES, centres_config
from fedmood.studies.mood.model import GLOBAL_KEYS, EmbeddingDotBias, shared_size
from fedmood.studies.mood.settings import FederationSettings
from strategies.central_dp import ClientClippedSum, flower_accountant, wrap_central_dp
from strategies.deferred_eval import DeferredEvalFedAvg, DeferredEvalLegacyFedAvg, validation_history
from strategies.resume import ResumeAt
from strategies.secure_rounds import SecureRounds, secure_sum
from strategies.strict import ClientRoundError, FailLoudly, FailLoudlyLegacy

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
    personalisation: list[dict] = field(default_factory=list)  # per device: val MSE before/after fine-tuning
    rankings: dict[str, np.ndarray] = field(default_factory=dict)  # simulation: model -> (users, items) predicted mood
    quality: pd.DataFrame = field(default_factory=pd.DataFrame)  # simulation: the suggestions measured
    privacy: dict = field(default_factory=dict)  # mechanism, noise, epsilon, delta, ...
    resumed_from: int = 0  # the checkpoint round this run continued from (0: started fresh)
    ray_nodes: dict[str, int] = field(default_factory=dict)  # simulation on a Ray cluster: ClientApp actors per node


#: ``collect(config)``: the sums over the nodes of each statistic a clustering stage asks for.
Collect = Callable[[dict], dict[str, np.ndarray]]


def plain_collect(grid: Grid, node_ids: list[int], timeout: float, min_replies: int | None) -> Collect:
    """Clustering statistics sent in the clear (no privacy mechanism), summed by the server."""

    def collect(config: dict) -> dict[str, np.ndarray]:
        replies = query_all(grid, node_ids, ConfigRecord(config), timeout, min_replies=min_replies)
        return {key: sum(r["stats"][key].numpy() for r in replies) for key in CLUSTERING_STAGES[config["stage"]]}

    return collect


def secure_collect(rounds: SecureRounds, settings, n_nodes: int, min_replies: int | None, timeout: float) -> Collect:
    """Clustering statistics as SecAgg+ secure sums: the server learns only the totals.

    Every node takes part when strict (``min_replies`` None); else whoever is connected, at least
    ``min_replies``.
    """
    tags = iter(range(-1, -(10**6), -1))  # SecAgg+ round numbers of the clustering rounds
    minimum = n_nodes if min_replies is None else min_replies

    def collect(config: dict) -> dict[str, np.ndarray]:
        strict = min_replies is None
        sums = secure_sum(rounds, config, settings, minimum, minimum, strict, next(tags), timeout)
        return dict(zip(CLUSTERING_STAGES[config["stage"]], sums, strict=True))

    return collect


def federated_clustering(collect: Collect, k: int, max_iter: int, seed: int) -> tuple[np.ndarray, int]:
    """Federated k-modes over the nodes' fragments (statistics from ``collect``); ``(centres, iterations)``."""
    stats = collect({"stage": "histograms"})
    centres = initial_centres(stats["marginals"], stats["dominant"], k, seed)
    for it in range(1, max_iter + 1):
        counts = collect({"stage": "counts", **centres_config(centres)})["counts"]
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


class RoundLog:
    """Per-round bookkeeping shared by both training paths: metrics, timings, privacy, progress, checkpoints.

    ``offset`` is the number of rounds a resumed run had done before (its history comes from the
    checkpoint, :meth:`restore`); ``on_round(round, arrays)`` is called after every round with the
    global arrays after it (the checkpoint writer).
    """

    HISTORY = ("train", "epsilon", "clients", "seconds")  # per-round dicts kept in the checkpoint

    def __init__(self, num_rounds: int, ledger: PrivacyLedger, on_round: Callable | None = None) -> None:
        self.num_rounds, self.ledger, self.on_round = num_rounds, ledger, on_round
        self.train: dict[int, dict] = {}
        self.epsilon: dict[int, float] = {}
        self.clients: dict[int, int] = {}
        self.seconds: dict[int, float] = {}
        self.stages: dict[int, dict[str, float]] = {}  # SecAgg+ rounds: seconds of each stage
        self.offset = 0
        self.arrays: ArrayRecord | None = None  # the global arrays after the latest round
        self._last: float | None = None

    def state(self) -> dict:
        """The history as JSON-able data (for the checkpoint)."""
        return {name: {str(k): v for k, v in getattr(self, name).items()} for name in self.HISTORY}

    def restore(self, state: dict, done: int) -> None:
        """Continue after round ``done`` with the history of a checkpoint."""
        for name in self.HISTORY:
            getattr(self, name).update({int(k): v for k, v in state.get(name, {}).items()})
        self.offset = done

    def stamp(self, rnd: int, *_args) -> None:
        """Strategy ``evaluate_fn``: called before the first round (0) and after every round."""
        now = time.perf_counter()
        if rnd > 0 and self._last is not None:
            self.seconds[rnd + self.offset] = now - self._last
        self._last = now

    def on_aggregate(self, rnd: int, arrays, metrics, n_results: int) -> None:
        metrics = dict(metrics or {})
        self.train[rnd], self.clients[rnd] = metrics, n_results
        if arrays is not None:
            self.ledger.released(metrics, n_results)
            self.arrays = arrays
        self.epsilon[rnd] = self.ledger.epsilon()
        val = metrics.get(VAL_SSE, float("nan")) / max(metrics.get(VAL_N, 0.0), 1.0)
        eps = f" eps={self.epsilon[rnd]:.3f}" if np.isfinite(self.epsilon[rnd]) else ""
        shown = ""  # under a privacy mechanism the server has no metrics (they are in the devices' reports)
        if TRAIN_MSE in metrics:
            shown = f" train_mse={metrics[TRAIN_MSE]:.4f}"
            shown += f" val_mse(round {rnd - 1})={val:.4f}" if rnd > 1 else ""
        print(f"[federated] round {rnd}/{self.num_rounds} clients={n_results}{shown}{eps}", flush=True)
        if self.on_round is not None and self.arrays is not None:
            self.on_round(rnd, self.arrays)

    def rows(self, final_eval: dict | None) -> list[dict]:
        val = validation_history(self.train, final_eval, self.num_rounds)
        out = []
        for rnd in range(1, self.num_rounds + 1):
            m = self.train.get(rnd) or {}
            out.append(
                {
                    "round": rnd,
                    "train_mse": float(m.get(TRAIN_MSE, np.nan)),
                    "val_mse": val.get(rnd, np.nan),
                    "seconds": self.seconds.get(rnd, np.nan),
                    "client_seconds": float(m.get(CLIENT_SECONDS, np.nan)),
                    "fit_seconds": float(m.get(FIT_SECONDS, np.nan)),
                    "epsilon": self.epsilon.get(rnd, np.nan),
                    "clients": self.clients.get(rnd, 0),
                }
                | {f"secagg_{stage}_seconds": t for stage, t in self.stages.get(rnd, {}).items()}
            )
        return out


def node_minimums(cfg: dict, per_round: int, n_users: int) -> tuple[int | None, int, int]:
    """``(needed, to_sample, to_wait_for)``: the replies a round needs (:meth:`FederationSettings.replies_needed`), the
    fewest nodes to sample, and the nodes to wait for before sampling (all users when strict)."""
    needed = FederationSettings.of(cfg).replies_needed(per_round)
    if needed is None:
        return None, per_round, n_users
    floor = min(needed, per_round)
    return needed, floor, floor


def _train_message_api(
    grid: Grid,
    cfg: dict,
    log_: RoundLog,
    n_users: int,
    initial: ArrayRecord,
    train_config: dict,
) -> tuple[ArrayRecord, dict | None]:
    """FedAvg rounds on the Message API (no SecAgg+), with Flower's DP wrappers if asked.

    A resumed run (``log_.offset`` rounds done) starts from ``initial`` = the checkpoint's arrays.
    """
    fed, ledger = FederationSettings.of(cfg), log_.ledger
    privacy = ledger.settings
    needed, to_sample, to_wait_for = node_minimums(cfg, ledger.per_round, n_users)
    inner = DeferredEvalFedAvg(
        num_rounds=log_.num_rounds,
        final_evaluate=not privacy.protected,
        fraction_train=ledger.sample_rate,
        fraction_evaluate=1.0,
        min_train_nodes=to_sample,
        min_evaluate_nodes=to_wait_for,
        min_available_nodes=to_wait_for,
    )
    strategy = inner
    if privacy.central_dp.enabled:
        if ledger.flower_accounting_applies:
            ledger.flower = flower_accountant(ledger.delta, n_users)
        strategy = wrap_central_dp(
            inner, privacy.central_dp, ledger.noise_multiplier, ledger.per_round, privacy.noise, ledger.flower
        )
    strategy = FailLoudly(
        strategy, on_aggregate=log_.on_aggregate, strict=needed is None, min_replies=0 if needed is None else needed
    )
    if log_.offset:
        strategy = ResumeAt(strategy, log_.offset)
    log_.arrays = initial
    remaining = log_.num_rounds - log_.offset
    result = strategy.start(
        grid=grid,
        initial_arrays=initial,
        num_rounds=remaining,
        timeout=fed.round_timeout,
        train_config=ConfigRecord(train_config),
        evaluate_config=ConfigRecord(train_config),
        evaluate_fn=log_.stamp,
    )
    final = result.evaluate_metrics_clientapp.get(remaining)
    return log_.arrays, (dict(final) if final is not None else None)


def _train_secagg(
    rounds: SecureRounds, cfg: dict, log_: RoundLog, n_users: int, initial: ArrayRecord, train_config: dict
) -> tuple[ArrayRecord, dict | None]:
    """FedAvg rounds under Flower's SecAgg+ (legacy API), with client-side clipping DP if asked.

    The server learns each round's weighted sum of the item parameters only (and with central DP
    adds the noise to it); every client's metrics stay in its own report.
    """
    ledger = log_.ledger
    privacy = ledger.settings
    needed, to_sample, to_wait_for = node_minimums(cfg, ledger.per_round, n_users)
    inner = DeferredEvalLegacyFedAvg(
        log_.num_rounds,
        fit_config=train_config,
        fraction_fit=ledger.sample_rate,
        min_fit_clients=to_sample,
        fraction_evaluate=0.0,
        min_available_clients=to_wait_for,
        accept_failures=True,
    )
    strategy = inner
    if privacy.central_dp.enabled:  # the server adds the noise to the sum it unmasked
        clip, exact = privacy.central_dp.clipping_norm, getattr(rounds.grid, "record_exact_sum", None)
        strategy = ClientClippedSum(inner, ledger.noise_multiplier, clip, privacy.noise, on_exact_sum=exact)
    elif privacy.distributed_dp.enabled:  # the sum arrives noised: the devices added their shares
        strategy = ClientClippedSum(inner, 0.0, privacy.distributed_dp.clipping_norm, privacy.noise)
    strategy = FailLoudlyLegacy(
        strategy, on_aggregate=log_.on_aggregate, strict=needed is None, min_replies=needed or 0
    )
    params = [initial[k].numpy() for k in GLOBAL_KEYS]
    log_.stamp(0)
    timed = rounds.workflow.stage_seconds
    for rnd in range(1, log_.num_rounds + 1):
        done = {stage: len(times) for stage, times in timed.items()}
        params = rounds.run(strategy, rnd, params)
        log_.stages[rnd] = {stage: times[-1] for stage, times in timed.items() if len(times) > done[stage]}
        if strategy.last_round != rnd:  # SecAgg+ halted before unmasking: too few clients took part
            if needed is None:
                why = rounds.workflow.halt_reason("fewer clients than its threshold")
                raise ClientRoundError(f"train round {rnd}: SecAgg+ halted: {why}")
            log_.on_aggregate(rnd, None, {}, 0)
        log_.stamp(rnd)
    return ArrayRecord({k: Array(np.asarray(v)) for k, v in zip(GLOBAL_KEYS, params, strict=True)}), None


def federation_shape(cfg: dict) -> tuple[int, int]:
    """``(nodes, items)``: from ``federation.nodes`` in a deployment (the server never sees data), else the data."""
    nodes = FederationSettings.of(cfg).nodes
    if nodes:
        if cfg["data"]["source"] == "ratings":
            raise ValueError("federation.nodes is set (a deployment): it needs day-log data, not a ratings table")
        return int(nodes), int(cfg["data"]["n_clusters"])
    from fedmood.studies.mood.data.local import data_shape

    return data_shape(cfg["data"], int(cfg["seed"]))


def resume_checkpoint(cfg: dict, privacy: PrivacySettings) -> ServerCheckpoint | None:
    """The checkpoint to continue from, if ``federation.resume`` is set and one exists."""
    fed = FederationSettings.of(cfg)
    path = fed.checkpoint
    if not fed.resume:
        return None
    if not path:
        raise ValueError("federation.resume needs federation.checkpoint: the checkpoint file to resume from")
    if not Path(path).is_file():
        print(f"[federated] no checkpoint at {path}: starting from round 1", flush=True)
        return None
    if privacy.any_dp or privacy.secagg.enabled:
        raise CheckpointError(f"{path}: resuming is supported for runs without DP or SecAgg+ ({privacy.mechanism})")
    if not (fed.stores or fed.nodes):
        raise CheckpointError(
            f"{path}: resuming needs the devices' own parameters of that round, kept in their stores: "
            "set federation.stores (simulation) or run on a deployment"
        )
    ckpt = load_checkpoint(path)
    if ckpt.fingerprint != config_fingerprint(cfg):
        raise CheckpointError(f"{path}: written by a run with another config (seed, data, model, training, rounds)")
    return ckpt


def seed_sampling(privacy: PrivacySettings, seed: int) -> None:
    """Seed Python's generator, which Flower samples clients (and shuffles SecAgg+ neighbours) with.

    From the config seed, so runs repeat; but under DP from OS entropy: the amplification by
    sampling that the accountant credits holds only if nobody can tell who was sampled (the
    config is published with the results). The DP noise itself never comes from this generator
    (:mod:`fedmood.privacy.noise`).
    """
    if privacy.any_dp and not privacy.insecure_replayable_noise:
        random.seed(secrets.randbits(256))
    else:
        random.seed(seed)


def run_federated(grid: Grid, cfg: dict, context: Context | None = None) -> FederatedRun:
    """The whole federated job on ``grid`` (clustering, then FedAvg training, private if configured)."""
    fed = FederationSettings.of(cfg)
    privacy = PrivacySettings.from_cfg(cfg)
    seed_sampling(privacy, int(cfg["seed"]))
    n_users, n_items = federation_shape(cfg)
    node_ids = wait_for_nodes(grid, n_users, fed.node_timeout)
    dim = shared_size(n_items, int(cfg["model"]["n_factors"]))
    ledger = PrivacyLedger(privacy, n_users, fed.clients_per_round, fed.num_rounds, cfg["federation"], dim)
    ckpt = resume_checkpoint(cfg, privacy)
    if not privacy.secagg.enabled:
        return _run(grid, cfg, ledger, ckpt, node_ids, n_users, n_items, None)
    if context is None:
        raise ValueError("SecAgg+ runs need the ServerApp's Context (legacy workflow)")
    privacy.secagg.check(max(ledger.per_round, n_users))  # the clustering's secure sums hold every user
    with SecureRounds(grid, context, privacy.secagg, ledger.per_round) as rounds:
        return _run(grid, cfg, ledger, ckpt, node_ids, n_users, n_items, rounds)


def _activity_items(
    grid: Grid, cfg: dict, privacy: PrivacySettings, node_ids: list[int], n_users: int, n_items: int, rounds
) -> tuple[np.ndarray, int]:
    """The cluster centres: public under DP, else federated k-modes (as secure sums under SecAgg+)."""
    fed = FederationSettings.of(cfg)
    data, needed = cfg["data"], fed.replies_needed(fed.clients_per_round or n_users)
    if privacy.centres(data) == "public":
        print("[federated] activity items from the public reference diaries (no device statistics)", flush=True)
        return public_centres(n_items, int(data["cluster_max_iter"]), str(data["cache_dir"])), 0
    timeout = fed.round_timeout
    if rounds is not None:
        collect = secure_collect(rounds, privacy.secagg, n_users, needed, timeout)
    else:
        collect = plain_collect(grid, node_ids, timeout, needed)
    return federated_clustering(collect, n_items, int(data["cluster_max_iter"]), int(cfg["seed"]))


def _start(
    grid: Grid, cfg: dict, ledger: PrivacyLedger, ckpt: ServerCheckpoint | None, node_ids, n_users, n_items, rounds
) -> tuple[FederatedRun, dict]:
    """The run's activity items (from the checkpoint, or found now) and the config every round sends."""
    run, train_config = FederatedRun(), {}
    if ckpt is not None:
        run.centres, run.cluster_iterations, run.resumed_from = ckpt.centres, ckpt.cluster_iterations, ckpt.round
        print(f"[federated] resuming after round {ckpt.round} from {FederationSettings.of(cfg).checkpoint}", flush=True)
    elif cfg["data"]["source"] != "ratings":
        t0 = time.perf_counter()
        run.centres, run.cluster_iterations = _activity_items(
            grid, cfg, ledger.settings, node_ids, n_users, n_items, rounds
        )
        run.cluster_seconds = time.perf_counter() - t0
    if run.centres is not None:
        train_config = centres_config(run.centres)
    train_config[RUN_KEY] = ckpt.run_key if ckpt is not None else new_run_key()
    return run, train_config


def _round_log(cfg: dict, ledger: PrivacyLedger, run: FederatedRun, run_key: str, checkpointing: bool) -> RoundLog:
    """The rounds' log; with ``checkpointing`` it saves a checkpoint after every round but the last."""
    fed = FederationSettings.of(cfg)
    log_ = RoundLog(fed.num_rounds, ledger)
    if checkpointing:
        fingerprint = config_fingerprint(cfg)

        def write_checkpoint(rnd: int, arrays: ArrayRecord) -> None:
            if rnd >= log_.num_rounds:  # a run killed after its last round re-runs that round
                return
            state = {k: v.numpy() for k, v in arrays.items()}
            extra = {"centres": run.centres, "cluster_iterations": run.cluster_iterations, "history": log_.state()}
            save_checkpoint(fed.checkpoint, ServerCheckpoint.capture(rnd, run_key, fingerprint, state, **extra))

        log_.on_round = write_checkpoint
    return log_


def _after_training(
    grid: Grid,
    cfg: dict,
    run: FederatedRun,
    arrays: ArrayRecord,
    node_ids: list[int],
    n_users: int,
    after: dict,
    needed: int | None,
) -> None:
    """The queries on the final model: its evaluation on the devices (under a privacy mechanism, into
    their own reports); with ``suggest.evaluate`` each device's predicted mood per item, into its own
    report, before and after personalisation; personalisation; devices with a store keep the final
    model there (their later suggestions); the demo users' suggestions."""
    fed = FederationSettings.of(cfg)
    if needed is not None:  # nodes may have failed or come back during training
        node_ids = sorted(grid.get_node_ids())

    def ask(stage: str, **config) -> list[RecordDict]:
        query = ConfigRecord({"stage": stage, **config, **after})
        return query_all(grid, node_ids, query, fed.round_timeout, arrays, min_replies=needed)

    if PrivacySettings.from_cfg(cfg).protected:
        ask("evaluate")
    rank = bool((cfg.get("suggest") or {}).get("evaluate", False))
    if rank:
        ask("rank", model="federated")
    if (cfg.get("personalise") or {}).get("enabled", False):
        reports = (dict(r["personalisation"]) for r in ask("personalise") if "personalisation" in r)
        run.personalisation = sorted(reports, key=lambda r: r["user"])
        if rank:
            ask("rank", model="personalised")
    if fed.stores or fed.nodes:
        ask("keep")
    demo_users = list(range(min(int(cfg["suggest_users"]), n_users)))
    if demo_users:
        for reply in ask("suggest", users=demo_users, n=int(cfg["n_suggestions"])):
            if "suggestions" in reply:
                run.suggestions.append(dict(reply["suggestions"]))


def _run(
    grid: Grid,
    cfg: dict,
    ledger: PrivacyLedger,
    ckpt: ServerCheckpoint | None,
    node_ids: list[int],
    n_users: int,
    n_items: int,
    rounds: SecureRounds | None,
) -> FederatedRun:
    """Clustering, training, then the after-training queries; ``rounds`` drives SecAgg+ when it is on."""
    fed, privacy = FederationSettings.of(cfg), ledger.settings
    run, train_config = _start(grid, cfg, ledger, ckpt, node_ids, n_users, n_items, rounds)
    checkpointing = bool(fed.checkpoint) and rounds is None
    log_ = _round_log(cfg, ledger, run, train_config[RUN_KEY], checkpointing)
    if ckpt is not None:
        log_.restore(ckpt.history, ckpt.round)
        ckpt.restore_generators()
        initial = ArrayRecord({k: Array(np.asarray(v)) for k, v in ckpt.arrays.items()})
    else:
        initial = initial_item_arrays(cfg, n_items)
    if rounds is not None:
        arrays, final = _train_secagg(rounds, cfg, log_, n_users, initial, train_config)
    else:
        arrays, final = _train_message_api(grid, cfg, log_, n_users, initial, train_config)
    run.rounds = log_.rows(final)
    run.privacy = ledger.summary()
    if privacy.protected:
        p = run.privacy
        print(
            f"[privacy] {p['mechanism']}: epsilon={p['epsilon']:.4g} delta={p['delta']:.3g} "
            f"noise_multiplier={p['noise_multiplier']:.4g} ({p['dp_level']}-level)",
            flush=True,
        )
    run.item_state = {k: v.numpy() for k, v in arrays.items()}
    after = {**train_config, "server-round": fed.num_rounds + 1}  # device state after the last round
    _after_training(grid, cfg, run, arrays, node_ids, n_users, after, fed.replies_needed(ledger.per_round))
    return run


def build_server_app(
    cfg_fn: Callable[[Context], dict],
    on_done: Callable[[FederatedRun, dict], None],
    wrap_grid: Callable[[Grid], Grid] | None = None,
) -> ServerApp:
    """A ServerApp that runs :func:`run_federated` and hands the outcome to ``on_done``.

    ``wrap_grid`` wraps the grid first (e.g. :class:`fedmood.threat_study.attacks.server_view.RecordingGrid`).
    """
    app = ServerApp()

    @app.main()
    def _main(grid: Grid, context: Context) -> None:
        cfg = cfg_fn(context)
        fed = FederationSettings.of(cfg)
        grid = with_pull_interval(grid, fed.grid_pull_interval, fed.phase_timeout)
        on_done(run_federated(wrap_grid(grid) if wrap_grid else grid, cfg, context), cfg)

    return app
