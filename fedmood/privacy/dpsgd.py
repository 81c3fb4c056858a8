"""Record-level DP-SGD on a device with Opacus, its privacy accountant kept across rounds.

Each round a client trains its local epoch(s) with Opacus: per-sample gradients
(``GradSampleModule``, embeddings included), per-sample clipping to ``max_grad_norm`` and Gaussian
noise (``DPOptimizer``), batches drawn by Poisson sampling at rate ``q = 1 / steps per epoch`` as
Opacus's ``DPDataLoader`` draws them (here by indexing tensors, without a DataLoader). The
accountant's history (noise, rate, steps) is stored in ``context.state`` after each round and
restored before the next, so ε composes over the whole run, not per round.

Both random parts of the mechanism, the gradient noise and the Poisson sampling, come from a
:class:`fedmood.privacy.noise.NoiseSource` (OS entropy), not from a seeded generator: Opacus's own
``secure_mode`` needs the unmaintained ``torchcsprng``, so :class:`SecureDPOptimizer` overrides the
one method that draws noise.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from flwr.app import ConfigRecord, RecordDict
from opacus import GradSampleModule
from opacus.accountants import RDPAccountant, create_accountant
from opacus.optimizers import DPOptimizer
from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed
from opacus.validators import ModuleValidator
from torch import nn

from fedmood.privacy.accounting import noise_for_epsilon
from fedmood.privacy.noise import NoiseSource, SecureNoise
from fedmood.training import Batches, steps_per_epoch

HISTORY_KEY = "dpsgd-accountant"  # context.state record with the accountant's history
NOISE_KEY = "dpsgd-noise"  # context.state record with the noise calibrated for a target ε
#: RDP orders for the device's ε: integer orders only. Opacus's default grid adds fractional
#: orders below 12, each ~1 ms to evaluate under sub-sampling (~0.2 s per ε on a phone-sized
#: CPU); leaving them out can only make the reported ε larger (a valid, slightly looser bound).
DEVICE_RDP_ORDERS = (*range(2, 65), 80, 96, 128, 192, 256)


@contextmanager
def quiet() -> Iterator[None]:
    """Silence the warning Opacus's hooks raise for integer (embedding) inputs on every step."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        yield


def sample_rate(n_rows: int, batch_size: int) -> float:
    """Poisson sampling rate: one over the number of batches per epoch (as Opacus)."""
    return 1.0 / steps_per_epoch(n_rows, batch_size)


def poisson_batches(data: Batches, rate: float, steps: int, source: NoiseSource) -> Iterator[Batches]:
    """``steps`` batches, each row in each batch independently with probability ``rate``."""
    for _ in range(steps):
        yield data.take(torch.from_numpy(source.bernoulli_mask(len(data), rate).nonzero()[0]))


