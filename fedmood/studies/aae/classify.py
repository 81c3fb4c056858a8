"""Window classifiers (:class:`WindowCNN`) trained with the package's one training loop.

With validation windows (``fit_classifier(..., val=(x, y))``) training keeps the epoch of best
validation macro-F1 and stops after ``patience`` epochs without gain (the paper's evaluation
classifiers do the same, on the short trials of the training subjects); without, it trains
``epochs`` epochs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fedmood.classification import cross_entropy, predict, scores
from fedmood.studies.aae.model import WindowCNN
from fedmood.training import BestEpoch, TensorBatches, shuffled_batches, train_epoch


@dataclass(frozen=True)
class ClassifierConfig:
    """Training of a fresh evaluation classifier (Hydra ``classifier`` group)."""

    epochs: int = 6
    lr: float = 1e-3
    batch_size: int = 128
    hidden: int = 32
    patience: int = 3  # with validation windows: stop after this many epochs without a better macro-F1
    validation: bool = False  # activity evaluation: select the epoch on the training subjects' short trials


def fit_classifier(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    cfg: ClassifierConfig,
    seed: int = 0,
    model: WindowCNN | None = None,
    val: tuple[np.ndarray, np.ndarray] | None = None,
) -> WindowCNN:
    """Train a :class:`WindowCNN` (or go on training ``model``) on windows ``x`` with labels ``y``.

    With ``val`` = (windows, labels), the returned weights are those of the epoch with the best
    validation macro-F1 (at most ``cfg.epochs`` epochs, stopping after ``cfg.patience`` without gain).
    """
    torch.manual_seed(seed)
    if model is None:
        model = WindowCNN(x.shape[1], x.shape[2], n_classes, cfg.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    data = TensorBatches.from_numpy(np.asarray(x, np.float32), np.asarray(y, np.int64))
    gen = torch.Generator().manual_seed(seed)
    best = BestEpoch(cfg.patience)
    for epoch in range(1, cfg.epochs + 1):
        train_epoch(model, shuffled_batches(data, cfg.batch_size, gen), opt, None, loss_fn=cross_entropy)
        if val is not None and best.update(model, epoch, scores(val[1], predict(model, val[0]))["macro_f1"]):
            break
    best.restore(model)
    return model
