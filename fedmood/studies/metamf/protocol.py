"""Federated MetaMF (the MetaMF paper's Algorithm 1), as the computations each side performs.

The server holds the meta network Θ (memory M, the rating-model generators, the item generator);
each device holds one user's ratings and user embedding e_u. One round, for the sampled users:

1. ``collaborative``: the device receives M and sends c_u = e_u M and the item ids of its batch;
2. ``generate`` / ``device_gradients``: the server generates u's private parameters Φ_u (the
   rating-MLP weights and biases, and u's item embeddings for those items only) and sends them; the
   device computes its summed squared error on its batch and returns only ∂L/∂Φ_u;
3. ``server_backward``: the server back-propagates ∂L/∂Φ_u (divided by the round's total number of
   rows, as the centralised mean loss) through the generators into Θ and ∂L/∂c_u, and sends
   ∂L/∂c_u; the device returns e_uᵀ ∂L/∂c_u (M's gradient share) and ‖∂L/∂e_u‖²;
4. the server clips all gradients jointly (norm 5, the devices' shares included:
   :func:`fedmood.studies.metamf.optim.clip_factor`) and steps Θ; the device receives the clip factor and steps
   e_u with its own Adam.

Evaluation is on the device too: ``collaborative`` for a held-out split (c_u and that split's item
ids), then ``evaluate`` (Φ_u for those items down; the summed absolute and squared errors and the
row count up: ``device_errors``).

With every user of a centralised batch sampled, one round equals one centralised training step
(tested). The devices learn Φ_u and M; the server learns c_u, the batch's item ids and the gradients
(the paper's §7 notes these can leak).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from flwr.app import Array, ArrayRecord

from fedmood.studies.metamf.model import MetaMF


@dataclass
class PrivateParameters:
    """Φ_u: the generated rating-MLP layers and the item embeddings of the device's batch items."""

    layers: list[tuple[torch.Tensor, torch.Tensor]]  # (in x out weight, out bias) per layer
    item_ids: torch.Tensor  # the distinct items of the batch
    item_embeddings: torch.Tensor  # (len(item_ids), item_dim)

    def tensors(self) -> list[torch.Tensor]:
        return [t for w, b in self.layers for t in (w, b)] + [self.item_embeddings]


def generate(model: MetaMF, c_u: torch.Tensor, item_ids: torch.Tensor) -> PrivateParameters:
    """Server: Φ_u from the collaborative vector ``c_u`` (128,) for ``item_ids`` (with autograd)."""
    c = c_u.unsqueeze(0)
    layers = [(w[0], b[0]) for w, b in model.rating_model(c)]
    items = model.item_embeddings(c.expand(len(item_ids), -1), item_ids)
    return PrivateParameters(layers, item_ids, items)


def _errors(tensors: list[torch.Tensor], item_ids: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor):
    """``prediction - rating`` for the device's rows under Φ_u given as ``tensors`` (w0, b0, ..., items)."""
    n_layers = (len(tensors) - 1) // 2
    x = tensors[-1][torch.searchsorted(item_ids, items)]
    for n in range(n_layers):
        x = x @ tensors[2 * n] + tensors[2 * n + 1]
        if n < n_layers - 1:
            x = torch.relu(x)
    return x.squeeze(-1) - ratings


def device_gradients(
    phi: PrivateParameters, items: torch.Tensor, ratings: torch.Tensor
) -> tuple[float, list[torch.Tensor]]:
    """Device: summed squared error of its batch under Φ_u, and its gradient w.r.t. every tensor of Φ_u."""
    leaves = [t.detach().clone().requires_grad_(True) for t in phi.tensors()]
    sse = _errors(leaves, phi.item_ids, items, ratings).pow(2).sum()
    grads = torch.autograd.grad(sse, leaves)
    return float(sse.detach()), list(grads)


def private_device_gradients(
    phi: PrivateParameters, items: torch.Tensor, ratings: torch.Tensor, clip: float, noise_multiplier: float, noise
) -> tuple[float, list[torch.Tensor]]:
    """Device, defended: ∂L/∂Φ_u with each rating's contribution clipped to ``clip`` and Gaussian noise
    of standard deviation ``noise_multiplier * clip`` added (``noise``: a
    :class:`~fedmood.privacy.noise.NoiseSource`).

    Without it the server reads every rating off the item-embedding gradient (each item's row is
    ``2 (ŷ - r)`` times a direction the server can compute). With it each round is a Gaussian
    mechanism on the user's ratings (one rating added or removed moves the sum by at most ``clip``):
    rating-level DP, composed over the rounds the device takes part in.
    """
    leaves = [t.detach().clone().requires_grad_(True) for t in phi.tensors()]
    errors = _errors(leaves, phi.item_ids, items, ratings)
    total = [torch.zeros_like(t) for t in leaves]
    for i in range(len(errors)):
        row = torch.autograd.grad(errors[i].pow(2), leaves, retain_graph=i + 1 < len(errors))
        norm = torch.sqrt(sum(g.pow(2).sum() for g in row))
        scale = min(1.0, clip / (float(norm) + 1e-12))
        total = [t + g * scale for t, g in zip(total, row, strict=True)]
    noisy = [t + noise.torch_normal(t, noise_multiplier * clip) for t in total]
    return float(errors.detach().pow(2).sum()), noisy


def device_errors(phi: PrivateParameters, items: torch.Tensor, ratings: torch.Tensor) -> tuple[float, float]:
    """Device: summed absolute and squared errors of its rows under Φ_u (its evaluation)."""
    with torch.no_grad():
        err = _errors(phi.tensors(), phi.item_ids, items, ratings).double()
    return float(err.abs().sum()), float(err.pow(2).sum())


def server_backward(
    model: MetaMF, c_u: torch.Tensor, item_ids: torch.Tensor, grads: list[torch.Tensor], total_rows: int
) -> torch.Tensor:
    """Server: accumulate Θ's gradients for one device's Φ_u-gradients; returns ∂L/∂c_u."""
    c = c_u.detach().clone().requires_grad_(True)
    phi = generate(model, c, item_ids)
    torch.autograd.backward(phi.tensors(), [g / total_rows for g in grads])
    return c.grad


def lazy_l2_items(model: MetaMF, item_ids: torch.Tensor, weight_decay: float) -> None:
    """Server: the lazy L2 gradient of the round's item rows (as the centralised trainer's penalty)."""
    squares = model.item_rows(item_ids).pow(2).sum() + model.item_rows_bias(item_ids).pow(2).sum()
    (0.5 * weight_decay * squares).backward()


def memory_share(e_u: torch.Tensor, grad_c: torch.Tensor) -> torch.Tensor:
    """Device: its share of ∂L/∂M, e_uᵀ ∂L/∂c_u (c_u = e_u M)."""
    return torch.outer(e_u, grad_c)


def to_arrays(**tensors: torch.Tensor) -> ArrayRecord:
    """Tensors as a Flower ``ArrayRecord`` (what both sides put in their messages)."""
    return ArrayRecord({k: Array(np.ascontiguousarray(v.detach().numpy())) for k, v in tensors.items()})


def tensor(record: ArrayRecord, key: str) -> torch.Tensor:
    """One array of a received ``ArrayRecord`` as a tensor."""
    return torch.as_tensor(record[key].numpy())
