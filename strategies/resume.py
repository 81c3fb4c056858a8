"""Resume a Message-API strategy after ``done`` rounds: Flower's ``Strategy.start`` counts from 1.

``ResumeAt(strategy, done).start(..., num_rounds=total - done)`` runs rounds ``done+1 .. total``:
every call reaching the wrapped strategy, and the ``server-round`` its messages carry, has the
true round number, so learning-rate schedules, seeds and the last-round evaluation of the wrapped
strategy behave as in an uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import ConfigRecord, Message
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from strategies.wrapped import WrappedStrategy


class ResumeAt(WrappedStrategy):
    """Shift every round number by ``done`` before it reaches ``strategy``."""

    def __init__(self, strategy: Strategy, done: int) -> None:
        super().__init__(strategy)
        if done < 0:
            raise ValueError(f"done must be >= 0, got {done}")
        self.done = done

    def configure_train(self, server_round: int, arrays, config: ConfigRecord, grid: Grid):
        return self.strategy.configure_train(server_round + self.done, arrays, config, grid)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]):
        return self.strategy.aggregate_train(server_round + self.done, replies)

    def configure_evaluate(self, server_round: int, arrays, config: ConfigRecord, grid: Grid):
        return self.strategy.configure_evaluate(server_round + self.done, arrays, config, grid)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]):
        return self.strategy.aggregate_evaluate(server_round + self.done, replies)
