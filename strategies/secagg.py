"""SecAgg+ glue: Flower's ``SecAggPlusWorkflow`` from fedmood's settings, a range check, exact sums.

SecAgg+ scales each client's parameters by ``weight / max_weight``, *silently clips* every value
to ``[-clipping_range, clipping_range]`` and quantises it. A clipped value would corrupt the
aggregate without any sign, so the client checks before masking (:func:`check_secagg_range`) and
fails loudly instead; the server refuses ranges that would overflow the masked sum
(:meth:`fedmood.privacy.settings.SecAggSettings.check`).

Integers travel exactly: :func:`to_grid` writes an integer vector as values that lie on SecAgg+'s
quantisation grid (a client sending them with weight ``max_weight`` is quantised without rounding),
and :func:`from_grid` turns the unmasked average of ``n`` such vectors back into their exact integer
sum. The federated k-modes counts and the distributed-DP noise shares use it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import numpy as np
from flwr.server.workflow import SecAggPlusWorkflow

from strategies.strict import failure_text


class SecAggRangeError(ValueError):
    """A value SecAgg+ would clip or overflow."""


def grid_levels(settings) -> int:
    """The largest integer magnitude :func:`to_grid` can send (half the quantisation range)."""
    return int(settings.quantization_range) // 2


def to_grid(values: np.ndarray, settings, what: str = "value") -> np.ndarray:
    """Integers ``values`` as floats on SecAgg+'s grid (to be sent with weight ``max_weight``).

    Raises :class:`SecAggRangeError` for an integer beyond the grid (SecAgg+ would clip it).
    """
    values = np.asarray(values)
    peak = int(np.abs(values).max(initial=0))
    if peak >= grid_levels(settings):
        raise SecAggRangeError(
            f"{what}: an integer of magnitude {peak} does not fit SecAgg+'s grid of +-{grid_levels(settings)} "
            "levels; raise privacy.secagg.clipping_range together with quantization_range"
        )
    return values.astype(np.float64) * settings.grid_step


def from_grid(average: np.ndarray, n_clients: int, settings) -> np.ndarray:
    """The exact integer sum of ``n_clients`` :func:`to_grid` vectors from SecAgg+'s unmasked average."""
    return np.rint(np.asarray(average, dtype=np.float64) * n_clients / settings.grid_step).astype(np.int64)


def _count(value: float) -> int | float:
    """An integer count stays an int for Flower (a float is read as a fraction)."""
    return int(value) if float(value).is_integer() and value > 1 else float(value)


#: SecAgg+'s four stages, in order (Flower's ``Stage`` names).
STAGES = ("setup", "share_keys", "collect_masked_vectors", "unmask")


class ReportingSecAggPlusWorkflow(SecAggPlusWorkflow):
    """Flower's SecAgg+ workflow that keeps the failures of its last round (:attr:`failures`) and
    the wall time of every stage of every round (:attr:`stage_seconds`, in :data:`STAGES` order).

    Flower's workflow logs a halted round and returns; the clients' errors that halted it stay in
    its per-round state. They are kept here so that the run can fail with the clients' own reason.
    """

    failures: list[Exception]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stage_seconds: dict[str, list[float]] = {stage: [] for stage in STAGES}

    def _timed(self, stage: str, run, grid, context, state) -> bool:
        t0 = time.perf_counter()
        try:
            return run(grid, context, state)
        finally:
            self.stage_seconds[stage].append(time.perf_counter() - t0)

    def setup_stage(self, grid, context, state) -> bool:
        self.failures = state.failures  # the round's list: later stages append to it
        return self._timed("setup", super().setup_stage, grid, context, state)

    def share_keys_stage(self, grid, context, state) -> bool:
        return self._timed("share_keys", super().share_keys_stage, grid, context, state)

    def collect_masked_vectors_stage(self, grid, context, state) -> bool:
        return self._timed("collect_masked_vectors", super().collect_masked_vectors_stage, grid, context, state)

    def unmask_stage(self, grid, context, state) -> bool:
        """Flower's unmask stage, each secret rebuilt from ``threshold`` of its shares.

        Flower's stage hands every share it collected (up to ``num_shares``) to Shamir's combine,
        whose cost grows with the square of the shares given; any ``threshold`` of them determine
        the secret, so the first ``threshold`` are passed (the same secret: half the server's
        unmasking time at 7 shares and threshold 4).
        """
        module = sys.modules[SecAggPlusWorkflow.__module__]
        combine = module.combine_shares
        module.combine_shares = lambda shares: combine(shares[: state.threshold])
        try:
            return self._timed("unmask", super().unmask_stage, grid, context, state)
        finally:
            module.combine_shares = combine

    def halt_reason(self, otherwise: str) -> str:
        """Why the last round halted: the failed clients' errors, or ``otherwise`` if none was recorded."""
        return "; ".join(self.failure_reasons()) or otherwise

    def failure_reasons(self) -> list[str]:
        """The distinct error messages of the last round's failed clients."""
        seen: dict[str, None] = {}
        for failure in getattr(self, "failures", []):
            seen.setdefault(failure_text(failure), None)
        return list(seen)


def secagg_workflow(settings, n_sampled: int) -> ReportingSecAggPlusWorkflow:
    """Flower's SecAgg+ fit workflow for ``settings`` (a ``SecAggSettings``)."""
    settings.check(n_sampled)
    return ReportingSecAggPlusWorkflow(
        num_shares=_count(settings.num_shares),
        reconstruction_threshold=_count(settings.reconstruction_threshold),
        max_weight=float(settings.max_weight),
        clipping_range=float(settings.clipping_range),
        quantization_range=int(settings.quantization_range),
        modulus_range=int(settings.modulus_range),
        timeout=settings.timeout,
    )


def check_secagg_range(
    names: Sequence[str], sent: Sequence[np.ndarray], received: Sequence[np.ndarray], weight: float, settings
) -> None:
    """Raise :class:`SecAggRangeError` if SecAgg+ would clip any value the client sends.

    Checks the sent values and the received ones (a clipping mod may move a value anywhere
    between the two), each scaled by ``weight / max_weight`` as SecAgg+ does.
    """
    ratio = weight / settings.max_weight
    if ratio > 1:
        raise SecAggRangeError(
            f"client weight {weight} exceeds privacy.secagg.max_weight={settings.max_weight}: "
            "the weighted sum would overflow; raise max_weight"
        )
    for name, out, inp in zip(names, sent, received, strict=True):
        peak = max(float(np.abs(out).max(initial=0.0)), float(np.abs(inp).max(initial=0.0))) * ratio
        if peak > settings.clipping_range:
            raise SecAggRangeError(
                f"SecAgg+ would clip '{name}': |value| x weight ratio = {peak:.4g} > "
                f"privacy.secagg.clipping_range={settings.clipping_range}; raise clipping_range"
            )
