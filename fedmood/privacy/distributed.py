"""Distributed DP: each device adds its share of the noise before SecAgg+, so the server need not be trusted.

The distributed discrete Gaussian mechanism of Kairouz, Liu & Steinke (ICML 2021) on SecAgg+'s
integer ring. Each sampled device

1. clips its model update to L2 norm ``C`` (Flower's ``fixedclipping_mod``);
2. writes its clipped model on SecAgg+'s quantisation grid (step ``s = 2 R / Q``), rounding each
   coordinate to the nearest level;
3. adds integer noise from the discrete Gaussian N_Z(0, σ²), with ``σ = z Δ / √m`` in grid units,
   where ``Δ = C / s + √d`` bounds how far one device's rounded contribution can move the sum
   (``d`` coordinates, each rounding moving by less than one level) and ``m`` is the fewest devices
   a round may aggregate (every sampled one when strict, else ``federation.min_replies``);
4. hands it to SecAgg+, which sums the integers exactly (the values lie on its grid).

The server unmasks the sum of ``n ≥ m`` shares, already noised. By Kairouz et al. (Theorem 1, with
their ``τ`` correction for summing discrete Gaussians), the sum satisfies ``½ε_n²``-concentrated DP
with ``ε_n = min(√(Δ²/(nσ²) + τd/2), Δ/(√n σ) + τ√d)``, ``τ = 10 Σ_{k<n} exp(-2π²σ² k/(k+1))``: the
Rényi DP of a Gaussian mechanism of noise multiplier ``1/ε_n``, which Opacus's RDP accountant
composes over the rounds (:func:`effective_noise_multiplier`). With ``n = m`` and ``σ`` in the tens
of thousands of levels, ``τ`` underflows to 0 and the multiplier is exactly ``z``; more survivors
only add noise.

Against the server there is no amplification by sampling (it chooses who takes part), so each
round is accounted at sampling rate 1, for a user who takes part in every round.
"""

from __future__ import annotations

import math

from fedmood.privacy.accounting import noise_for_epsilon
from fedmood.privacy.settings import PrivacyConfigError


def grid_sensitivity(clipping_norm: float, step: float, dim: int) -> float:
    """Δ: the L2 bound, in grid levels, on how far one device's rounded clipped update moves the sum."""
    return clipping_norm / step + math.sqrt(dim)


def share_sigma(noise_multiplier: float, clipping_norm: float, step: float, dim: int, min_shares: int) -> float:
    """σ of each device's discrete Gaussian share (grid levels): ``m`` shares give noise ``z Δ``."""
    if min_shares < 1:
        raise ValueError(f"the fewest shares in a sum must be >= 1, got {min_shares}")
    return noise_multiplier * grid_sensitivity(clipping_norm, step, dim) / math.sqrt(min_shares)


def _tau(sigma: float, n: int) -> float:
    return 10.0 * sum(math.exp(-2 * math.pi**2 * sigma**2 * k / (k + 1)) for k in range(1, min(n, 10_000)))


def effective_noise_multiplier(sigma: float, shares: int, clipping_norm: float, step: float, dim: int) -> float:
    """The Gaussian noise multiplier whose Rényi DP bounds a sum of ``shares`` discrete Gaussian shares.

    ``1/ε_n`` of Kairouz, Liu & Steinke's Theorem 1 (see the module doc); 0 without shares.
    """
    if shares < 1 or sigma <= 0:
        return 0.0
    delta2 = grid_sensitivity(clipping_norm, step, dim)
    tau = _tau(sigma, shares)
    eps = min(
        math.sqrt(delta2**2 / (shares * sigma**2) + tau * dim / 2),
        delta2 / (math.sqrt(shares) * sigma) + tau * math.sqrt(dim),
    )
    return 1.0 / eps


def check_grid_room(sigma: float, step: float, clipping_range: float) -> None:
    """Refuse noise shares that would not fit SecAgg+'s range next to the model (8σ within half of it)."""
    if 8 * sigma * step > clipping_range / 2:
        raise PrivacyConfigError(
            "secagg.clipping_range",
            f"each device's noise share (σ = {sigma * step:.3g} per coordinate) needs 8σ = {8 * sigma * step:.3g} "
            f"within half of the +-{clipping_range:g} range SecAgg+ carries; raise clipping_range (with "
            "quantization_range), lower the noise or take more clients per round",
        )


def min_shares(fed: dict, n_users: int) -> int:
    """``m``: the fewest clients a round may aggregate (every sampled one when strict, else min_replies)."""
    per_round = int(fed.get("clients_per_round") or n_users)
    if bool(fed.get("strict", True)):
        return per_round
    return int(fed.get("min_replies") or per_round)


def noise_multiplier(settings, n_users: int, num_rounds: int) -> float:
    """``z``: configured, or the smallest that keeps ``num_rounds`` unamplified releases within the target ε."""
    if settings.target_epsilon is None:
        return float(settings.distributed_dp.noise_multiplier)
    delta = settings.delta_for(n_users)
    return noise_for_epsilon(settings.target_epsilon, delta, 1.0, num_rounds, settings.accountant)


def device_share_sigma(settings, fed: dict, n_users: int, dim: int) -> float:
    """σ (grid levels) of a device's share, from the run's own config: a device does not take its
    noise level from the server."""
    z = noise_multiplier(settings, n_users, int(fed["num_rounds"]))
    clip = settings.distributed_dp.clipping_norm
    return share_sigma(z, clip, settings.secagg.grid_step, dim, min_shares(fed, n_users))
