"""One attacked run: the federated mood recommender with its server's view recorded, then attacked."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import numpy as np

from fedmood.privacy.settings import PrivacySettings
from fedmood.studies.mood.data.local import data_shape
from fedmood.studies.mood.run import run_federated_simulation
from fedmood.studies.mood.server_app import FederatedRun
from fedmood.threat_study.attacks.attribute import (
    PreferencePairs,
    client_update_scores,
    disaggregation_scores,
    preference_pairs,
    replay_scores,
)
from fedmood.threat_study.attacks.scoring import AttackResult, evaluate_attack
from fedmood.threat_study.attacks.server_view import RecordingGrid, ServerView, node_user_mod, read_node_users


@dataclass
class AttackedRun:
    """A run, what its server saw, and the truth the attacks are scored against."""

    cfg: dict
    run: FederatedRun
    view: ServerView
    pairs: PreferencePairs
    n_users: int
    n_items: int


def attacked_run(cfg: dict, min_rows: int = 5) -> AttackedRun:
    """Run the federated simulation of ``cfg`` with the server's view recorded."""
    view = ServerView()
    with tempfile.TemporaryDirectory(prefix="fedmood-nodes-") as folder:
        run = run_federated_simulation(
            cfg, client_mods=[node_user_mod(folder)], wrap_grid=lambda grid: RecordingGrid(grid, view)
        )
        view.node_user = read_node_users(folder)
    view.final = [run.item_state[k] for k in sorted(run.item_state, key=_key_order)]
    n_users, n_items = data_shape(cfg["data"], int(cfg["seed"]))
    pairs = preference_pairs(cfg, run.centres, n_users, min_rows)
    return AttackedRun(cfg, run, view, pairs, n_users, n_items)


def _key_order(key: str) -> int:
    from fedmood.studies.mood.model import GLOBAL_KEYS

    return GLOBAL_KEYS.index(key)


def attacks(attacked: AttackedRun, n_boot: int = 200) -> list[dict]:
    """Every attack that applies to the run's mechanism, with the observer who can run it.

    The server attacks each client's update when it sees them in the clear, else the round sums and
    who took part; an observer of the released models (knowing who took part: the worst case)
    attacks the released sums, and, where the server's noise is replayable in principle (central DP
    on the SecAgg+ path), regenerates it from the config before disaggregating.
    """
    a, privacy = attacked, PrivacySettings.from_cfg(attacked.cfg)
    p = a.pairs
    out = []

    def add(observer: str, attack: str, scores: np.ndarray) -> None:
        result: AttackResult = evaluate_attack(p.users, p.items, p.labels, p.pick(scores), n_boot=n_boot)
        out.append({"observer": observer, "attack": attack, **result.as_dict()})

    if a.view.updates:
        add("server", "client-updates", client_update_scores(a.view, a.n_users, a.n_items))
    else:  # under central DP with SecAgg+ the server knows the sum before it adds the noise
        add("server", "disaggregation", disaggregation_scores(a.view, a.n_users, a.n_items, exact=True))
    if privacy.central_dp.enabled or not a.view.updates:
        add("release-observer", "disaggregation", disaggregation_scores(a.view, a.n_users, a.n_items))
    if privacy.central_dp.enabled and privacy.secagg.enabled:
        z, clip = a.run.privacy["noise_multiplier"], privacy.central_dp.clipping_norm
        add("release-observer", "replay", replay_scores(a.view, a.n_users, a.n_items, int(a.cfg["seed"]), z, clip))
    return out


def attacked_metamf(data, rounds: int, defence: dict | None = None, seed: int = 0, lr: float = 1e-3) -> dict:
    """Federated MetaMF on ``data`` (a ``RatingSplits``) with its server's exchanges recorded, attacked.

    Returns the attack's figures, the devices' test MAE (the defence's cost is its rise) and, with
    ``defence`` (``{"enabled", "clip", "noise_multiplier"}``), each device's rating-level ε at δ=1e-5
    (every device takes part in every round: ``rounds`` Gaussian releases).
    """
    from fedmood.studies.metamf.client_app import initial_embedding
    from fedmood.studies.metamf.federated_experiment import defence_epsilon, run_federated_metamf
    from fedmood.threat_study.attacks.metamf import attack_federated_metamf

    view = ServerView()
    cfg = {"seed": seed, "training": {"lr": lr, "weight_decay": 1e-3, "grad_clip": 5.0}, "defence": defence or {}}
    with tempfile.TemporaryDirectory(prefix="fedmood-nodes-") as folder:
        _, _, test = run_federated_metamf(
            cfg,
            data,
            rounds,
            wrap_grid=lambda grid: RecordingGrid(grid, view, keep_exchanges=True),
            client_mods=[node_user_mod(folder)],
        )
        view.node_user = read_node_users(folder)
    train = {u: {} for u in range(data.n_users)}
    rated = {u: set() for u in range(data.n_users)}
    for name in ("train", "valid", "test"):
        rows = data.split(name)
        for user, item, rating in zip(rows.users, rows.items, rows.ratings, strict=True):
            rated[int(user)].add(int(item))
            if name == "train":
                train[int(user)][int(item)] = float(rating)
    embeddings = {u: initial_embedding(u, data.n_users, 32, seed).numpy() for u in range(data.n_users)}
    result = attack_federated_metamf(view, train, rated, embeddings).as_dict()
    abs_sum, _, counts = test
    result["test_mae"] = float(abs_sum.sum() / max(counts.sum(), 1))
    result["epsilon"] = defence_epsilon(cfg, rounds)
    return result
