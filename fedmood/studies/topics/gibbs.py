"""LDA by collapsed Gibbs sampling, on a state fedmood owns and the ``lda`` package's Cython kernel.

The ``lda`` package samples topics fast but always starts from scratch; the paper's *personal*
model starts from a shared model M_S. So :class:`GibbsLDA` keeps the counts itself and hands them
to ``lda``'s kernel (``lda._lda._sample_topics``) for each sweep:

* the *local* model starts from nothing: every token's topic drawn uniformly;
* the *personal* model starts from M_S (:meth:`GibbsLDA.start` with ``prior``): M_S's topic-word
  counts are kept as fixed counts in the topic-word table (they are never resampled: the shared
  documents are not on the device), and every token of the user's documents gets its first topic
  drawn from M_S's posterior for its word, p(z | w) ∝ (n_zw + β) / (n_z + Vβ).

Hyper-parameters as the paper's (Owl): α = 50 / K, β = 0.1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import lda._lda as kernel
import numpy as np


def topic_word_of(counts: np.ndarray, eta: float) -> np.ndarray:
    """φ from topic-word counts: each topic's distribution over words, (n_zw + β) / (n_z + Vβ)."""
    counts = np.asarray(counts, dtype=np.float64)
    return (counts + eta) / (counts.sum(axis=1, keepdims=True) + counts.shape[1] * eta)


@dataclass(frozen=True)
class LDAConfig:
    """Topics and Dirichlet priors; ``alpha`` None is the paper's 50 / K."""

    n_topics: int = 20
    alpha: float | None = None
    eta: float = 0.1

    @property
    def doc_alpha(self) -> float:
        return 50.0 / self.n_topics if self.alpha is None else float(self.alpha)


class GibbsLDA:
    """The sampling state of one LDA model over ``docs`` (word indices into a ``vocab_size`` dictionary)."""

    def __init__(self, config: LDAConfig, vocab_size: int) -> None:
        self.config, self.vocab_size = config, int(vocab_size)
        k = config.n_topics
        self.prior = np.zeros((k, self.vocab_size), dtype=np.intc, order="F")
        self.nzw = np.zeros((k, self.vocab_size), dtype=np.intc, order="F")
        self.nz = np.zeros(k, dtype=np.intc)
        self.ndz = np.zeros((0, k), dtype=np.intc)
        self.WS = self.DS = self.ZS = np.zeros(0, dtype=np.intc)

    def start(
        self,
        docs: list[np.ndarray],
        rng: np.random.Generator,
        prior: np.ndarray | None = None,
        keep_prior: bool = False,
    ) -> GibbsLDA:
        """First topics of every token: uniform (from scratch), or from ``prior``'s posterior (M_S's counts),
        which with ``keep_prior`` also stay in the topic-word table as fixed counts."""
        k = self.config.n_topics
        words = np.concatenate(docs).astype(np.intc) if docs else np.zeros(0, np.intc)
        if prior is None:
            return self.resume(docs, rng.integers(0, k, len(words)))
        prior = self._checked(prior)
        p = topic_word_of(prior, self.config.eta)[:, words]  # (k, tokens): p(z | w) up to its normaliser
        cum = np.cumsum(p / p.sum(axis=0, keepdims=True), axis=0)
        z = np.minimum((cum < rng.random(len(words))).sum(axis=0), k - 1)
        return self.resume(docs, z, prior if keep_prior else None)

    def resume(self, docs: list[np.ndarray], topics: np.ndarray, fixed: np.ndarray | None = None) -> GibbsLDA:
        """The state of ``docs`` with their tokens' ``topics`` given, and ``fixed`` counts (never
        resampled: other documents' or a shared model's) in the topic-word table."""
        k, v = self.config.n_topics, self.vocab_size
        self.WS = np.concatenate(docs).astype(np.intc) if docs else np.zeros(0, np.intc)
        self.DS = np.repeat(np.arange(len(docs)), [len(d) for d in docs]).astype(np.intc)
        if len(self.WS) and (self.WS.min() < 0 or self.WS.max() >= v):
            raise ValueError(f"word index outside the {v}-word vocabulary")
        if len(topics) != len(self.WS):
            raise ValueError(f"{len(topics)} topics for {len(self.WS)} tokens")
        self.ZS = np.asarray(topics, dtype=np.intc).copy()
        self.prior = np.zeros((k, v), dtype=np.intc, order="F") if fixed is None else self._checked(fixed)
        self.nzw = self.prior.copy(order="F")
        np.add.at(self.nzw, (self.ZS, self.WS), 1)
        self.ndz = np.zeros((len(docs), k), dtype=np.intc)
        np.add.at(self.ndz, (self.DS, self.ZS), 1)
        self.nz = self.nzw.sum(axis=1).astype(np.intc)
        return self

    def _checked(self, counts: np.ndarray) -> np.ndarray:
        counts = np.asarray(counts)
        k, v = self.config.n_topics, self.vocab_size
        if counts.shape != (k, v) or (counts.size and counts.min() < 0):
            raise ValueError(f"a shared model's counts must be a ({k}, {v}) table of counts, got {counts.shape}")
        return np.asfortranarray(counts, dtype=np.intc)

    def sweep(self, rng: np.random.Generator) -> None:
        """One Gibbs iteration over every token of the documents (``lda``'s kernel)."""
        k = self.config.n_topics
        alpha = np.full(k, self.config.doc_alpha, dtype=np.float64)
        eta = np.full(self.vocab_size, self.config.eta, dtype=np.float64)
        kernel._sample_topics(self.WS, self.DS, self.ZS, self.nzw, self.ndz, self.nz, alpha, eta, rng.random(131_071))

    def topic_word(self) -> np.ndarray:
        """φ of the current counts (:func:`topic_word_of`)."""
        return topic_word_of(self.nzw, self.config.eta)

    def doc_topic(self) -> np.ndarray:
        """θ: each document's distribution over topics, (n_d z + α) / (n_d + Kα)."""
        a = self.config.doc_alpha
        return (self.ndz + a) / (self.ndz.sum(axis=1, keepdims=True) + self.config.n_topics * a)

    def token_log2_likelihood(self) -> float:
        """Mean over the documents' tokens of log2 p(w | d) = log2 Σ_z θ_dz φ_zw (the paper's measure)."""
        if not len(self.WS):
            return math.nan
        phi, theta = self.topic_word(), self.doc_topic()
        p = np.einsum("ik,ki->i", theta[self.DS], phi[:, self.WS])
        return float(np.mean(np.log2(p)))

    def own_counts(self) -> np.ndarray:
        """The topic-word counts of these documents alone (without the prior): what a device would share."""
        return np.asarray(self.nzw - self.prior)
