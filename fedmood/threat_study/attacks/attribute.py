"""Attribute inference on the mood recommender: "does this activity lift this user's mood?"

The secret of a (user, item) pair, for every pair with at least ``min_rows`` of the user's hours
on that item: is the user's mean mood on the item above their own mean mood? It is what the
recommender exists to learn, and what the user would least like the server to learn.

Three attackers, each scoring every pair from what it observes (:class:`ServerView`):

* :func:`client_update_scores` (a server that sees each client's update: no mechanism, central
  DP, DP-SGD): a client's item-bias update on item ``j`` moves with its residuals ``y - ŷ`` on its
  hours of ``j``; summed over the rounds and centred over the user's items (the label is relative
  to the user's own mean), it ranks the user's items;
* :func:`disaggregation_scores` (a server that sees only round sums and who took part: SecAgg+
  and the DP mechanisms on top of it; or an observer of the released models who knows the
  participation): the disaggregation attack of Lam et al. (ICML 2021). Each round's item-bias
  update, times its participants and normalised by its size, is regressed on the participation
  matrix (ridge), giving each user a per-item contribution. With every client in every round the
  matrix has rank one and nothing can be told apart (AUC 0.5);
* :func:`replay_scores`: an observer who regenerates the server's seeded noise from the config
  (:class:`~fedmood.privacy.noise.ReplayableNoise`) and subtracts it before disaggregating. It
  succeeds on noise drawn the way fedmood did before its fix (``insecure_replayable_noise``) and
  fails on the OS-entropy noise it draws now.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedmood.privacy.noise import ReplayableNoise
from fedmood.studies.mood.data.local import load_local_data
from fedmood.studies.mood.model import GLOBAL_KEYS
from fedmood.threat_study.attacks.server_view import ServerView

BIAS = GLOBAL_KEYS.index("item_bias.weight")


@dataclass
class PreferencePairs:
    """The attacked pairs and their truth: ``users[i]`` is lifted by ``items[i]`` iff ``labels[i]``."""

    users: np.ndarray
    items: np.ndarray
    labels: np.ndarray

    def pick(self, scores: np.ndarray) -> np.ndarray:
        """An attacker's ``(users, items)`` score matrix read at the pairs."""
        return scores[self.users, self.items]


def preference_pairs(cfg: dict, centres: np.ndarray | None, n_users: int, min_rows: int = 5) -> PreferencePairs:
    """Every (user, item) with at least ``min_rows`` hours, labelled from all of the user's rows."""
    users, items, labels = [], [], []
    for user in range(n_users):
        rows = load_local_data(cfg["data"], user, int(cfg["seed"])).rows(centres)
        mean = float(rows.ratings.mean())
        for item in np.unique(rows.items):
            moods = rows.ratings[rows.items == item]
            if len(moods) >= min_rows:
                users.append(user)
                items.append(int(item))
                labels.append(bool(moods.mean() > mean))
    return PreferencePairs(np.asarray(users), np.asarray(items), np.asarray(labels, dtype=bool))


def _centred(scores: np.ndarray) -> np.ndarray:
    """Each user's scores relative to their mean over items (the label is relative to the user's mean)."""
    return scores - scores.mean(axis=1, keepdims=True)


def client_update_scores(view: ServerView, n_users: int, n_items: int) -> np.ndarray:
    """``(users, items)`` scores from each client's own item-bias updates, summed over rounds."""
    scores = np.zeros((n_users, n_items))
    for rnd, replies in view.updates.items():
        for node, model in replies.items():
            scores[view.node_user[node]] += (model[BIAS] - view.sent[rnd][BIAS]).ravel()
    return _centred(scores)


def disaggregation_scores(
    view: ServerView, n_users: int, n_items: int, ridge: float = 1.0, denoise=None, exact: bool = False
) -> np.ndarray:
    """``(users, items)`` scores from round sums and participation (ridge regression over rounds).

    ``exact``: the sums the server unmasked before adding its noise (the server's view under
    central DP with SecAgg+); ``denoise(round, participants, update)`` may return the update with
    known noise removed (the replay attacker).
    """
    design, targets = [], []
    for rnd in view.rounds:
        members = view.participants.get(rnd, set())
        if not members:
            continue
        update = view.aggregate_update(rnd, exact=exact)
        if denoise is not None:
            update = denoise(rnd, members, update)
        total = update[BIAS].ravel() * len(members)
        scale = float(np.sqrt((total**2).mean())) or 1.0
        row = np.zeros(n_users)
        row[[view.node_user[n] for n in members]] = 1.0
        design.append(row)
        targets.append(total / scale)
    if not design:
        return np.zeros((n_users, n_items))
    m, y = np.asarray(design), np.asarray(targets)
    contributions = np.linalg.solve(m.T @ m + ridge * np.eye(n_users), m.T @ y)
    return _centred(contributions)


def replayed_noise(seed: int, stream: str, shapes: list[tuple[int, ...]], std: float) -> list[np.ndarray]:
    """The noise a replayable source drew for ``stream`` (one draw per array, in order)."""
    source = ReplayableNoise(seed, stream)
    return [source.normal(shape, std) for shape in shapes]


def replay_denoiser(seed: int, noise_multiplier: float, clip: float):
    """``denoise(round, participants, update)``: the update minus the central noise regenerated from ``seed``.

    The SecAgg+ path draws round ``r``'s noise as the stream ``central/round-r`` with standard
    deviation ``z * clip / participants`` (:class:`strategies.central_dp.ClientClippedSum`).
    """

    def denoise(rnd: int, members: set[int], update: list[np.ndarray]) -> list[np.ndarray]:
        std = noise_multiplier * clip / len(members)
        noise = replayed_noise(seed, f"central/round-{rnd}", [a.shape for a in update], std)
        return [a - n for a, n in zip(update, noise, strict=True)]

    return denoise


def replay_scores(view: ServerView, n_users: int, n_items: int, seed: int, noise_multiplier: float, clip: float):
    """Disaggregation after subtracting the central noise regenerated from the config's ``seed``."""
    denoise = replay_denoiser(seed, noise_multiplier, clip)
    return disaggregation_scores(view, n_users, n_items, denoise=denoise)
