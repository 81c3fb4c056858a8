"""The mood recommender's training recipe, centralised and on the device.

fastai-style, as the paper's baseline: AdamW with decoupled weight decay (betas 0.9/0.99, eps
1e-5), a cosine one-cycle schedule (torch's ``OneCycleLR``) with momentum cycling, MSE loss,
shuffled mini-batches (:mod:`fedmood.training`'s loop). A federated device runs one slice of the
whole run's schedule each round (:class:`RoundSchedule`), plainly (:func:`train_plain`) or with
Opacus DP-SGD (:func:`train_dpsgd`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from flwr.app import Context
from torch import nn

from fedmood.keys import DPSGD_DELTA, DPSGD_EPSILON, DPSGD_NOISE
from fedmood.privacy import dpsgd
from fedmood.privacy.noise import NoiseSource
from fedmood.privacy.settings import PrivacySettings
from fedmood.seeding import derived_seed
from fedmood.studies.mood.model import EmbeddingDotBias
from fedmood.studies.mood.settings import FederationSettings
from fedmood.training import Batches, shuffled_batches, steps_per_epoch, train_epoch


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and schedule settings (Hydra ``training`` group)."""

    epochs: int = 50
    batch_size: int = 64
    lr_max: float = 5e-3
    weight_decay: float = 0.1
    pct_start: float = 0.25
    div_factor: float = 25.0
    final_div_factor: float = 1e5


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """fastai's Adam with decoupled weight decay."""
    return torch.optim.AdamW(
        model.parameters(), lr=cfg.lr_max / cfg.div_factor, betas=(0.9, 0.99), eps=1e-5, weight_decay=cfg.weight_decay
    )


def make_scheduler(
    opt: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int, start_step: int = 0
) -> torch.optim.lr_scheduler.OneCycleLR:
    """One-cycle schedule over ``total_steps``, positioned at ``start_step``.

    A federated client runs one slice of the whole-run schedule each round; ``OneCycleLR`` computes
    the rate from its step counter alone, so it is positioned by setting that counter. Very short
    runs (fewer than ~2/pct_start steps, where ``OneCycleLR`` has an empty warm-up phase) get a
    cycle of that minimum length and stop before its end.
    """
    total_steps = max(total_steps, math.ceil(2 / cfg.pct_start) + 2)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt,
        max_lr=cfg.lr_max,
        total_steps=total_steps,
        pct_start=cfg.pct_start,
        anneal_strategy="cos",
        div_factor=cfg.div_factor,
        final_div_factor=cfg.final_div_factor,
        cycle_momentum=True,
        base_momentum=0.85,
        max_momentum=0.95,
    )
    if start_step > 0:
        sched.last_epoch = start_step - 1
        sched._step_count = 2  # mark as stepped before, so step() does not warn about ordering
        sched.step()
    return sched


@dataclass
class RoundSchedule:
    """Where one round's local epochs sit in the run's one-cycle schedule (rounds x local epochs)."""

    train: TrainConfig
    server_round: int
    epochs: int  # local epochs this round
    steps_per_epoch: int
    total_steps: int  # over the whole run

    @classmethod
    def of(cls, cfg: dict, server_round: int, n_train: int) -> RoundSchedule:
        """The schedule of round ``server_round`` for a device with ``n_train`` training rows."""
        tcfg = TrainConfig(**cfg["training"])
        fed = FederationSettings.of(cfg)
        spe = steps_per_epoch(n_train, tcfg.batch_size)
        return cls(tcfg, server_round, fed.local_epochs, spe, fed.num_rounds * fed.local_epochs * spe)

    def scheduler(self, opt):
        """The learning-rate scheduler, started where the earlier rounds left it."""
        start = (self.server_round - 1) * self.epochs * self.steps_per_epoch
        return make_scheduler(opt, self.train, total_steps=self.total_steps, start_step=start)


def local_seed(cfg: dict, user: int, server_round: int) -> int:
    """The seed of a user's local shuffling in one round."""
    return derived_seed(int(cfg["seed"]), user, server_round, seed_base=7919, part_base=131)


def train_plain(model: EmbeddingDotBias, train: Batches, schedule: RoundSchedule, seed: int) -> float:
    """The round's local epochs with the fastai-style trainer; the last epoch's training MSE."""
    opt = make_optimizer(model, schedule.train)
    sched = schedule.scheduler(opt)
    gen = torch.Generator().manual_seed(seed)
    mse = 0.0
    for _ in range(schedule.epochs if len(train) else 0):
        mse = train_epoch(model, shuffled_batches(train, schedule.train.batch_size, gen), opt, sched)
    return mse


def train_dpsgd(
    model: EmbeddingDotBias,
    train: Batches,
    schedule: RoundSchedule,
    privacy: PrivacySettings,
    context: Context,
    noise: NoiseSource,
) -> tuple[float, dict[str, float]]:
    """The round's local epochs with Opacus DP-SGD, the device's accountant continued from earlier
    rounds; the last epoch's training MSE and the device's ε, δ and noise multiplier so far."""
    model.train()
    opt = make_optimizer(model, schedule.train)
    delta = privacy.delta_for(len(train))
    rate = dpsgd.sample_rate(len(train), schedule.train.batch_size)
    dp, accountant, batch = privacy.dpsgd, privacy.accountant, schedule.train.batch_size
    multiplier = dpsgd.device_noise(
        context.state, dp.noise_multiplier, privacy.target_epsilon, delta, rate, schedule.total_steps, accountant
    )
    history = dpsgd.load_history(context.state)
    private = dpsgd.make_private(
        model, opt, len(train), batch, multiplier, dp.max_grad_norm, history, accountant, noise
    )
    sched = schedule.scheduler(private.optimizer)
    mse = 0.0
    with dpsgd.quiet():
        for _ in range(schedule.epochs):
            mse = train_epoch(private.model, private.batches(train, 1), private.optimizer, sched)
    private.release()
    dpsgd.save_history(context.state, private.history())
    return mse, {DPSGD_EPSILON: private.epsilon(delta), DPSGD_DELTA: delta, DPSGD_NOISE: private.noise_multiplier}
