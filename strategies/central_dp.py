"""Flower's central-DP strategy wrappers, chosen from fedmood's settings.

User-level DP-FedAvg: each client's update is clipped to a norm (on the server, or on the client
with Flower's clipping mods), the clipped updates are averaged with equal weights and Gaussian
noise of standard deviation ``z * clip / clients per round`` is added to the average.

* Message API (no SecAgg+): server- or client-side, fixed or adaptive clipping
  (``flwr.serverapp.strategy.DifferentialPrivacy*``). With fixed clipping and every client in
  every round, Flower's ``RdpAccountant`` can be attached (``flower_accountant``).
* Legacy API (with SecAgg+): client-side fixed clipping only
  (``flwr.server.strategy.DifferentialPrivacyClientSideFixedClipping`` + ``fixedclipping_mod``).
"""

from __future__ import annotations

from flwr.server.strategy import DifferentialPrivacyClientSideFixedClipping as LegacyClientSideFixedClipping
from flwr.serverapp import NeighboringRelation, PrivacyConfig, RdpAccountant, SamplingMethod
from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideAdaptiveClipping,
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideAdaptiveClipping,
    DifferentialPrivacyServerSideFixedClipping,
)


def flower_accountant(delta: float, population: int) -> RdpAccountant:
    """Flower's RDP accountant for fixed clipping without sampling amplification."""
    return RdpAccountant(
        PrivacyConfig(
            target_delta=delta,
            population_size=population,
            neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
            sampling_method=SamplingMethod.NO_AMPLIFICATION,
        )
    )


def wrap_central_dp(strategy, settings, noise_multiplier: float, num_sampled: int, accountant=None):
    """``strategy`` wrapped in the Message-API DP wrapper that ``settings`` (``CentralDpSettings``) asks for."""
    if settings.adaptive:
        # Flower's default clipped-count noise (clients/20, as Andrew et al.) must exceed z/2; with
        # few clients or much noise, use z itself: the update noise then rises by only 15 %.
        stddev = settings.clipped_count_stddev
        if stddev is None:
            stddev = max(num_sampled / 20, noise_multiplier)
        cls = (
            DifferentialPrivacyServerSideAdaptiveClipping
            if settings.clipping == "server"
            else DifferentialPrivacyClientSideAdaptiveClipping
        )
        return cls(
            strategy,
            noise_multiplier,
            num_sampled,
            initial_clipping_norm=settings.clipping_norm,
            target_clipped_quantile=settings.target_clipped_quantile,
            clip_norm_lr=settings.clip_norm_lr,
            clipped_count_stddev=stddev,
        )
    cls = (
        DifferentialPrivacyServerSideFixedClipping
        if settings.clipping == "server"
        else DifferentialPrivacyClientSideFixedClipping
    )
    return cls(strategy, noise_multiplier, settings.clipping_norm, num_sampled, accountant=accountant)


def wrap_central_dp_legacy(strategy, settings, noise_multiplier: float, num_sampled: int):
    """The legacy client-side fixed-clipping wrapper (central DP together with SecAgg+)."""
    return LegacyClientSideFixedClipping(strategy, noise_multiplier, settings.clipping_norm, num_sampled)
