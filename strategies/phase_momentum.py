"""Server momentum (FedAvgM; Hsu, Qi & Brown, 2019) for the rounds of one phase of an alternating schedule.

FedAvg moves the global model by the average of the clients' updates. FedAvgM treats that
average as a pseudo-gradient ``Δ_t = x_t − avg_t`` and steps with momentum on the server:

    v_t = β · v_{t−1} + Δ_t,        x_{t+1} = x_t − η · v_t

Flower's ``FedAvgM`` keeps one buffer over every round and every array. Under an alternating
schedule (``strategies/alternating.py``) that is wrong twice over: in a round of the other phase
the phase's arrays do not move (``Δ = 0``), yet ``β · v`` would keep pushing them, and the other
phase's arrays would share the buffer. :class:`PhaseMomentum` keeps the buffer for one phase
and updates it only in that phase's rounds (arrays the phase does not train have ``Δ = 0`` there
and stay put). With ``momentum=0`` and ``learning_rate=1`` it is the wrapped strategy.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from strategies.wrapped import WrappedStrategy


def momentum_step(
    current: np.ndarray, averaged: np.ndarray, buffer: np.ndarray | None, learning_rate: float, momentum: float
) -> tuple[np.ndarray, np.ndarray]:
    """One FedAvgM step of one array: ``(x_{t+1}, v_t)`` from ``x_t`` (``current``), the clients'
    average and ``v_{t−1}`` (``buffer``; None in the first round: ``v_0 = Δ``)."""
    delta = current.astype(np.float64) - averaged.astype(np.float64)
    velocity = delta if buffer is None else momentum * buffer + delta
    return (current - learning_rate * velocity).astype(current.dtype), velocity


class PhaseMomentum(WrappedStrategy):
    """``strategy``'s aggregation followed, in the rounds where ``strategy.phase(round) == phase``,
    by a server step with momentum on the aggregated arrays (module docstring).

    ``strategy`` must name each round's phase (``AlternatingFedAvg.phase``); with ``phase=None``
    every round is stepped (Flower's ``FedAvgM``, restricted to floating-point arrays).
    """

    def __init__(
        self, strategy: Strategy, learning_rate: float = 1.0, momentum: float = 0.9, phase: str | None = None
    ) -> None:
        super().__init__(strategy)
        if learning_rate <= 0:
            raise ValueError(f"PhaseMomentum: learning_rate {learning_rate} is not positive")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"PhaseMomentum: momentum {momentum} is not in [0, 1)")
        if phase is not None and phase not in getattr(strategy, "phases", ()):
            raise ValueError(f"PhaseMomentum: phase {phase!r} is not one of the strategy's phases")
        self.learning_rate, self.momentum, self.phase_name = float(learning_rate), float(momentum), phase
        self.sent: dict[int, ArrayRecord] = {}
        self.buffer: dict[str, np.ndarray] = {}

    def _stepped(self, server_round: int) -> bool:
        return self.phase_name is None or self.strategy.phase(server_round) == self.phase_name

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid):
        if self._stepped(server_round):
            self.sent = {server_round: arrays}  # the model the round starts from: x_t
        return self.strategy.configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]):
        arrays, metrics = self.strategy.aggregate_train(server_round, replies)
        if arrays is None or not self._stepped(server_round):
            return arrays, metrics
        if server_round not in self.sent:
            raise RuntimeError(f"PhaseMomentum: round {server_round} was aggregated but never configured")
        current = self.sent.pop(server_round)
        stepped: dict[str, Array] = {}
        for key in arrays:
            averaged = arrays[key].numpy()
            if key not in current or not np.issubdtype(averaged.dtype, np.floating):  # nothing to step
                stepped[key] = arrays[key]
                continue
            new, self.buffer[key] = momentum_step(
                current[key].numpy(), averaged, self.buffer.get(key), self.learning_rate, self.momentum
            )
            stepped[key] = Array(new)
        return ArrayRecord(stepped), metrics
