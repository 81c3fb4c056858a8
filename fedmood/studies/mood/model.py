"""The collaborative-filtering model: fastai's ``EmbeddingDotBias``, written in plain PyTorch."""

from __future__ import annotations

import torch
from torch import nn

#: Parameters shared through the server in the federated run; everything else stays on the device.
GLOBAL_KEYS = ("item_factors.weight", "item_bias.weight")
LOCAL_KEYS = ("user_factors.weight", "user_bias.weight")


def shared_size(n_items: int, n_factors: int) -> int:
    """How many numbers the shared item parameters hold (factors and biases): a client update's dimension."""
    return n_items * (n_factors + 1)


class EmbeddingDotBias(nn.Module):
    """Mood = sigmoid_range(user · item + user bias + item bias), as fastai's collab learner.

    Embeddings are initialised like fastai's (truncated normal, std 0.01).
    """

    def __init__(
        self, n_users: int, n_items: int, n_factors: int = 50, y_range: tuple[float, float] = (-1.5, 1.5)
    ) -> None:
        super().__init__()
        self.user_factors = nn.Embedding(n_users, n_factors)
        self.item_factors = nn.Embedding(n_items, n_factors)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)
        for emb in (self.user_factors, self.item_factors, self.user_bias, self.item_bias):
            with torch.no_grad():
                nn.init.trunc_normal_(emb.weight, std=0.01, a=-0.02, b=0.02)
        self.y_lo, self.y_hi = float(y_range[0]), float(y_range[1])

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        dot = (self.user_factors(users) * self.item_factors(items)).sum(dim=1)
        raw = dot + self.user_bias(users).squeeze(1) + self.item_bias(items).squeeze(1)
        return torch.sigmoid(raw) * (self.y_hi - self.y_lo) + self.y_lo
