"""Federated Averaging with Spreadout (FedAwS; Yu, Rawat, Menon & Kumar, ICML 2020, "Federated
Learning with Only Positive Labels") for devices that each hold a single class.

With one class per device, a softmax classifier trained locally learns "my class for everything"
and the FedAvg of such classifiers separates nothing. FedAwS splits the classifier into a feature
network and a matrix ``W`` of class embeddings (one row per class; logits = scaled cosine of the
features and each row). A device trains the feature network and *its own row only*, with a loss on
its positive class alone (:func:`fedmood.classification.positive_cosine_loss`); the server
averages the feature network as FedAvg does, takes each row from the device that moved it (the sum
of the devices' changes: every other device leaves a row as it was), and then pushes the rows
apart with a gradient step on the spreadout regulariser (:func:`spreadout_step`), the term a
device cannot compute without the other classes.

:class:`FedAwS` wraps any Message-API strategy that averages arrays (FedAvg, ``AlternatingFedAvg``)
and treats the arrays named in ``embedding_keys`` so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from strategies.wrapped import WrappedStrategy


def spreadout_penalty(w: np.ndarray, margin: float) -> float:
    """``Σ_{c ≠ c'} max(0, ν − ‖w_c − w_c'‖)²`` over ordered pairs of rows of ``w`` (ν = ``margin``)."""
    dist = _distances(w)
    return float((np.maximum(0.0, margin - dist) ** 2).sum())


def spreadout_step(w: np.ndarray, margin: float, lr: float) -> np.ndarray:
    """One gradient step of size ``lr`` on :func:`spreadout_penalty`: rows closer than ``margin`` move apart.

    Its gradient with respect to row ``c`` is ``Σ_{c'} −4 · max(0, ν − d_cc') · (w_c − w_c') / d_cc'``
    (each unordered pair appears twice in the sum); rows that coincide exactly are left as they are
    (no direction to push them in).
    """
    w = np.asarray(w, dtype=np.float64)
    diff = w[:, None, :] - w[None, :, :]
    dist = _distances(w)
    active = np.maximum(0.0, margin - dist)
    with np.errstate(divide="ignore", invalid="ignore"):
        coef = np.where(dist > 0, -4.0 * active / dist, 0.0)
    grad = (coef[:, :, None] * diff).sum(axis=1)
    return w - lr * grad


def _distances(w: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances of the rows, ``inf`` on the diagonal (a row is not its own neighbour)."""
    w = np.asarray(w, dtype=np.float64)
    dist = np.linalg.norm(w[:, None, :] - w[None, :, :], axis=2)
    np.fill_diagonal(dist, np.inf)
    return dist


def normalise_rows(w: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (the cosine head compares directions)."""
    return w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)


class FedAwS(WrappedStrategy):
    """``strategy``'s aggregation, with FedAwS's treatment of the class-embedding arrays.

    For each array named in ``embedding_keys`` the new value is the round's start plus the sum of
    every replying device's change (each device moves its own row only), rows normalised, then
    ``spreadout_steps`` steps of :func:`spreadout_step` (``margin``, ``lr``) and normalised again.
    A round in which no device moved an embedding (e.g. a phase that trains something else) leaves
    them as they were.
    """

    def __init__(
        self,
        strategy: Strategy,
        embedding_keys: Sequence[str],
        margin: float = 1.0,
        lr: float = 0.1,
        spreadout_steps: int = 1,
    ) -> None:
        super().__init__(strategy)
        if not embedding_keys:
            raise ValueError("FedAwS needs the names of the class-embedding arrays (embedding_keys)")
        self.embedding_keys = tuple(embedding_keys)
        self.margin, self.lr, self.spreadout_steps = float(margin), float(lr), int(spreadout_steps)
        self._start: dict[str, np.ndarray] = {}

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid):
        missing = [k for k in self.embedding_keys if k not in arrays]
        if missing:
            raise KeyError(f"FedAwS: the model has no array {missing[0]!r} (arrays: {', '.join(arrays)})")
        self._start = {k: arrays[k].numpy() for k in self.embedding_keys}
        return self.strategy.configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]):
        replies = list(replies)
        arrays, metrics = self.strategy.aggregate_train(server_round, replies)
        if arrays is None:
            return arrays, metrics
        received = [r.content["arrays"] for r in replies if not r.has_error()]
        for key in self.embedding_keys:
            start = self._start[key]
            change = sum((r[key].numpy().astype(np.float64) - start for r in received), np.zeros(start.shape))
            if not np.any(change):
                arrays[key] = Array(start)
                continue
            w = normalise_rows(start + change)
            for _ in range(self.spreadout_steps):
                w = normalise_rows(spreadout_step(w, self.margin, self.lr))
            arrays[key] = Array(w.astype(start.dtype))
        return arrays, metrics
