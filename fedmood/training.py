"""The one training loop, used by every study, centralised and on every federated client.

Batches of rows as tensors, shuffled mini-batches, :func:`train_epoch` (one optimiser step per
batch, any loss; MSE of the ratings by default), progress, model selection (:class:`BestEpoch`),
evaluation. Each study's recipe (optimiser, schedule, loss) is in its own ``train.py``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn


@dataclass
class Batches:
    """Rows of (user, item, rating) as tensors."""

    users: torch.Tensor
    items: torch.Tensor
    ratings: torch.Tensor

    @classmethod
    def from_numpy(
        cls, users: np.ndarray, items: np.ndarray, ratings: np.ndarray, device: torch.device | str = "cpu"
    ) -> Batches:
        return cls(
            torch.as_tensor(users, dtype=torch.long, device=device),
            torch.as_tensor(items, dtype=torch.long, device=device),
            torch.as_tensor(ratings, dtype=torch.float32, device=device),
        )

    def __len__(self) -> int:
        return len(self.ratings)

    @property
    def device(self) -> torch.device:
        return self.ratings.device

    def take(self, idx: torch.Tensor) -> Batches:
        """The rows at ``idx``."""
        return Batches(self.users[idx], self.items[idx], self.ratings[idx])


@dataclass
class TensorBatches:
    """Rows of aligned tensors of any kind (e.g. sensor windows and their labels)."""

    tensors: tuple[torch.Tensor, ...]

    @classmethod
    def from_numpy(cls, *arrays: np.ndarray, device: torch.device | str = "cpu") -> TensorBatches:
        return cls(tuple(torch.as_tensor(a, device=device) for a in arrays))

    def __len__(self) -> int:
        return len(self.tensors[0])

    @property
    def device(self) -> torch.device:
        return self.tensors[0].device

    def take(self, idx: torch.Tensor) -> TensorBatches:
        """The rows at ``idx``."""
        return TensorBatches(tuple(t[idx] for t in self.tensors))


def train_only(model: nn.Module, selected: Callable[[str], bool]) -> list[nn.Parameter]:
    """Freeze every parameter whose name ``selected`` rejects; the selected ones, for the optimiser."""
    chosen = []
    for name, param in model.named_parameters():
        param.requires_grad_(selected(name))
        if param.requires_grad:
            chosen.append(param)
    return chosen


@dataclass
class BestEpoch:
    """Model selection on a validation score: keeps the best epoch's weights, says when to stop.

    ``update(model, epoch, score)`` after every epoch (higher scores are better) returns True once
    ``patience`` epochs in a row brought no gain; ``restore(model)`` loads the best epoch's weights.
    """

    patience: int
    best_score: float = -math.inf
    best_epoch: int = 0
    state: dict | None = None

    def update(self, model: nn.Module, epoch: int, score: float) -> bool:
        if score > self.best_score:
            self.best_score, self.best_epoch = score, epoch
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return epoch - self.best_epoch >= self.patience

    def restore(self, model: nn.Module) -> None:
        if self.state is not None:
            model.load_state_dict(self.state)


def torch_device(name: str) -> torch.device:
    """``auto`` (a CUDA GPU when there is one, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r}: no CUDA GPU is available here (use device=cpu or auto)")
    return device


def steps_per_epoch(n_rows: int, batch_size: int) -> int:
    """Number of optimiser steps in one epoch over ``n_rows`` rows."""
    return max(1, -(-n_rows // batch_size))


def shuffled_batches(
    data: Batches | TensorBatches, batch_size: int, generator: torch.Generator
) -> Iterator[Batches | TensorBatches]:
    """One epoch of shuffled mini-batches (every row once)."""
    perm = torch.randperm(len(data), generator=generator).to(data.device)
    for start in range(0, len(data), batch_size):
        yield data.take(perm[start : start + batch_size])


def with_progress(batches: Iterable[Batches], total: int, label: str, every_s: float = 15.0) -> Iterator[Batches]:
    """Pass ``batches`` through, printing ``label k/total`` at most every ``every_s`` seconds."""
    t0 = last = time.perf_counter()
    for k, batch in enumerate(batches, start=1):
        yield batch
        now = time.perf_counter()
        if now - last >= every_s:
            print(f"{label} {k}/{total} batches ({now - t0:.0f}s)", flush=True)
            last = now


class Stepper(Protocol):
    """What :func:`train_epoch` needs of an optimiser: a torch optimiser, or several stepped as one."""

    def zero_grad(self, set_to_none: bool = True) -> None: ...

    def step(self) -> None: ...


def rating_mse(model: nn.Module, batch: Batches) -> torch.Tensor:
    """MSE of ``model(users, items)`` against the ratings (the recommenders' loss)."""
    return nn.functional.mse_loss(model(batch.users, batch.items), batch.ratings)


def train_epoch(
    model: nn.Module,
    batches: Iterable[Batches],
    opt: Stepper,
    sched: torch.optim.lr_scheduler.LRScheduler | None,
    penalty: Callable[[Batches], torch.Tensor] | None = None,
    step: Callable[[Batches], torch.Tensor] | None = None,
    loss_fn: Callable[[nn.Module, Batches | TensorBatches], torch.Tensor] | None = None,
) -> float:
    """One optimiser step per batch; returns the mean training loss over the rows seen.

    The loss is :func:`rating_mse` unless ``loss_fn(model, batch)`` gives another (e.g. the
    cross-entropy of a classifier, or the anonymising autoencoder's composite loss).

    ``batches`` is :func:`shuffled_batches` for plain training or Poisson-sampled batches for
    DP-SGD (:mod:`fedmood.privacy.dpsgd`), where a batch may be empty: the step still runs (the
    DP optimiser adds its noise), but the empty batch adds nothing to the reported loss.
    ``penalty(batch)`` is added to the loss (not to the reported MSE), e.g. a lazy L2 term.
    ``step(batch)``, if given, does the whole step itself and returns the batch's MSE (e.g. MetaMF's
    CUDA-graph step, :class:`fedmood.studies.metamf.static_step.StaticStep`).
    """
    model.train()
    total, n = torch.zeros((), dtype=torch.float64), 0
    for batch in batches:
        if step is not None:
            loss = step(batch)
        else:
            loss = loss_fn(model, batch) if loss_fn is not None else rating_mse(model, batch)
            opt.zero_grad(set_to_none=True)
            (loss + penalty(batch) if penalty is not None else loss).backward()
            opt.step()
        if sched is not None:
            sched.step()
        if len(batch):  # summed on the loss's device: no host sync per step
            total = total.to(loss.device) + loss.detach().double() * len(batch)
            n += len(batch)
    return float(total) / max(n, 1)


@torch.no_grad()
def prediction_errors(model: nn.Module, data: Batches, batch_size: int = 8192) -> torch.Tensor:
    """``prediction - rating`` for every row of ``data`` (in chunks)."""
    model.eval()
    out = [
        model(data.users[s : s + batch_size], data.items[s : s + batch_size]) - data.ratings[s : s + batch_size]
        for s in range(0, len(data), batch_size)
    ]
    return torch.cat(out) if out else torch.zeros(0, device=data.ratings.device)


@torch.no_grad()
def evaluate_mse(model: nn.Module, data: Batches) -> float:
    """Mean squared error of the model on ``data`` (nan when empty)."""
    if len(data) == 0:
        return float("nan")
    model.eval()
    return float(nn.functional.mse_loss(model(data.users, data.items), data.ratings))
