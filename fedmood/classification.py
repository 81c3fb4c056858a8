"""Classifiers' shared pieces: the cross-entropy loss for the one trainer, prediction, scores.

Used by the anonymisation study's window CNNs (:mod:`fedmood.studies.aae`) and by the personal-model
study's feature MLPs (:mod:`fedmood.studies.personal`); linear discriminants fitted from summed
per-class statistics (:func:`class_statistics`, :func:`lda_head`: the federated identity heads of
:mod:`strategies.fedlda` and the anonymisation study's adaptive attacker).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from fedmood.training import TensorBatches


def cross_entropy(model: torch.nn.Module, batch: TensorBatches) -> torch.Tensor:
    """The loss of a classifier on a batch of (inputs, labels, ...), for ``train_epoch(loss_fn=...)``."""
    x, y = batch.tensors[:2]
    return F.cross_entropy(model(x), y)


@torch.no_grad()
def predict(model: torch.nn.Module, x: np.ndarray | torch.Tensor, batch_size: int = 4096) -> np.ndarray:
    """Predicted class of every row of ``x`` (evaluation mode)."""
    model.eval()
    x = torch.as_tensor(np.asarray(x, np.float32))
    return torch.cat([model(x[s : s + batch_size]).argmax(1) for s in range(0, len(x), batch_size)]).numpy()


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1, in percent."""
    from sklearn.metrics import accuracy_score, f1_score  # not imported on a device that only trains

    return {
        "accuracy": 100 * float(accuracy_score(y_true, y_pred)),
        "macro_f1": 100 * float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


class CosineHead(torch.nn.Module):
    """Logits = ``scale`` × cosine of the features and each class embedding (a row of :attr:`class_embeddings`).

    The head FedAwS trains (:mod:`strategies.fedaws`): a device with one class moves only its own
    row; the server keeps the rows apart.
    """

    def __init__(self, features: int, n_classes: int, scale: float = 10.0) -> None:
        super().__init__()
        self.class_embeddings = torch.nn.Parameter(F.normalize(torch.randn(n_classes, features), dim=1))
        self.scale = float(scale)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(h, dim=1) @ F.normalize(self.class_embeddings, dim=1).T


def positive_cosine_loss(logits: torch.Tensor, labels: torch.Tensor, scale: float, margin: float = 0.9) -> torch.Tensor:
    """FedAwS's loss on positive labels only: ``max(0, margin − cos(h, w_y))²``, batch mean.

    ``logits`` come from a :class:`CosineHead` of ``scale``; only the labels' own rows (and the
    features) receive a gradient, so a device holding one class never touches another's embedding.
    """
    cos = logits.gather(1, labels[:, None]).squeeze(1) / scale
    return (torch.clamp(margin - cos, min=0.0) ** 2).mean()


def class_statistics(features: np.ndarray, label: int, n_classes: int) -> dict[str, np.ndarray]:
    """One device's statistics for class ``label``: count, feature sum (its row only) and scatter
    of its features about their own mean (float64)."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or not len(f):
        raise ValueError(f"class_statistics: expected a non-empty (n, d) feature matrix, got shape {f.shape}")
    count, sums = np.zeros(n_classes), np.zeros((n_classes, f.shape[1]))
    count[label], sums[label] = len(f), f.sum(axis=0)
    centred = f - f.mean(axis=0)
    return {"count": count, "sum": sums, "scatter": centred.T @ centred}


def lda_head(
    count: np.ndarray, sums: np.ndarray, scatter: np.ndarray, shrinkage: float = 0.1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights (K x d), biases (K) of the linear discriminant from summed statistics, and the mask
    of the classes that had windows (the others get no weights here: the caller keeps theirs).

    ``scatter`` is the sum of the devices' within-class scatters; with one class per device it is
    the pooled within-class scatter.
    """
    if not 0.0 <= shrinkage <= 1.0:
        raise ValueError(f"lda_head: shrinkage {shrinkage} is not in [0, 1]")
    present = count > 0
    n, k = float(count.sum()), int(present.sum())
    if k < 2 or n <= k:
        raise ValueError(f"lda_head: needs windows of at least 2 classes and more windows than classes ({n:.0f}, {k})")
    d = scatter.shape[0]
    means = sums[present] / count[present][:, None]
    cov = scatter / (n - k)
    cov = (1.0 - shrinkage) * cov + shrinkage * np.trace(cov) / d * np.eye(d)
    weights = np.linalg.solve(cov, means.T).T
    biases = -0.5 * (weights * means).sum(axis=1) + np.log(count[present] / n)
    return weights, biases, present
