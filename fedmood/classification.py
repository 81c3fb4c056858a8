"""Classifiers' shared pieces: the cross-entropy loss for the one trainer, prediction, scores.

Used by the anonymisation study's window CNNs (:mod:`fedmood.studies.aae`) and by the personal-model
study's feature MLPs (:mod:`fedmood.studies.personal`).
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
