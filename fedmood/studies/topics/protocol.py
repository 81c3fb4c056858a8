"""The personal topic-model protocol (Servia-Rodriguez et al., §IV, Fig. 4): local vs personal.

A shared model M_S is trained on documents that are not the user's. On the device, the user's
documents are modelled twice with the same number of Gibbs iterations: *local*, from scratch, and
*personal*, starting from M_S (:meth:`GibbsLDA.start` with M_S's counts). The paper's measure is
the per-token log2-likelihood of the user's training tokens after each iteration; because an
in-sample likelihood flatters a model, the user's held-out documents are also scored by document
completion (θ estimated on each document's first half with the topics fixed, the second half
scored) and reported as perplexity.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fedmood.studies.topics.gibbs import GibbsLDA, LDAConfig


@dataclass
class Curves:
    """Per-token log2-likelihood of the user's tokens after each iteration (index 0: iteration 1)."""

    local: list[float] = field(default_factory=list)
    personal: list[float] = field(default_factory=list)


def train_shared(docs: list[np.ndarray], config: LDAConfig, vocab_size: int, iterations: int, seed: int) -> GibbsLDA:
    """M_S: LDA from scratch on the shared documents."""
    rng = np.random.default_rng(seed)
    model = GibbsLDA(config, vocab_size).start(docs, rng)
    for _ in range(iterations):
        model.sweep(rng)
    return model


def choose_k(
    k_grid: list[int],
    shared: list[np.ndarray],
    held_out: list[np.ndarray],
    vocab_size: int,
    lda_config: Callable[[int], LDAConfig],
    iterations: int,
    seed: int,
    progress: bool = False,
) -> tuple[pd.DataFrame, dict[int, GibbsLDA], int]:
    """M_S for every K of ``k_grid`` (``lda_config(k)``), scored by document completion on
    ``held_out`` documents; the scores (``k``, ``heldout_perplexity``), the models by K, and the
    K of the lowest perplexity."""
    rows, models = [], {}
    for k in k_grid:
        config = lda_config(int(k))
        models[int(k)] = train_shared(shared, config, vocab_size, iterations, seed)
        ppl = completion_perplexity(models[int(k)].topic_word(), held_out, config)
        rows.append({"k": int(k), "heldout_perplexity": ppl})
        if progress:
            print(f"[topics] K={k}: held-out perplexity {ppl:.1f}", flush=True)
    table = pd.DataFrame(rows)
    return table, models, int(table.loc[table["heldout_perplexity"].idxmin(), "k"])


def local_and_personal(
    shared_counts: np.ndarray, user_docs: list[np.ndarray], config: LDAConfig, iterations: int, seed: int
) -> tuple[Curves, GibbsLDA, GibbsLDA]:
    """Both of the user's models, iteration by iteration; ``(curves, local, personal)``."""
    v = shared_counts.shape[1]
    local = GibbsLDA(config, v).start(user_docs, np.random.default_rng([seed, 0]))
    personal = GibbsLDA(config, v).start(user_docs, np.random.default_rng([seed, 0]), prior=shared_counts)
    rng_l, rng_p = np.random.default_rng([seed, 1]), np.random.default_rng([seed, 2])
    curves = Curves()
    for _ in range(iterations):
        local.sweep(rng_l)
        personal.sweep(rng_p)
        curves.local.append(local.token_log2_likelihood())
        curves.personal.append(personal.token_log2_likelihood())
    return curves, local, personal


def iterations_to_reach(curve: list[float], target: float) -> int | None:
    """The first iteration (1-based) whose likelihood reaches ``target`` (None: never)."""
    return next((i + 1 for i, v in enumerate(curve) if v >= target), None)


def iterations_saved(curves: Curves, target: float | None = None) -> float:
    """Share of the local model's iterations the personal model saves to reach ``target`` (default:
    the local model's final likelihood); NaN when either never reaches it."""
    target = curves.local[-1] if target is None else target
    n_local, n_personal = iterations_to_reach(curves.local, target), iterations_to_reach(curves.personal, target)
    if n_local is None or n_personal is None:
        return math.nan
    return 1.0 - n_personal / n_local


def completion_perplexity(
    topic_word: np.ndarray, docs: list[np.ndarray], config: LDAConfig, iterations: int = 30
) -> float:
    """Document-completion perplexity of held-out ``docs`` under fixed topics ``topic_word`` (K x V).

    Each document's first half (even positions) estimates its topic mixture θ with the topics held
    fixed (``iterations`` of the fold-in EM update θ ∝ α + Σ_i p(z | w_i, θ)); its second half is
    scored, log p(w) = log Σ_z θ_z φ_zw. Perplexity is 2 to the minus mean log2 probability per
    scored token.
    """
    k, a = config.n_topics, config.doc_alpha
    total, n = 0.0, 0
    for doc in docs:
        first, second = doc[0::2], doc[1::2]
        if not len(first) or not len(second):
            continue
        phi_first = topic_word[:, first]
        theta = np.full(k, 1.0 / k)
        for _ in range(iterations):
            r = theta[:, None] * phi_first
            r /= r.sum(axis=0, keepdims=True)
            theta = (r.sum(axis=1) + a) / (len(first) + k * a)
        total += float(np.log2(theta @ topic_word[:, second]).sum())
        n += len(second)
    return float(2 ** (-total / n)) if n else math.nan
