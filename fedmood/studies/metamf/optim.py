"""MetaMF's optimiser: dense Adam and SparseAdam stepped as one, clipped jointly (also with the devices' shares)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def clip_factor(squared_norms: Iterable[float], max_norm: float) -> float:
    """Joint grad-norm clipping: the factor for gradients with these squared norms (1 within the norm)."""
    total = math.sqrt(sum(squared_norms))
    return max_norm / (total + 1e-6) if total > max_norm else 1.0


class CombinedOptimizer:
    """Several optimisers stepped as one (e.g. dense Adam + SparseAdam), with optional grad-norm clipping."""

    def __init__(self, optimizers: list[torch.optim.Optimizer], clip_norm: float | None = None) -> None:
        self.optimizers, self.clip_norm = optimizers, clip_norm

    @property
    def param_groups(self) -> list[dict]:
        return [g for opt in self.optimizers for g in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def grad_norm(self) -> torch.Tensor:
        """Norm of all gradients together, as a tensor (no host sync; sparse ones coalesced in place, once)."""
        dense, norms = [], []
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:  # a sparse optimiser would coalesce again otherwise
                    p.grad = p.grad.coalesce()
                    norms.append(torch.linalg.vector_norm(p.grad.values()))
                else:
                    dense.append(p.grad)
        if dense:
            norms.extend(torch._foreach_norm(dense))
        return torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.zeros(())

    def squared_grad_norm(self) -> float:
        """Squared norm of all gradients together (a float, for combining with other parties' norms)."""
        return float(self.grad_norm()) ** 2

    def scale_grads(self, factor: float | torch.Tensor) -> None:
        """Multiply every gradient by ``factor`` (a number, or a 0-d tensor on the gradients' device)."""
        if isinstance(factor, float) and factor == 1.0:
            return
        dense = []
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    p.grad = p.grad * factor
                else:
                    dense.append(p.grad)
        if dense:
            torch._foreach_mul_(dense, factor)

    def step(self) -> None:
        if self.clip_norm is not None:
            norm = self.grad_norm()
            factor = (self.clip_norm / (norm + 1e-6)).clamp(max=1.0)
            # On the CPU the check is free and saves a pass; on a GPU it would stall the queue.
            if factor.device.type != "cpu" or float(factor) < 1.0:
                self.scale_grads(factor)
        for opt in self.optimizers:
            opt.step()

    def state_dict(self) -> list[dict]:
        return [opt.state_dict() for opt in self.optimizers]

    def load_state_dict(self, states: list[dict]) -> None:
        for opt, state in zip(self.optimizers, states, strict=True):
            opt.load_state_dict(state)
