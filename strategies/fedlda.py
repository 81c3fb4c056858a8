"""Federated linear discriminant heads for devices that each hold a single class.

A softmax head trained on one class per device learns "my class for everything" and the FedAvg of
such heads separates nothing (FedAwS, :mod:`strategies.fedaws`, moves the problem into the
features: on MotionSense its local epochs still collapse them). A linear discriminant needs no
training at all: it is a function of each class's mean and of the pooled within-class covariance,
and both are sums over devices. Each device computes, on features of its own windows from a
network every device shares (in fedmood: a frozen, seeded convolutional trunk), its count, the sum
of its features (in its own class's row) and the scatter of its features about their own mean;
the server adds them up and solves for the head

    W_k = Σ⁻¹ μ_k,   b_k = −½ μ_kᵀ Σ⁻¹ μ_k + log(n_k / n)

with ``Σ`` the pooled within-class covariance shrunk towards a multiple of the identity
(``shrinkage``: ``(1 − γ) Σ + γ · tr(Σ)/d · I``). The result equals the head fitted on the pooled
windows, to rounding: nothing is lost to the one-class split
(:func:`fedmood.classification.lda_head`; tested against the centralised fit). The server learns
each class's mean feature, as FedAwS's server learns each class's embedding, and the scatter of
each device's features (only their sum is needed: it could travel under SecAgg+; not done here).

:class:`FederatedLDA` wraps a Message-API strategy that averages arrays (FedAvg,
``AlternatingFedAvg``): it takes the statistics out of every reply (the record ``STATS_RECORD``,
arrays ``<head>.count`` (K), ``<head>.sum`` (K x d) and ``<head>.scatter`` (d x d)) before the
wrapped strategy aggregates the models, then writes each head's weight and bias into the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from fedmood.classification import lda_head
from strategies.wrapped import WrappedStrategy

#: The name of the replies' record of discriminant statistics (beside the model's ``arrays``).
STATS_RECORD = "lda_stats"


class FederatedLDA(WrappedStrategy):
    """``strategy``'s aggregation, with the heads named in ``heads`` (``{head: (weight key, bias
    key)}``) refitted from the replies' summed discriminant statistics (:func:`fedmood.classification.lda_head`).

    A round whose replies carry no statistics (a phase that trains something else) leaves the
    heads as the wrapped strategy aggregated them; classes without windows keep their rows.
    """

    def __init__(self, strategy: Strategy, heads: Mapping[str, tuple[str, str]], shrinkage: float = 0.1) -> None:
        super().__init__(strategy)
        if not heads:
            raise ValueError("FederatedLDA needs the heads to fit ({head: (weight key, bias key)})")
        if not 0.0 <= shrinkage <= 1.0:
            raise ValueError(f"FederatedLDA: shrinkage {shrinkage} is not in [0, 1]")
        self.heads, self.shrinkage = dict(heads), float(shrinkage)

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid):
        missing = [k for pair in self.heads.values() for k in pair if k not in arrays]
        if missing:
            raise KeyError(f"FederatedLDA: the model has no array {missing[0]!r} (arrays: {', '.join(arrays)})")
        return self.strategy.configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]):
        replies = list(replies)
        summed = self._take_statistics(replies)
        arrays, metrics = self.strategy.aggregate_train(server_round, replies)
        if arrays is None or not summed:
            return arrays, metrics
        for head, (weight_key, bias_key) in self.heads.items():
            if head not in summed:
                continue
            weights, biases, present = lda_head(*summed[head], shrinkage=self.shrinkage)
            w, b = arrays[weight_key].numpy().copy(), arrays[bias_key].numpy().copy()
            w[present], b[present] = weights, biases
            arrays[weight_key], arrays[bias_key] = Array(w), Array(b)
        return arrays, metrics

    def _take_statistics(self, replies: list[Message]) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Sum (count, sum, scatter) per head over the replies, removing the statistics record from
        each (the wrapped strategy expects the model's record alone)."""
        summed: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for reply in replies:
            if reply.has_error() or STATS_RECORD not in reply.content:
                continue
            record = reply.content[STATS_RECORD]
            del reply.content[STATS_RECORD]
            for head in self.heads:
                if f"{head}.count" not in record:
                    continue
                parts = tuple(record[f"{head}.{p}"].numpy().astype(np.float64) for p in ("count", "sum", "scatter"))
                if head in summed:
                    parts = tuple(a + p for a, p in zip(summed[head], parts, strict=True))
                summed[head] = parts
        return summed
