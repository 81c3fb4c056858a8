"""The personal-model study's classifier: an MLP on standardised window features (paper: 43 -> 128 -> 6).

The feature standardisation travels with the model as buffers, so a shared model reaches a device
with the statistics it was trained with, and FedAvg averages them like any other state.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class FeatureMLP(nn.Module):
    """Standardise (fixed buffers), one hidden ReLU layer, class scores."""

    def __init__(self, n_features: int, n_classes: int, hidden: int = 128) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.body = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, n_classes)

    def set_standardisation(self, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor) -> FeatureMLP:
        """Use these feature statistics (a standard deviation below 1e-3 counts as 1: constant features)."""
        std = torch.as_tensor(np.asarray(std, np.float32))
        self.mean.copy_(torch.as_tensor(np.asarray(mean, np.float32)))
        self.std.copy_(torch.where(std < 1e-3, torch.ones_like(std), std))
        return self

    def fit_standardisation(self, x: np.ndarray) -> FeatureMLP:
        """Statistics of the training features ``x``."""
        return self.set_standardisation(x.mean(axis=0), x.std(axis=0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body((x - self.mean) / self.std))
