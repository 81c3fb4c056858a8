"""Losses of the anonymisation study."""

from __future__ import annotations

import torch
from torch.nn import functional as F

EPS = 1e-6


def identity_loss(logits: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
    """Eq. 7 of Malekzadeh et al.: ``-(Σ_k U_k log(1 - Û_k) + log(1 - max_k Û_k))``, batch mean.

    ``U`` is the one-hot true identity and ``Û`` the identity classifier's softmax: minimising it
    drives the probability of the true user, and the classifier's top probability, towards zero.
    """
    probs = F.softmax(logits, dim=1).clamp(max=1 - EPS)
    true = probs.gather(1, identity[:, None]).squeeze(1)
    return -(torch.log1p(-true) + torch.log1p(-probs.max(dim=1).values)).mean()
