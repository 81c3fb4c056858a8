"""(ε, δ) accounting with Opacus's accountants, for both kinds of DP in fedmood.

* User-level central DP (DP-FedAvg): each round releases the noisy average of the sampled
  clients' clipped updates: one step of the sub-sampled Gaussian mechanism with noise multiplier
  ``z`` and sampling rate ``q = clients per round / clients``, composed over the rounds. Flower's
  own ``RdpAccountant`` covers only ``q = 1`` with fixed clipping and equal weights;
  :class:`RoundAccountant` covers every case (adaptive clipping included: by Andrew et al. 2021 the
  update noise and the clipped-count noise together are worth the configured ``z``).
* Record-level DP-SGD on a device: Opacus's own accountant, kept in ``context.state`` between
  rounds (:mod:`fedmood.privacy.dpsgd`).
"""

from __future__ import annotations

import warnings

from opacus.accountants import create_accountant
from opacus.accountants.utils import get_noise_multiplier


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():  # Opacus warns about optimal alpha at the edge of its grid
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


class RoundAccountant:
    """User-level privacy of a federated run: one sub-sampled Gaussian release per round."""

    def __init__(self, noise_multiplier: float, sample_rate: float, delta: float, method: str = "rdp") -> None:
        if noise_multiplier <= 0:
            raise ValueError(f"accounting needs a positive noise multiplier, got {noise_multiplier}")
        if not 0 < sample_rate <= 1:
            raise ValueError(f"sample rate must lie in (0, 1], got {sample_rate}")
        self.noise_multiplier, self.sample_rate, self.delta, self.method = noise_multiplier, sample_rate, delta, method
        self._acc = create_accountant(method)

    @property
    def rounds(self) -> int:
        return sum(steps for _, _, steps in self._acc.history)

    def step(self, rounds: int = 1, noise_multiplier: float | None = None) -> None:
        """Compose ``rounds`` more releases (at ``noise_multiplier`` if given: a round's realised noise)."""
        z = self.noise_multiplier if noise_multiplier is None else noise_multiplier
        if z <= 0:
            raise ValueError(f"a release without noise has no finite epsilon (noise multiplier {z})")
        for _ in range(rounds):
            self._acc.step(noise_multiplier=z, sample_rate=self.sample_rate)

    def epsilon(self) -> float:
        """ε at :attr:`delta` after the releases so far (0 before the first)."""
        return float(_quiet(self._acc.get_epsilon, delta=self.delta)) if self._acc.history else 0.0


def user_level_epsilon(
    noise_multiplier: float, sample_rate: float, rounds: int, delta: float, method: str = "rdp"
) -> float:
    """ε of ``rounds`` releases of the sub-sampled Gaussian mechanism."""
    acc = RoundAccountant(noise_multiplier, sample_rate, delta, method)
    acc.step(rounds)
    return acc.epsilon()


def noise_for_epsilon(
    target_epsilon: float, delta: float, sample_rate: float, steps: int, method: str = "rdp"
) -> float:
    """The smallest noise multiplier whose ``steps`` releases at ``sample_rate`` stay within ε."""
    return float(
        _quiet(
            get_noise_multiplier,
            target_epsilon=target_epsilon,
            target_delta=delta,
            sample_rate=sample_rate,
            steps=steps,
            accountant=method,
            epsilon_tolerance=0.005,
        )
    )
