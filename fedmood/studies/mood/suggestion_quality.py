"""Suggestion quality, measured against the truth.

On generated data the truth is the generator's per-user affinity for every activity
(``_generator.json`` beside the logs): a user's true mood in an activity item is the mean affinity
over its centre's slots, exactly how the generator draws the mood of an hour. On a user's own logs
there is no such truth; the held-out days stand in for it (the user's mean mood per item on their
validation rows, over the items seen there).

Per user, over the feasible discretionary items (:mod:`fedmood.studies.mood.suggest`):

* **precision@k**: the share of the top-k predicted items that are among the k truly best;
* **NDCG@k**: discounted gain of the predicted order against the ideal one (relevance = true mood
  minus the worst feasible item's);
* **gain**: the true mood of the top suggestion minus the user's average true mood over their own
  hours (what following it would change), next to the **oracle**'s (the truly best feasible item);
* the same for a **popularity** baseline: every user gets the items with the best mean mood over
  all users' training hours.

Users with no more than k feasible items carry no ranking information and are left out of
precision and NDCG (counted in ``ranked_users``); every user counts for the gains.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fedmood.studies.mood.data.local import LocalData
from fedmood.studies.mood.suggest import OwnHours, SuggestContext, discretionary_items, suggest, suggest_kinds

K = 3


@dataclass
class Truth:
    """The true mood of every user in every activity item, and where it came from."""

    moods: np.ndarray  # (n_users, n_items), NaN where unknown
    source: str  # "generator" or "held-out days"


def generator_truth(logs_dir: str | Path, centres: np.ndarray) -> Truth | None:
    """Each user's true mood per item from the generator's affinities (None: not generated data)."""
    meta_path = Path(logs_dir) / "_generator.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    affinity = np.asarray(meta["true_affinity"], dtype=np.float64)
    centres = np.asarray(centres)
    if centres.max() >= affinity.shape[1]:
        raise ValueError(f"{meta_path}: an item uses an activity the generator did not draw")
    return Truth(affinity[:, centres].mean(axis=2), "generator")


def held_out_truth(devices: list[LocalData], centres: np.ndarray | None, n_items: int) -> Truth:
    """Each user's mean mood per item on their held-out (validation) hours; NaN where unseen."""
    moods = np.full((len(devices), n_items), np.nan)
    for d in devices:
        items, ratings = d.rows(centres).part("val")
        for item in np.unique(items):
            moods[d.user, item] = float(ratings[items == item].mean())
    return Truth(moods, "held-out days")


def precision_at_k(predicted: np.ndarray, true: np.ndarray, k: int = K) -> float:
    """Share of the top-``k`` by ``predicted`` that are in the top-``k`` by ``true`` (same items)."""
    top_p = set(np.argsort(-predicted, kind="stable")[:k].tolist())
    top_t = set(np.argsort(-true, kind="stable")[:k].tolist())
    return len(top_p & top_t) / min(k, len(true))


def ndcg_at_k(predicted: np.ndarray, true: np.ndarray, k: int = K) -> float:
    """NDCG@k of the order by ``predicted``; relevance is ``true`` minus its minimum (1.0 if all equal)."""
    relevance = true - true.min()
    discounts = 1.0 / np.log2(np.arange(2, k + 2))[: min(k, len(true))]
    dcg = float((relevance[np.argsort(-predicted, kind="stable")[:k]] * discounts).sum())
    ideal = float((np.sort(relevance)[::-1][:k] * discounts).sum())
    return dcg / ideal if ideal > 0 else 1.0


def popularity_scores(devices: list[LocalData], centres: np.ndarray | None, n_items: int) -> np.ndarray:
    """Mean mood per item over every user's training hours (the baseline a server could publish)."""
    sums, counts = np.zeros(n_items), np.zeros(n_items)
    for d in devices:
        items, ratings = d.rows(centres).part("train")
        np.add.at(sums, items, ratings)
        np.add.at(counts, items, 1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), -np.inf)


def user_quality(
    predicted: np.ndarray, true: np.ndarray, candidates: np.ndarray, average: float, k: int = K
) -> dict[str, float]:
    """precision@k, NDCG@k and the gain of one user's ranking of ``candidates`` (NaN where undefined)."""
    known = candidates[np.isfinite(true[candidates])]
    if not len(known):
        return {"p_at_k": np.nan, "ndcg_at_k": np.nan, "gain": np.nan, "oracle_gain": np.nan, "ranked": 0.0}
    p, t = predicted[known], true[known]
    ranked = len(known) > k
    return {
        "p_at_k": precision_at_k(p, t, k) if ranked else np.nan,
        "ndcg_at_k": ndcg_at_k(p, t, k) if ranked else np.nan,
        "gain": float(t[np.argmax(p)] - average),
        "oracle_gain": float(t.max() - average),
        "ranked": float(ranked),
    }


