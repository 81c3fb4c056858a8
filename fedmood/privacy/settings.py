"""The privacy mechanism of a federated run, read and checked from the Hydra ``privacy`` group.

One mechanism per run, built from three independent switches:

* ``secagg.enabled``: Flower's SecAgg+ around every training round (the server only learns the
  weighted sum of the clients' item parameters);
* ``central_dp.enabled``: user-level central DP (Flower's DP strategy wrappers): each client's
  update is clipped (on the server, or on the client with Flower's clipping mods) and the server
  adds Gaussian noise to the aggregate; fixed or adaptive clipping;
* ``distributed_dp.enabled``: user-level distributed DP: each client clips its update and adds its
  share of discrete Gaussian noise before SecAgg+, so the server only unmasks a noised sum
  (:mod:`fedmood.privacy.distributed`; needs ``secagg.enabled``);
* ``dpsgd.enabled``: record-level local DP-SGD with Opacus on every client.

Combinations that cannot work are refused here with the field that makes them so, before any
process is started.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fedmood.errors import InputError, Problem
from fedmood.privacy.noise import NoiseSource, noise_source

MECHANISMS = ("none", "secagg", "central_dp", "central_dp_secagg", "distributed_dp", "dpsgd")


class PrivacyConfigError(InputError):
    """A privacy configuration that cannot be run."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(Problem(f"privacy config, field '{field}'", problem))


@dataclass(frozen=True)
class SecAggSettings:
    """SecAgg+ parameters (see ``flwr.server.workflow.SecAggPlusWorkflow``)."""

    enabled: bool = False
    num_shares: float = 7  # int > 2, or a fraction of the sampled clients
    reconstruction_threshold: float = 4  # int < num_shares, or a fraction of the shares
    clipping_range: float = 8.0  # every (weight-scaled) parameter must lie in +-clipping_range
    quantization_range: int = 2**22
    modulus_range: int = 2**32
    max_weight: float = 1000.0  # largest client weight (training rows; 1 under central DP)
    timeout: float | None = None

    @property
    def grid_step(self) -> float:
        """The value of one quantisation level: ``2 * clipping_range / quantization_range``."""
        return 2.0 * float(self.clipping_range) / int(self.quantization_range)

    def check(self, n_sampled: int) -> None:
        """Refuse ranges that would overflow the masked sum or make the protocol impossible."""
        if self.clipping_range <= 0:
            raise PrivacyConfigError("secagg.clipping_range", f"must be positive, got {self.clipping_range}")
        if n_sampled * self.quantization_range > self.modulus_range:
            raise PrivacyConfigError(
                "secagg.quantization_range",
                f"{n_sampled} clients x {self.quantization_range} exceeds modulus_range {self.modulus_range}: "
                "the masked sum would wrap around; lower quantization_range",
            )
        if n_sampled < 3:
            raise PrivacyConfigError("secagg.enabled", f"SecAgg+ needs at least 3 clients per round, got {n_sampled}")
        step = self.grid_step
        if math.frexp(step)[0] != 0.5 or not float(self.clipping_range / step).is_integer():
            raise PrivacyConfigError(
                "secagg.clipping_range",
                f"2 x clipping_range / quantization_range = {step:g} must be a power of two (with clipping_range "
                "a whole number of steps), so that integer sums (clustering counts, noise shares) are exact",
            )


@dataclass(frozen=True)
class CentralDpSettings:
    """Flower's central-DP wrappers: clipping side, fixed or adaptive, noise."""

    enabled: bool = False
    clipping: str = "server"  # server | client
    adaptive: bool = False
    noise_multiplier: float = 1.0
    clipping_norm: float = 0.05  # fixed norm, or the initial norm when adaptive
    target_clipped_quantile: float = 0.5
    clip_norm_lr: float = 0.2
    clipped_count_stddev: float | None = None


@dataclass(frozen=True)
class DistributedDpSettings:
    """Distributed discrete Gaussian noise added by the clients under SecAgg+."""

    enabled: bool = False
    noise_multiplier: float = 1.0  # z of the noise in the sum, against the clipped update's sensitivity
    clipping_norm: float = 0.05  # L2 norm of a client's item-parameter update


