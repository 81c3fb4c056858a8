"""Training MetaMF / NoMetaMF: the shared trainer, model selection on validation MAE, checkpoints.

The reference recipe: MSE loss, Adam (lr 1e-4, weight decay 1e-3), batch 64, gradient-norm clip 5.
The per-item generator rows (``item_rows``, the large part of the model: items x 8 x 512) get
sparse gradients and ``torch.optim.SparseAdam``; their weight decay is applied lazily, to the
rows a batch touches, as an L2 term in the loss (Adam's coupled weight decay adds ``wd * p`` to the
gradient; so does ``wd/2 * ||rows||^2``). Every epoch ends with the validation MAE and an atomic
checkpoint (model, optimisers, history, best state), so a killed run resumes where it stopped;
the best-validation epoch's model is the result; training stops after ``patience`` epochs
without improvement.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from fedmood.errors import InputError, Problem
from fedmood.results import atomic_write_with
from fedmood.seeding import derived_seed
from fedmood.studies.metamf.data import Ratings
from fedmood.studies.metamf.model import MetaMF
from fedmood.studies.metamf.optim import CombinedOptimizer
from fedmood.studies.metamf.static_step import StaticStep, uses_static_step
from fedmood.training import (
    Batches,
    prediction_errors,
    shuffled_batches,
    steps_per_epoch,
    train_epoch,
    with_progress,
)

SPARSE_PREFIXES = ("item_rows.", "item_rows_bias.")


@dataclass(frozen=True)
class MetaTrainConfig:
    """Hydra ``training`` group of the MetaMF experiment."""

    lr: float = 1e-4
    weight_decay: float = 1e-3
    batch_size: int = 64
    grad_clip: float = 5.0
    max_epochs: int = 30
    patience: int = 5
    seed: int = 0


def batches_of(data: Ratings, device: torch.device | str = "cpu") -> Batches:
    """``data`` as tensors on ``device``."""
    return Batches.from_numpy(data.users, data.items, data.ratings, device)


def device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def make_optimizer(model: MetaMF, cfg: MetaTrainConfig) -> CombinedOptimizer:
    """Adam on the dense parameters, SparseAdam on the item generator rows, clipped jointly."""
    sparse = [p for n, p in model.named_parameters() if n.startswith(SPARSE_PREFIXES) and p.requires_grad]
    dense = [p for n, p in model.named_parameters() if not n.startswith(SPARSE_PREFIXES) and p.requires_grad]
    on_gpu = device_of(model).type == "cuda"  # capturable: the step may be replayed as a CUDA graph
    opts: list[torch.optim.Optimizer] = [
        torch.optim.Adam(dense, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True, capturable=on_gpu)
    ]
    if sparse:
        opts.append(torch.optim.SparseAdam(sparse, lr=cfg.lr))
    return CombinedOptimizer(opts, clip_norm=cfg.grad_clip)


def lazy_l2(model: MetaMF, weight_decay: float):
    """The L2 term of the item rows a batch touches (Adam's weight decay, applied lazily)."""

    def penalty(batch: Batches) -> torch.Tensor:
        items = torch.unique(batch.items)
        rows = model.item_rows(items)
        return 0.5 * weight_decay * (rows.pow(2).sum() + model.item_rows_bias(items).pow(2).sum())

    return penalty


@dataclass
class FitResult:
    """History of a fit and the best epoch's model."""

    history: list[dict] = field(default_factory=list)  # epoch, train_mse, val_mae, val_mse, seconds
    best_epoch: int = 0
    best_val_mae: float = float("inf")
    best_state: dict = field(default_factory=dict)


def evaluate(model: MetaMF, data: Ratings) -> dict[str, float]:
    """MAE and MSE on ``data``."""
    err = prediction_errors(model, batches_of(data, device_of(model)))
    return {"mae": float(err.abs().mean()), "mse": float(err.pow(2).mean())}


def _resumable(config: dict) -> dict:
    """The settings a checkpoint must share with the run resuming it (it may train longer)."""
    return {k: v for k, v in config.items() if k not in ("max_epochs", "patience")}


def _save(path: Path, **payload) -> None:
    """Stream a checkpoint to disk atomically (no in-memory copy: ciao's is several GB)."""
    atomic_write_with(path, lambda f: torch.save(payload, f))


def best_checkpoint_path(ckpt: Path) -> Path:
    """Where the best epoch's model of the checkpoint ``ckpt`` is kept."""
    return ckpt.with_name(ckpt.stem + ".best.pt")


def fit(
    model: MetaMF,
    train: Ratings,
    valid: Ratings,
    cfg: MetaTrainConfig,
    checkpoint: str | Path | None = None,
    progress: bool = True,
    identity: dict | None = None,
) -> FitResult:
    """Train with model selection on validation MAE; resume from ``checkpoint`` if it exists.

    ``identity`` (e.g. the data's fingerprint and the run's settings) is stored with the checkpoint;
    a checkpoint with another identity or training config is refused (:class:`InputError`).
    """
    # Adam's moments of rows a batch has not touched for ~800 steps decay into subnormal floats,
    # which made CPU steps 5x slower after ~2000 steps on ml; flush them to zero.
    torch.set_flush_denormal(True)
    opt = make_optimizer(model, cfg)
    penalty = lazy_l2(model, cfg.weight_decay)
    result = FitResult()
    ckpt = Path(checkpoint) if checkpoint else None
    if ckpt is not None and ckpt.is_file():
        state = torch.load(ckpt, weights_only=False, map_location=device_of(model))
        if _resumable(state["config"]) != _resumable(asdict(cfg)) or state.get("identity") != identity:
            raise InputError(
                Problem(
                    str(ckpt),
                    f"a checkpoint of another run (data/settings {state.get('identity')}, training {state['config']}),"
                    f" not of this one ({identity}, {asdict(cfg)}); remove it to start afresh",
                )
            )
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        result = state["result"]
        if result.best_epoch and best_checkpoint_path(ckpt).is_file():
            result.best_state = torch.load(best_checkpoint_path(ckpt), weights_only=True, map_location=device_of(model))
        if progress:
            print(f"[metamf] resumed from {ckpt} after epoch {len(result.history)}", flush=True)
    data = batches_of(train, device_of(model))
    static = (
        StaticStep(model, opt, cfg.weight_decay, cfg.grad_clip, cfg.batch_size) if uses_static_step(model) else None
    )
    for epoch in range(len(result.history) + 1, cfg.max_epochs + 1):
        if epoch - result.best_epoch > cfg.patience and result.best_epoch > 0:
            break
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(derived_seed(cfg.seed, epoch))
        batches = shuffled_batches(data, cfg.batch_size, gen)
        if progress:
            batches = with_progress(batches, steps_per_epoch(len(data), cfg.batch_size), f"[metamf] epoch {epoch}")
        train_mse = train_epoch(model, batches, opt, None, penalty, static)
        val = evaluate(model, valid)
        secs = time.perf_counter() - t0
        result.history.append(
            {"epoch": epoch, "train_mse": train_mse, "val_mae": val["mae"], "val_mse": val["mse"], "seconds": secs}
        )
        improved = val["mae"] < result.best_val_mae
        if improved:
            result.best_epoch, result.best_val_mae = epoch, val["mae"]
            result.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if progress:
            print(
                f"[metamf] epoch {epoch}/{cfg.max_epochs} train_mse={train_mse:.4f} val_mae={val['mae']:.4f} "
                f"(best {result.best_val_mae:.4f} @ {result.best_epoch}) {secs:.1f}s",
                flush=True,
            )
        if ckpt is not None:  # the best model first, so a checkpoint never names a best epoch it lacks
            if improved:
                _save(best_checkpoint_path(ckpt), **result.best_state)
            light = FitResult(result.history, result.best_epoch, result.best_val_mae)
            _save(
                ckpt,
                config=asdict(cfg),
                identity=identity,
                model=model.state_dict(),
                optimizer=opt.state_dict(),
                result=light,
            )
    if result.best_state:
        model.load_state_dict(result.best_state)
    return result


def per_user_errors(model: MetaMF, data: Ratings, n_users: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Summed absolute errors, summed squared errors and counts per user (for the group metrics)."""
    err = prediction_errors(model, batches_of(data, device_of(model))).double().cpu().numpy()
    return (
        np.bincount(data.users, weights=np.abs(err), minlength=n_users),
        np.bincount(data.users, weights=err**2, minlength=n_users),
        np.bincount(data.users, minlength=n_users),
    )
