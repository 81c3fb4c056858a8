"""The server's side of privacy in a run: noise level, accountants, and what is reported.

:class:`PrivacyLedger` turns the settings into the numbers a run needs (clients per round, the
noise multiplier, possibly derived from a target ε), steps the user-level accountant once per
released aggregate, and summarises the privacy spent: user-level (ε, δ) for central DP, checked
against Flower's own accountant where that applies; for distributed DP, against the server (no
amplification by sampling), each round at the noise multiplier that the shares it actually summed
give (:func:`fedmood.privacy.distributed.effective_noise_multiplier`); the clients' record-level ε
(max and mean, from their own reports) for DP-SGD.
"""

from __future__ import annotations

import math

from fedmood.keys import DPSGD_DELTA, DPSGD_EPSILON, DPSGD_NOISE, DPSGD_PREFIX, spread
from fedmood.privacy import distributed
from fedmood.privacy.accounting import RoundAccountant, noise_for_epsilon
from fedmood.privacy.settings import PrivacySettings

NAN = float("nan")


class PrivacyLedger:
    """Privacy bookkeeping of one federated run on ``n_users`` clients."""

    def __init__(
        self,
        settings: PrivacySettings,
        n_users: int,
        clients_per_round: int | None,
        num_rounds: int,
        fed: dict | None = None,
        dim: int = 0,
    ):
        """``fed`` (the federation config) and ``dim`` (coordinates of the shared model) are needed
        for distributed DP: the fewest shares a round may sum, and the rounding in the sensitivity."""
        self.settings, self.n_users, self.num_rounds = settings, n_users, num_rounds
        self.per_round = int(clients_per_round or n_users)
        if not 0 < self.per_round <= n_users:
            raise ValueError(f"federation.clients_per_round must lie in 1..{n_users}, got {clients_per_round}")
        self.sample_rate = self.per_round / n_users
        self.delta = settings.delta_for(n_users)
        dp = settings.central_dp
        self.noise_multiplier = NAN
        self.accountant: RoundAccountant | None = None
        self.flower: object | None = None  # Flower's RdpAccountant, where it applies
        self.share_sigma = NAN  # distributed DP: each client's share, in SecAgg+ grid levels
        self.dim = dim
        if settings.distributed_dp.enabled:
            self.noise_multiplier = distributed.noise_multiplier(settings, n_users, num_rounds)
            self.share_sigma = distributed.device_share_sigma(settings, fed or {}, n_users, dim)
            distributed.check_grid_room(self.share_sigma, settings.secagg.grid_step, settings.secagg.clipping_range)
            self.accountant = RoundAccountant(self.noise_multiplier, 1.0, self.delta, settings.accountant)
        elif dp.enabled:
            z = dp.noise_multiplier
            if settings.target_epsilon is not None:
                z = noise_for_epsilon(
                    settings.target_epsilon, self.delta, self.sample_rate, num_rounds, settings.accountant
                )
            self.noise_multiplier = z
            if z > 0:
                self.accountant = RoundAccountant(z, self.sample_rate, self.delta, settings.accountant)
        self._dpsgd: dict[str, float] = {}

    @property
    def flower_accounting_applies(self) -> bool:
        """Flower's accountant: fixed clipping, every client every round, Message API, noise > 0."""
        dp = self.settings.central_dp
        return (
            dp.enabled
            and not dp.adaptive
            and not self.settings.secagg.enabled
            and self.per_round == self.n_users
            and self.noise_multiplier > 0
        )

    def released(self, metrics: dict | None, clients: int | None = None) -> None:
        """One aggregate of ``clients`` updates was released (noised under DP); record the clients' DP-SGD ε."""
        if self.accountant is not None and self.settings.distributed_dp.enabled:
            d = self.settings
            z = distributed.effective_noise_multiplier(
                self.share_sigma, int(clients or 0), d.distributed_dp.clipping_norm, d.secagg.grid_step, self.dim
            )
            self.accountant.step(noise_multiplier=z)
        elif self.accountant is not None:
            self.accountant.step()
        if metrics and spread(DPSGD_EPSILON, "max") in metrics:
            self._dpsgd = {k: float(metrics[k]) for k in metrics if k.startswith(DPSGD_PREFIX)}

    def epsilon(self) -> float:
        """ε spent so far (user level for central DP, max over clients for DP-SGD; nan without DP)."""
        if self.accountant is not None:
            return self.accountant.epsilon()
        if self.settings.central_dp.enabled:  # zero noise: no guarantee
            return math.inf
        return self._dpsgd.get(spread(DPSGD_EPSILON, "max"), NAN)

    def summary(self) -> dict:
        """The privacy columns of a run's summary."""
        s = self.settings
        out = {
            "mechanism": s.mechanism,
            "secagg": s.secagg.enabled,
            "dp_level": "user" if s.user_level else ("record" if s.dpsgd.enabled else "none"),
            "noise_multiplier": self.noise_multiplier,
            "clients_per_round": self.per_round,
            "sample_rate": self.sample_rate,
            "epsilon": self.epsilon(),
            "delta": NAN,
            "epsilon_flower": NAN,
            "accountant": s.accountant if s.any_dp else "",
            "protects_against": s.protects_against,
            "noise_source": s.noise_source_name if s.any_dp else "",
            "target_epsilon": s.target_epsilon if s.target_epsilon is not None else NAN,
        }
        if s.distributed_dp.enabled:
            out["delta"] = self.delta
            out["clipping_norm"] = s.distributed_dp.clipping_norm
            out["share_sigma"] = self.share_sigma * s.secagg.grid_step  # per coordinate, in parameter units
            out["clipping"] = "fixed-client"
        if s.central_dp.enabled:
            out["delta"] = self.delta
            out["clipping_norm"] = s.central_dp.clipping_norm
            out["clipping"] = ("adaptive-" if s.central_dp.adaptive else "fixed-") + s.central_dp.clipping
            if self.flower is not None:
                out["epsilon_flower"] = float(self.flower.get_privacy_spent().epsilon)
        if s.dpsgd.enabled:
            out["noise_multiplier"] = self._dpsgd.get(DPSGD_NOISE, s.dpsgd.noise_multiplier)
            out["delta"] = self._dpsgd.get(spread(DPSGD_DELTA, "max"), NAN)
            out["epsilon_mean"] = self._dpsgd.get(spread(DPSGD_EPSILON, "mean"), NAN)
            out["max_grad_norm"] = s.dpsgd.max_grad_norm
        return out