def evaluate_rankings(
    predicted: dict[str, np.ndarray],
    devices: list[LocalData],
    centres: np.ndarray | None,
    truth: Truth,
    context: SuggestContext,
    kinds,
    k: int = K,
    baseline: bool = True,
) -> pd.DataFrame:
    """One row per (model, user): the quality of each model's predictions (``{model: (n_users, n_items)}``).

    With ``baseline`` the popularity baseline is added as the model ``popularity``; the suggestions actually produced
    (top ``k`` of the feasible items) are checked for non-discretionary items, and so are the
    top ``k`` over all items (what an unfiltered recommender would have shown).
    """
    n_items = truth.moods.shape[1]
    allowed = discretionary_items(centres, n_items, kinds)
    everything = np.ones(n_items, dtype=bool)
    models = dict(predicted)
    if baseline:
        models["popularity"] = np.broadcast_to(popularity_scores(devices, centres, n_items), (len(devices), n_items))
    rows = []
    for d in devices:
        own = OwnHours.of(d, centres)
        candidates, unfiltered = own.feasible(context, allowed), own.feasible(context, everything)
        true_u = truth.moods[d.user]
        seen = true_u[own.items]
        average = float(np.nanmean(seen)) if len(seen) and np.isfinite(seen).any() else np.nan
        for model, scores in models.items():
            pred_u = np.asarray(scores[d.user], dtype=np.float64)
            shown = suggest(pred_u, candidates, own.items, own.moods, k, centres)
            top_unfiltered = unfiltered[np.argsort(-pred_u[unfiltered], kind="stable")][:k]
            rows.append(
                {
                    "model": model,
                    "user": d.user,
                    "feasible": len(candidates),
                    **user_quality(pred_u, true_u, candidates, average, k),
                    "non_discretionary": float(np.mean([not allowed[s.item] for s in shown])) if shown else 0.0,
                    "non_discretionary_unfiltered": float(np.mean(~allowed[top_unfiltered])),
                }
            )
    return pd.DataFrame(rows)


def quality_summary(per_user: pd.DataFrame) -> pd.DataFrame:
    """Per model: mean precision@k, NDCG@k, gain, oracle gain, non-discretionary shares, users ranked."""
    grouped = per_user.groupby("model", sort=False)
    out = grouped[["p_at_k", "ndcg_at_k", "gain", "oracle_gain", "non_discretionary"]].mean()
    out["non_discretionary_unfiltered"] = grouped["non_discretionary_unfiltered"].mean()
    out["ranked_users"] = grouped["ranked"].sum().astype(int)
    out["users"] = grouped.size()
    return out.reset_index()


def run_truth(data_cfg: dict, devices: list[LocalData], centres: np.ndarray | None, n_items: int) -> Truth:
    """The generator's truth for generated logs, else the users' held-out days."""
    logs_dir = data_cfg.get("logs_dir")
    found = generator_truth(logs_dir, centres) if logs_dir and centres is not None else None
    return found if found is not None else held_out_truth(devices, centres, n_items)


def headline(summary: pd.DataFrame) -> dict[str, float]:
    """``<model>_p3``, ``<model>_ndcg3``, ``<model>_gain`` per model, the oracle's gain and the share
    of non-discretionary suggestions (shown, and what an unfiltered top-k would have shown)."""
    out: dict[str, float] = {}
    for row in summary.itertuples():
        out |= {f"{row.model}_p{K}": row.p_at_k, f"{row.model}_ndcg{K}": row.ndcg_at_k, f"{row.model}_gain": row.gain}
    out["oracle_gain"] = float(summary["oracle_gain"].max())
    out["non_discretionary_share"] = float(summary["non_discretionary"].max())
    out["non_discretionary_share_unfiltered"] = float(summary["non_discretionary_unfiltered"].max())
    return out


def model_quality(
    cfg: dict, devices: list[LocalData], centres: np.ndarray | None, predicted: dict[str, np.ndarray], baseline: bool
) -> pd.DataFrame:
    """:func:`evaluate_rankings` in the run's ``suggest`` context, against the run's truth, labelled with both."""
    n_items = next(iter(predicted.values())).shape[1]
    truth = run_truth(cfg["data"], devices, centres, n_items)
    context = SuggestContext.from_cfg(cfg)
    table = evaluate_rankings(predicted, devices, centres, truth, context, suggest_kinds(cfg), baseline=baseline)
    table.insert(2, "context", context.describe())
    table.insert(3, "truth", truth.source)
    return table