@dataclass(frozen=True)
class DpSgdSettings:
    """Opacus DP-SGD on each client."""

    enabled: bool = False
    noise_multiplier: float = 1.0
    max_grad_norm: float = 1.0


@dataclass(frozen=True)
class PrivacySettings:
    """The whole ``privacy`` config group."""

    mechanism: str = "none"
    secagg: SecAggSettings = SecAggSettings()
    central_dp: CentralDpSettings = CentralDpSettings()
    distributed_dp: DistributedDpSettings = DistributedDpSettings()
    dpsgd: DpSgdSettings = DpSgdSettings()
    target_epsilon: float | None = None  # derive the noise multiplier for this epsilon
    delta: float | None = None  # None: min(1/N^1.1, 1e-5) (N: users, or the client's rows for DP-SGD)
    accountant: str = "rdp"  # Opacus accountant: rdp | prv
    insecure_replayable_noise: bool = False  # TESTS ONLY: noise from the config seed (voids the guarantee)
    seed: int = 0  # the run's seed: used for the noise only when insecure_replayable_noise is on

    @classmethod
    def from_cfg(cls, cfg: dict) -> PrivacySettings:
        """Settings from the resolved experiment config (``cfg["privacy"]``; absent = none)."""
        p = dict(cfg.get("privacy") or {})
        try:
            settings = cls(
                mechanism=p.get("mechanism", "none"),
                secagg=SecAggSettings(**(p.get("secagg") or {})),
                central_dp=CentralDpSettings(**(p.get("central_dp") or {})),
                distributed_dp=DistributedDpSettings(**(p.get("distributed_dp") or {})),
                dpsgd=DpSgdSettings(**(p.get("dpsgd") or {})),
                target_epsilon=p.get("target_epsilon"),
                delta=p.get("delta"),
                accountant=p.get("accountant", "rdp"),
                insecure_replayable_noise=bool(p.get("insecure_replayable_noise", False)),
                seed=int(cfg.get("seed", 0)),
            )
        except TypeError as err:  # an unknown key in one of the sub-tables
            raise PrivacyConfigError("privacy", str(err)) from err
        settings.validate()
        settings.centres(cfg.get("data") or {})
        return settings

    @property
    def any_dp(self) -> bool:
        return self.central_dp.enabled or self.distributed_dp.enabled or self.dpsgd.enabled

    @property
    def user_level(self) -> bool:
        """User-level DP (one user's whole update), as opposed to DP-SGD's record level."""
        return self.central_dp.enabled or self.distributed_dp.enabled

    @property
    def protects_against(self) -> str:
        """Whom the run's (ε, δ) protects a user against (the threat model, for summaries)."""
        if self.distributed_dp.enabled:
            return "the server and observers of the released models"
        if self.central_dp.enabled:
            seen = "the exact sum of the updates" if self.secagg.enabled else "every client's update"
            return f"observers of the released models only (the server sees {seen})"
        if self.dpsgd.enabled:
            return "the server and observers, for one record (not for a user's whole data)"
        return ""

    @property
    def protected(self) -> bool:
        """Any mechanism at all: then only the protected model leaves a device; its metrics, ε,
        personalisation and suggestions go to its own report (:mod:`fedmood.federated.device_report`)."""
        return self.secagg.enabled or self.any_dp

    @property
    def uniform_weights(self) -> bool:
        """Under DP every client reports weight 1: central DP's noise is calibrated for equal weights,
        and a DP-SGD device's row count would tell the server whether a record was added."""
        return self.any_dp

    def validate(self) -> None:
        """Refuse combinations that cannot run (names the offending field)."""
        c = self.central_dp
        if self.mechanism not in MECHANISMS:
            raise PrivacyConfigError("mechanism", f"must be one of {', '.join(MECHANISMS)}, got {self.mechanism!r}")
        if self.accountant not in ("rdp", "prv"):
            raise PrivacyConfigError("accountant", f"must be 'rdp' or 'prv', got {self.accountant!r}")
        if sum([c.enabled, self.distributed_dp.enabled, self.dpsgd.enabled]) > 1:
            raise PrivacyConfigError("dpsgd.enabled", "choose one DP mechanism: central_dp, distributed_dp or dpsgd")
        d = self.distributed_dp
        if d.enabled and not self.secagg.enabled:
            raise PrivacyConfigError(
                "distributed_dp.enabled", "the noise shares only hide a client's update inside SecAgg+: enable secagg"
            )
        if d.enabled and self.secagg.max_weight != 1.0:
            raise PrivacyConfigError("secagg.max_weight", "under distributed DP every client has weight 1: set 1.0")
        if d.enabled and d.clipping_norm <= 0:
            raise PrivacyConfigError("distributed_dp.clipping_norm", f"must be positive, got {d.clipping_norm}")
        if c.clipping not in ("server", "client"):
            raise PrivacyConfigError("central_dp.clipping", f"must be 'server' or 'client', got {c.clipping!r}")
        if c.enabled and self.secagg.enabled and c.clipping == "server":
            raise PrivacyConfigError(
                "central_dp.clipping", "with SecAgg+ the server never sees an update to clip: use 'client'"
            )
        if c.enabled and self.secagg.enabled and c.adaptive:
            raise PrivacyConfigError(
                "central_dp.adaptive", "adaptive clipping with SecAgg+ is not supported (use fixed clipping)"
            )
        for name, val in (
            ("central_dp.noise_multiplier", c.noise_multiplier),
            ("distributed_dp.noise_multiplier", d.noise_multiplier),
            ("dpsgd.noise_multiplier", self.dpsgd.noise_multiplier),
        ):
            if val < 0 or not math.isfinite(val):
                raise PrivacyConfigError(name, f"must be a finite non-negative number, got {val}")
        if c.enabled and c.clipping_norm <= 0:
            raise PrivacyConfigError("central_dp.clipping_norm", f"must be positive, got {c.clipping_norm}")
        if self.dpsgd.enabled and self.dpsgd.max_grad_norm <= 0:
            raise PrivacyConfigError("dpsgd.max_grad_norm", f"must be positive, got {self.dpsgd.max_grad_norm}")
        if self.target_epsilon is not None and self.target_epsilon <= 0:
            raise PrivacyConfigError("target_epsilon", f"must be positive, got {self.target_epsilon}")
        if self.delta is not None and not 0 < self.delta < 1:
            raise PrivacyConfigError("delta", f"must lie in (0, 1), got {self.delta}")

    def centres(self, data_cfg: dict) -> str:
        """Where the activity items come from: ``federated`` or ``public`` (``data.centres``, ``auto``
        resolved: public under DP, whose ε does not cover federated clustering statistics)."""
        mode = str(data_cfg.get("centres") or "auto")
        if mode not in ("auto", "federated", "public"):
            raise PrivacyConfigError("data.centres", f"must be auto, federated or public, got {mode!r}")
        if mode == "auto":
            return "public" if self.any_dp else "federated"
        if mode == "federated" and self.any_dp:
            raise PrivacyConfigError(
                "data.centres",
                f"federated clustering under {self.mechanism}: the devices' count tables would be released "
                "outside the DP guarantee; use data.centres=public (items from public reference diaries)",
            )
        return mode

    def delta_for(self, population: int) -> float:
        """δ: the configured value, or min(1/N^1.1, 1e-5) for a population of N (users or records).

        δ must be well below 1/N: a mechanism that publishes one random member's data in full is
        (0, 1/N)-DP.
        """
        if self.delta is not None:
            return float(self.delta)
        return min(1.0 / max(int(population), 1) ** 1.1, 1e-5)

    def noise(self, stream: str) -> NoiseSource:
        """The source of the DP noise draw named ``stream``: OS entropy, or (tests only) replayable."""
        return noise_source(self.seed if self.insecure_replayable_noise else None, stream)

    @property
    def noise_source_name(self) -> str:
        return self.noise("").name
