"""SecAgg+ glue: Flower's ``SecAggPlusWorkflow`` from fedmood's settings, and a range check.

SecAgg+ scales each client's parameters by ``weight / max_weight``, *silently clips* every value
to ``[-clipping_range, clipping_range]`` and quantises it. A clipped value would corrupt the
aggregate without any sign, so the client checks before masking (:func:`check_secagg_range`) and
fails loudly instead; the server refuses ranges that would overflow the masked sum
(:meth:`fedmood.privacy.settings.SecAggSettings.check`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from flwr.server.workflow import SecAggPlusWorkflow


class SecAggRangeError(ValueError):
    """A value SecAgg+ would clip or overflow."""


def _count(value: float) -> int | float:
    """An integer count stays an int for Flower (a float is read as a fraction)."""
    return int(value) if float(value).is_integer() and value > 1 else float(value)


def secagg_workflow(settings, n_sampled: int) -> SecAggPlusWorkflow:
    """Flower's SecAgg+ fit workflow for ``settings`` (a ``SecAggSettings``)."""
    settings.check(n_sampled)
    return SecAggPlusWorkflow(
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
