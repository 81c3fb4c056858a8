"""Window classifiers (:class:`WindowCNN`) trained with the package's one training loop.

With validation windows (``fit_classifier(..., val=(x, y))``) training keeps the epoch of best
validation macro-F1 and stops after ``patience`` epochs without gain (the paper's evaluation
classifiers do the same, on the short trials of the training subjects); without, it trains
``epochs`` epochs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from fedmood.classification import cross_entropy, predict, scores
from fedmood.studies.aae.model import PaperCNN, WindowCNN
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
    arch: str = "small"  # "small": WindowCNN; "paper": the paper's estimator (PaperCNN)
    class_weights: bool = False  # weigh each class's loss by the largest class's count over its own (the paper's)
    l2: float = 0.0  # L2 penalty on the kernels of PaperCNN's hidden layers (the paper: 1e-3)

    def __post_init__(self) -> None:
        if self.arch not in ("small", "paper"):
            raise ValueError(f"classifier arch {self.arch!r} is not 'small' or 'paper'")
        if self.l2 and self.arch != "paper":
            raise ValueError(f"classifier l2={self.l2} applies to arch 'paper' only (arch is {self.arch!r})")


def class_weights(y: np.ndarray, n_classes: int) -> torch.Tensor:
    """The paper's class weights: the largest class's window count over each class's (the largest
    class weighs 1, a class of half its size 2; a class with no window gets 0)."""
    counts = np.bincount(np.asarray(y), minlength=n_classes).astype(np.float64)
    weights = np.divide(counts.max(), counts, out=np.zeros(n_classes), where=counts > 0)
    return torch.as_tensor(weights, dtype=torch.float32)


def weighted_cross_entropy(weights: torch.Tensor):
    """The cross-entropy of :func:`fedmood.classification.cross_entropy` with per-class weights."""

    def loss(model: torch.nn.Module, batch: TensorBatches) -> torch.Tensor:
        x, y = batch.tensors[:2]
        return F.cross_entropy(model(x), y, weight=weights)

    return loss


def new_classifier(cfg: ClassifierConfig, channels: int, width: int, n_classes: int) -> torch.nn.Module:
    """A freshly initialised classifier of ``cfg.arch`` for windows of (channels, width)."""
    if cfg.arch == "paper":
        return PaperCNN(channels, width, n_classes)
    return WindowCNN(channels, width, n_classes, cfg.hidden)


def fit_classifier(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    cfg: ClassifierConfig,
    seed: int = 0,
    model: torch.nn.Module | None = None,
    val: tuple[np.ndarray, np.ndarray] | None = None,
    progress: Callable[[str], None] | None = None,
) -> torch.nn.Module:
    """Train a :class:`WindowCNN` or, with ``cfg.arch="paper"``, a :class:`PaperCNN` (or go on training
    ``model``) on windows ``x`` with labels ``y``; with ``cfg.class_weights`` the loss weighs each class
    as the paper does (:func:`class_weights`); ``cfg.l2`` adds the paper's L2 penalty on the kernels.

    With ``val`` = (windows, labels), the returned weights are those of the epoch with the best
    validation macro-F1 (at most ``cfg.epochs`` epochs, stopping after ``cfg.patience`` without gain).
    ``progress(line)`` gets a line per epoch (its training loss, validation F1 and seconds).
    """
    torch.manual_seed(seed)
    if model is None:
        model = new_classifier(cfg, x.shape[1], x.shape[2], n_classes)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    data = TensorBatches.from_numpy(np.asarray(x, np.float32), np.asarray(y, np.int64))
    gen = torch.Generator().manual_seed(seed)
    best = BestEpoch(cfg.patience)
    loss = weighted_cross_entropy(class_weights(y, n_classes)) if cfg.class_weights else cross_entropy
    penalty = (lambda _batch: cfg.l2 * model.kernel_l2()) if cfg.l2 else None
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        mean_loss = train_epoch(
            model, shuffled_batches(data, cfg.batch_size, gen), opt, None, penalty=penalty, loss_fn=loss
        )
        f1 = scores(val[1], predict(model, val[0]))["macro_f1"] if val is not None else None
        if progress:
            shown = "" if f1 is None else f", validation macro-F1 {f1:.2f}"
            progress(f"epoch {epoch}/{cfg.epochs}: loss {mean_loss:.4f}{shown} ({time.perf_counter() - t0:.0f} s)")
        if f1 is not None and best.update(model, epoch, f1):
            break
    if progress and val is not None:
        progress(f"kept epoch {best.best_epoch} (validation macro-F1 {best.best_score:.2f})")
    best.restore(model)
    return model