class SecureDPOptimizer(DPOptimizer):
    """Opacus's ``DPOptimizer`` whose Gaussian noise comes from a :class:`NoiseSource`."""

    def __init__(self, *args, noise_source: NoiseSource, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.noise_source = noise_source

    def add_noise(self) -> None:
        std = self.noise_multiplier * self.max_grad_norm
        for p in self.params:
            _check_processed_flag(p.summed_grad)
            p.grad = (p.summed_grad + self.noise_source.torch_normal(p.summed_grad, std)).view_as(p)
            _mark_as_processed(p.summed_grad)


def load_history(state: RecordDict) -> list[tuple[float, float, int]]:
    """The accountant history saved by earlier rounds on this device."""
    if HISTORY_KEY not in state:
        return []
    rec = state[HISTORY_KEY]
    return list(zip(rec["noise"], rec["rate"], rec["steps"], strict=True))


def save_history(state: RecordDict, history: list[tuple[float, float, int]]) -> None:
    """Store the accountant history in the device's persistent state."""
    state[HISTORY_KEY] = ConfigRecord(
        {
            "noise": [float(h[0]) for h in history],
            "rate": [float(h[1]) for h in history],
            "steps": [int(h[2]) for h in history],
        }
    )


@dataclass
class PrivateTraining:
    """The Opacus-wrapped model and optimiser of one round, and the device's accountant."""

    model: GradSampleModule
    optimizer: SecureDPOptimizer
    accountant: object
    sample_rate: float
    noise_multiplier: float

    def batches(self, data: Batches, epochs: int) -> Iterator[Batches]:
        """Poisson batches for ``epochs`` epochs (sampled from the optimiser's noise source)."""
        steps = epochs * round(1 / self.sample_rate)
        return poisson_batches(data, self.sample_rate, steps, self.optimizer.noise_source)

    def epsilon(self, delta: float) -> float:
        """Record-level ε of everything this device has trained so far."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if isinstance(self.accountant, RDPAccountant):
                return float(self.accountant.get_epsilon(delta=delta, alphas=DEVICE_RDP_ORDERS))
            return float(self.accountant.get_epsilon(delta=delta))

    def history(self) -> list[tuple[float, float, int]]:
        return list(self.accountant.history)

    def release(self) -> None:
        """Remove Opacus's hooks from the wrapped module."""
        self.model._close()


def device_epsilon(noise: float, rate: float, steps: int, delta: float) -> float:
    """ε of ``steps`` DP-SGD steps as the device reports it (:data:`DEVICE_RDP_ORDERS`)."""
    acc = RDPAccountant()
    acc.history = [(noise, rate, steps)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(acc.get_epsilon(delta=delta, alphas=DEVICE_RDP_ORDERS))


def noise_multiplier_for(
    noise: float, target_epsilon: float | None, delta: float, rate: float, total_steps: int, method: str
) -> float:
    """The configured noise, or the smallest noise that keeps the whole run within ``target_epsilon``.

    With the RDP accountant the noise is calibrated on the orders the device reports ε with
    (bisection, ~30 evaluations of :func:`device_epsilon`); with PRV, by Opacus's own search.
    """
    if target_epsilon is None:
        return noise
    if method != "rdp":
        return noise_for_epsilon(target_epsilon, delta, rate, total_steps, method)
    lo, hi = 0.0, 1.0
    while device_epsilon(hi, rate, total_steps, delta) > target_epsilon:
        lo, hi = hi, hi * 2
    while hi - lo > 1e-3 * hi:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if device_epsilon(mid, rate, total_steps, delta) <= target_epsilon else (mid, hi)
    return hi


def device_noise(state: RecordDict, noise: float, target_epsilon: float | None, *args) -> float:
    """:func:`noise_multiplier_for`, calibrated once per device and kept in its state."""
    if target_epsilon is None:
        return noise
    if NOISE_KEY not in state:
        state[NOISE_KEY] = ConfigRecord({"noise": noise_multiplier_for(noise, target_epsilon, *args)})
    return float(state[NOISE_KEY]["noise"])


def make_private(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    n_rows: int,
    batch_size: int,
    noise_multiplier: float,
    max_grad_norm: float,
    history: list[tuple[float, float, int]],
    method: str = "rdp",
    noise: NoiseSource | None = None,
) -> PrivateTraining:
    """Wrap ``model``/``optimizer`` for DP-SGD, with an accountant that continues ``history``.

    ``noise`` draws the gradient noise and the Poisson batches (default: OS entropy).
    """
    errors = ModuleValidator.validate(model, strict=False)
    if errors:
        raise ValueError(f"model is not compatible with Opacus DP-SGD: {errors}")
    rate = sample_rate(n_rows, batch_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Full backward hook ... module outputs" for integer inputs
        gsm = GradSampleModule(model)
    dp_opt = SecureDPOptimizer(
        optimizer,
        noise_multiplier=noise_multiplier,
        max_grad_norm=max_grad_norm,
        expected_batch_size=max(1, round(n_rows * rate)),
        loss_reduction="mean",
        noise_source=noise if noise is not None else SecureNoise(),
    )
    accountant = create_accountant(method)
    accountant.history = list(history)
    dp_opt.attach_step_hook(accountant.get_optimizer_hook_fn(sample_rate=rate))
    return PrivateTraining(gsm, dp_opt, accountant, rate, noise_multiplier)
