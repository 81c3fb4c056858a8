"""Clustering hourly fragments into "activity items" with the simple-matching dissimilarity.

The distance between two fragments is 1 - (fraction of slots with the same activity), Lyness'
distance and the matching dissimilarity of Huang's k-modes. Centralised clustering uses the
``kmodes`` library. The federated variant is batch k-modes: each client assigns its own fragments
to the current centres and reports only per-cluster counts of each activity in each slot; the server
sums the counts and takes the per-slot mode. Both start from the same centres, built from aggregate
histograms only (:func:`initial_centres`), so their agreement can be measured (adjusted Rand index).
"""

from __future__ import annotations

import numpy as np
from kmodes.kmodes import KModes
from sklearn.metrics import adjusted_rand_score


def matching_dissimilarity(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``(n, k)`` matrix of 1 - fraction of equal slots between fragments ``x`` and ``centres``."""
    x = np.atleast_2d(x)
    centres = np.atleast_2d(centres)
    return 1.0 - (x[:, None, :] == centres[None, :, :]).mean(axis=2)


def assign(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre of every fragment (ties go to the lowest index)."""
    return matching_dissimilarity(x, centres).argmin(axis=1)


def cluster_counts(x: np.ndarray, centres: np.ndarray, n_values: int) -> np.ndarray:
    """What a client sends: ``counts[c, s, v]`` = its fragments in cluster c with value v in slot s."""
    labels = assign(x, centres)
    k, n_slots = centres.shape
    counts = np.zeros((k, n_slots, n_values), dtype=np.int64)
    for s in range(n_slots):
        np.add.at(counts[:, s, :], (labels, x[:, s]), 1)
    return counts


def modes_from_counts(counts: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """New centres: per-slot most frequent value; an empty cluster keeps its previous centre."""
    new = counts.argmax(axis=2)
    empty = counts.sum(axis=(1, 2)) == 0
    new[empty] = previous[empty]
    return new


def slot_histograms(x: np.ndarray, n_values: int) -> tuple[np.ndarray, np.ndarray]:
    """What a client sends for initialisation: per-slot value counts ``(S, V)`` and a histogram
    ``(V,)`` of each fragment's dominant (most frequent) value."""
    n, n_slots = x.shape
    marg = np.zeros((n_slots, n_values), dtype=np.int64)
    for s in range(n_slots):
        marg[s] = np.bincount(x[:, s], minlength=n_values)
    per_frag = np.zeros((n, n_values), dtype=np.int64)
    np.add.at(per_frag, (np.repeat(np.arange(n), n_slots), x.ravel()), 1)
    dominant = np.bincount(per_frag.argmax(axis=1), minlength=n_values)
    return marg, dominant


def initial_centres(marginals: np.ndarray, dominant: np.ndarray, k: int, seed: int) -> np.ndarray:
    """``k`` starting centres from aggregate histograms only (no fragment is ever shared).

    The most common hour types come first: a "pure" centre (every slot the same activity) for each
    of the most frequent dominant activities; if fewer than ``k`` exist, the rest are drawn slot by
    slot from the global per-slot frequencies (Huang's frequency-based initialisation), without
    duplicates.
    """
    n_slots, n_values = marginals.shape
    order = [int(v) for v in np.argsort(-dominant, kind="stable") if dominant[v] > 0]
    centres = [np.full(n_slots, v) for v in order[:k]]
    rng = np.random.default_rng(seed)
    seen = {tuple(c) for c in centres}
    attempts = 0
    while len(centres) < k:
        cand = np.array([rng.choice(n_values, p=marginals[s] / marginals[s].sum()) for s in range(n_slots)])
        attempts += 1
        if tuple(cand) not in seen or attempts > 1000:
            seen.add(tuple(cand))
            centres.append(cand)
    return np.stack(centres).astype(np.int64)


def centres_from_clients(clients: list[np.ndarray], k: int, n_values: int, seed: int) -> np.ndarray:
    """:func:`initial_centres` from the summed histograms of each client's fragments."""
    hists = [slot_histograms(x, n_values) for x in clients]
    return initial_centres(sum(h[0] for h in hists), sum(h[1] for h in hists), k, seed)


def kmodes_centralised(
    x: np.ndarray, init: np.ndarray, max_iter: int = 20, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Centralised k-modes (``kmodes`` library, Huang's matching dissimilarity) from ``init``.

    Returns ``(labels, centres)``.
    """
    km = KModes(n_clusters=len(init), init=init, n_init=1, max_iter=max_iter, random_state=seed)
    labels = km.fit_predict(x)
    return labels.astype(np.int64), km.cluster_centroids_.astype(np.int64)


def agreement(labels_a: np.ndarray, labels_b: np.ndarray) -> float:
    """Adjusted Rand index between two clusterings of the same fragments."""
    return float(adjusted_rand_score(labels_a, labels_b))
