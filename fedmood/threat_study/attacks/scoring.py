"""How well an attacker's scores separate "this item lifts this user's mood" from "it does not".

The target of every attack here is a binary attribute per (user, item) pair. Items differ a lot in
how often they lift a mood (music more often than paid work), so a pooled AUC rewards knowing the
population: an attacker who knows only that prior already scores above 0.5. Two views therefore:

* **within-item AUC**: among the users of one item, does the attack rank those it lifts above those
  it does not? Pooled over items as the share of correctly ordered (positive, negative) pairs of the
  same item; 0.5 means nothing personal leaks. A 95 % interval from a bootstrap over users;
* **pooled AUC against a prior-only attacker**: the prior attacker scores a pair by the share of
  *other* users the item lifts; the attack adds its within-item standardised score to that prior's
  logit. Their difference is what the attack learnt about the person beyond the population. TPR at
  5 % FPR is read off the attack's pooled ROC curve.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


@dataclass
class AttackResult:
    """One attack's figures (AUCs in [0, 1]; ``nan`` where undefined)."""

    auc_within: float
    auc_within_low: float
    auc_within_high: float
    auc_pooled: float
    auc_prior: float
    tpr_at_5fpr: float
    pairs: int
    users: int

    def as_dict(self) -> dict:
        return asdict(self)


def _residue(scores: np.ndarray) -> float:
    """Differences below this are floating-point residue, not information (1e-9 of the largest score)."""
    return 1e-9 * (float(np.abs(scores).max(initial=0.0)) or 1.0)


def _pairs_and_concordance(labels: np.ndarray, scores: np.ndarray, tiny: float) -> tuple[float, float]:
    """(correctly ordered pairs, pairs) among one item's users; ties (within ``tiny``) count one half."""
    pos, neg = scores[labels], scores[~labels]
    if not len(pos) or not len(neg):
        return 0.0, 0.0
    diff = pos[:, None] - neg[None, :]
    return float((diff > tiny).sum() + 0.5 * (np.abs(diff) <= tiny).sum()), float(diff.size)


def within_item_auc(users: np.ndarray, items: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> float:
    """Share of correctly ordered (positive, negative) pairs of users of the same item."""
    good = total = 0.0
    tiny = _residue(scores)
    for item in np.unique(items):
        mask = items == item
        g, t = _pairs_and_concordance(labels[mask], scores[mask], tiny)
        good, total = good + g, total + t
    return good / total if total else float("nan")


def prior_scores(items: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each pair's prior: the share of the *other* users of its item whom the item lifts (smoothed)."""
    out = np.empty(len(labels))
    for item in np.unique(items):
        mask = items == item
        ones, count = labels[mask].sum(), mask.sum()
        out[mask] = (ones - labels[mask] + 0.5) / (count - 1 + 1.0)  # leave the pair's own user out
    return out


def _standardised_within_item(items: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Scores as z-scores among each item's users; an item whose scores do not differ (beyond
    floating-point residue) gets 0 for all: its pairs are ranked by the prior alone."""
    out = np.zeros(len(scores))
    tiny = _residue(scores)
    for item in np.unique(items):
        mask = items == item
        sd = scores[mask].std()
        out[mask] = (scores[mask] - scores[mask].mean()) / sd if sd > tiny else 0.0
    return out


def evaluate_attack(
    users: np.ndarray, items: np.ndarray, labels: np.ndarray, scores: np.ndarray, n_boot: int = 200, seed: int = 0
) -> AttackResult:
    """The attack's figures for its ``scores`` of the ``(users, items)`` pairs whose truth is ``labels``."""
    users, items = np.asarray(users), np.asarray(items)
    labels, scores = np.asarray(labels, dtype=bool), np.asarray(scores, dtype=np.float64)
    auc = within_item_auc(users, items, labels, scores)
    rng = np.random.default_rng(seed)
    unique_users = np.unique(users)
    rows = {u: np.flatnonzero(users == u) for u in unique_users}
    boot = []
    for _ in range(n_boot):
        pick = np.concatenate([rows[u] for u in rng.choice(unique_users, size=len(unique_users))])
        boot.append(within_item_auc(users[pick], items[pick], labels[pick], scores[pick]))
    boot = np.asarray([b for b in boot if np.isfinite(b)])
    prior = prior_scores(items, labels)
    logit = np.log(np.clip(prior, 1e-3, 1 - 1e-3) / np.clip(1 - prior, 1e-3, 1 - 1e-3))
    pooled = logit + _standardised_within_item(items, scores)
    both = len(np.unique(labels)) == 2
    fpr, tpr, _ = roc_curve(labels, pooled) if both else (np.zeros(1), np.zeros(1), None)
    return AttackResult(
        auc_within=auc,
        auc_within_low=float(np.percentile(boot, 2.5)) if len(boot) else float("nan"),
        auc_within_high=float(np.percentile(boot, 97.5)) if len(boot) else float("nan"),
        auc_pooled=float(roc_auc_score(labels, pooled)) if both else float("nan"),
        auc_prior=float(roc_auc_score(labels, prior)) if both else float("nan"),
        tpr_at_5fpr=float(tpr[fpr <= 0.05].max()) if both else float("nan"),
        pairs=len(labels),
        users=len(unique_users),
    )
