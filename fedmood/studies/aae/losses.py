"""Losses of the anonymisation study."""

from __future__ import annotations

import torch


def identity_loss(logits: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
    """Eq. 7 of Malekzadeh et al.: ``-(Σ_k U_k log(1 - Û_k) + log(1 - max_k Û_k))``, batch mean.

    ``U`` is the one-hot true identity and ``Û`` the identity classifier's softmax: minimising it
    drives the probability of the true user, and the classifier's top probability, towards zero.
    ``log(1 - Û_k)`` is computed from the logits (the log-sum-exp of the other classes' logits minus
    that of all), so a confident classifier still gives a gradient (a clamp of ``Û`` below 1 would
    give none: a discriminant head is often that confident).
    """
    log_total = torch.logsumexp(logits, dim=1)

    def log_one_minus(k: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(logits.scatter(1, k[:, None], float("-inf")), dim=1) - log_total

    return -(log_one_minus(identity) + log_one_minus(logits.detach().argmax(dim=1))).mean()
