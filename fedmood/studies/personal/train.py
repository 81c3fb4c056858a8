"""Training the feature MLP (the package's one training loop) and personalising it on a device.

*Shared*: trained from scratch on other users' windows. *Local*: trained from scratch on the
device's first n windows only (standardised with their own statistics). *Personal*: a copy of the
Shared model fine-tuned on the same first n windows; ``params`` chooses what learns ("all", or
"head": the output layer only, the rest frozen).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from fedmood.classification import cross_entropy
from fedmood.studies.personal.model import FeatureMLP
from fedmood.training import TensorBatches, shuffled_batches, train_epoch, train_only

PARAM_GROUPS = ("all", "head")


@dataclass(frozen=True)
class FitConfig:
    """One training run of the MLP (Hydra groups ``shared``, ``local``, ``personal``)."""

    epochs: int = 30
    lr: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    params: str = "all"  # personalisation: "all" or "head"


def trainable(model: FeatureMLP, params: str) -> list[torch.nn.Parameter]:
    """The parameters a fit may change; the others are frozen (``requires_grad=False``)."""
    if params not in PARAM_GROUPS:
        raise ValueError(f"params: {params!r} is not one of {PARAM_GROUPS}")
    return train_only(model, lambda name: params == "all" or name.startswith("head."))


def fit(model: FeatureMLP, x: np.ndarray, y: np.ndarray, cfg: FitConfig, seed: int = 0) -> FeatureMLP:
    """Train ``model`` in place on features ``x`` and labels ``y`` (Adam, shuffled mini-batches)."""
    if len(x) == 0:
        raise ValueError("fit: no training windows")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(trainable(model, cfg.params), lr=cfg.lr, weight_decay=cfg.weight_decay)
    data = TensorBatches.from_numpy(np.asarray(x, np.float32), np.asarray(y, np.int64))
    for _ in range(cfg.epochs):
        train_epoch(model, shuffled_batches(data, cfg.batch_size, gen), opt, None, loss_fn=cross_entropy)
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def train_fresh(x: np.ndarray, y: np.ndarray, n_classes: int, hidden: int, cfg: FitConfig, seed: int = 0) -> FeatureMLP:
    """A fresh MLP standardised with and trained on ``x``: Shared (other users' windows) and Local (own)."""
    torch.manual_seed(seed)
    model = FeatureMLP(x.shape[1], n_classes, hidden).fit_standardisation(x)
    return fit(model, x, y, cfg, seed)


def personalise(shared: FeatureMLP, x: np.ndarray, y: np.ndarray, cfg: FitConfig, seed: int = 0) -> FeatureMLP:
    """A copy of ``shared`` fine-tuned on the device's windows (``shared`` itself is untouched)."""
    return fit(copy.deepcopy(shared), x, y, cfg, seed)
