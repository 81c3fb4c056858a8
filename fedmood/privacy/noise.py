"""Where every differential-privacy noise draw comes from: the operating system's entropy, never the seed.

A DP guarantee assumes the adversary does not know the noise. Everything else in fedmood is
seeded from the config for reproducibility, and the config sits in every results folder: noise
drawn from a seeded generator can be regenerated and subtracted by anyone who reads it
(:func:`fedmood.threat_study.attacks.attribute.replay_scores` does exactly that). So every noise draw of every mechanism
(Flower's central-DP wrappers, the distributed shares, Opacus's DP-SGD on the devices, the
Poisson sampling of DP-SGD batches, the sampling of clients in a DP round) goes through a
:class:`NoiseSource`:

* :class:`SecureNoise` (always, unless a test says otherwise): uniforms from ``os.urandom``;
* :class:`ReplayableNoise`: the same algorithms fed from a generator seeded by the config's seed and
  the name of the draw (``stream``), i.e. noise anyone can replay. It exists for tests and for the
  replay attack, and only behind ``privacy.insecure_replayable_noise``; a run that uses it warns
  on stderr and records ``noise_source=REPLAYABLE-INSECURE`` in its summary.

Both turn 53-bit uniforms into Gaussians by the Box-Muller transform and, as Opacus's
``secure_mode``, return the sum of four draws at half the standard deviation (Holohan & Braghin
2021: a single floating-point Gaussian sample can leak its input through its low-order bits).
Integer noise for the distributed mechanism is the discrete Gaussian, drawn with the rejection
sampler of Canonne, Kamath & Steinke (NeurIPS 2020), vectorised; its Bernoulli trials compare
53-bit uniforms with floating-point probabilities.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
from abc import ABC, abstractmethod

import numpy as np
import torch

_TWO53 = float(2**53)
_warned: set[str] = set()


class NoiseSource(ABC):
    """Uniform, Gaussian and discrete-Gaussian draws from one source of randomness."""

    secure: bool = True
    name: str = "os-entropy"

    @abstractmethod
    def _bits53(self, n: int) -> np.ndarray:
        """``n`` independent uniform integers in [0, 2**53)."""

    def uniform(self, n: int) -> np.ndarray:
        """``n`` uniforms in the open interval (0, 1) (53-bit resolution, never 0 or 1)."""
        return (self._bits53(int(n)).astype(np.float64) + 0.5) / _TWO53

    def _standard_normal(self, n: int) -> np.ndarray:
        m = (n + 1) // 2
        u = self.uniform(2 * m)
        r = np.sqrt(-2.0 * np.log(u[:m]))
        theta = 2.0 * math.pi * u[m:]
        return np.concatenate([r * np.cos(theta), r * np.sin(theta)])[:n]

    def normal(self, shape: tuple[int, ...] | int, std: float) -> np.ndarray:
        """Gaussian noise N(0, std²) of ``shape`` (float64); zeros when ``std`` is 0."""
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        n = int(np.prod(shape, dtype=np.int64))
        if std == 0 or n == 0:
            return np.zeros(shape)
        if std < 0 or not math.isfinite(std):
            raise ValueError(f"noise standard deviation must be finite and >= 0, got {std}")
        draws = self._standard_normal(4 * n).reshape(4, n).sum(axis=0) / 2.0  # secure_mode: 4 draws, std/2 each
        return (draws * std).reshape(shape)

    def torch_normal(self, reference: torch.Tensor, std: float) -> torch.Tensor:
        """Gaussian noise shaped, typed and placed like ``reference``."""
        noise = torch.from_numpy(self.normal(tuple(reference.shape), std))
        return noise.to(dtype=reference.dtype, device=reference.device)

    def bernoulli_mask(self, n: int, p: float) -> np.ndarray:
        """``n`` independent Bernoulli(p) trials (e.g. Poisson sampling of rows or clients)."""
        return self.uniform(n) < p

    def _discrete_laplace(self, n: int, t: int) -> np.ndarray:
        """``n`` draws with P(y) ∝ exp(-|y|/t) (Canonne, Kamath & Steinke, Algorithm 2)."""
        out: list[np.ndarray] = []
        have = 0
        while have < n:
            k = 2 * (n - have) + 16
            u = np.minimum(np.floor(self.uniform(k) * t), t - 1)
            keep = self.uniform(k) < np.exp(-u / t)
            v = np.floor(-np.log(self.uniform(k)))  # geometric: P(v) = (1 - 1/e) e^-v
            x = u + t * v
            negative = self.uniform(k) < 0.5
            keep &= ~(negative & (x == 0))
            y = np.where(negative, -x, x)[keep]
            out.append(y)
            have += len(y)
        return np.concatenate(out)[:n]

    def discrete_gaussian(self, shape: tuple[int, ...] | int, sigma: float) -> np.ndarray:
        """Integer noise from the discrete Gaussian N_Z(0, sigma²) (CKS Algorithm 3), as int64."""
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        n = int(np.prod(shape, dtype=np.int64))
        if sigma == 0 or n == 0:
            return np.zeros(shape, dtype=np.int64)
        if sigma < 0 or not math.isfinite(sigma):
            raise ValueError(f"discrete Gaussian sigma must be finite and >= 0, got {sigma}")
        t = math.floor(sigma) + 1
        out: list[np.ndarray] = []
        have = 0
        while have < n:
            k = 2 * (n - have) + 16
            y = self._discrete_laplace(k, t)
            accept = self.uniform(k) < np.exp(-((np.abs(y) - sigma**2 / t) ** 2) / (2 * sigma**2))
            out.append(y[accept])
            have += int(accept.sum())
        return np.concatenate(out)[:n].astype(np.int64).reshape(shape)


class SecureNoise(NoiseSource):
    """Uniforms from the operating system's cryptographically secure generator (``os.urandom``)."""

    def _bits53(self, n: int) -> np.ndarray:
        return np.frombuffer(os.urandom(8 * n), dtype=np.uint64) >> np.uint64(11)


class ReplayableNoise(NoiseSource):
    """INSECURE: noise determined by ``(seed, stream)``: for tests and the replay attack only."""

    secure = False
    name = "REPLAYABLE-INSECURE"

    def __init__(self, seed: int, stream: str) -> None:
        digest = hashlib.sha256(f"{int(seed)}/{stream}".encode()).digest()
        self._rng = np.random.Generator(np.random.PCG64(int.from_bytes(digest[:16], "little")))

    def _bits53(self, n: int) -> np.ndarray:
        return self._rng.integers(0, 2**53, size=n, dtype=np.uint64)


def noise_source(replayable_seed: int | None, stream: str) -> NoiseSource:
    """The noise of one draw: secure, or replayable from ``replayable_seed`` (tests only; warns once)."""
    if replayable_seed is None:
        return SecureNoise()
    if "warned" not in _warned:
        _warned.add("warned")
        print(
            "WARNING: privacy.insecure_replayable_noise is on: the DP noise of this run can be regenerated "
            "from its config seed, so its (epsilon, delta) guarantee is VOID (for tests and the replay attack only)",
            file=sys.stderr,
            flush=True,
        )
    return ReplayableNoise(replayable_seed, stream)
