"""A Message-API strategy that hands every call to the strategy it wraps.

Subclasses override the calls they change (e.g. :class:`strategies.fedaws.FedAwS` and
:class:`strategies.fedlda.FederatedLDA` change ``aggregate_train``); any attribute the wrapper
lacks is read from the wrapped strategy (e.g. ``AlternatingFedAvg.phase``).
"""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy


class WrappedStrategy(Strategy):
    """Every call goes to ``strategy`` unless a subclass overrides it."""

    def __init__(self, strategy: Strategy) -> None:
        super().__init__()
        self.strategy = strategy

    def __getattr__(self, name: str):
        if name == "strategy":  # not set yet (e.g. while unpickling): do not recurse
            raise AttributeError(name)
        return getattr(self.strategy, name)

    def summary(self) -> None:
        self.strategy.summary()

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid):
        return self.strategy.configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]):
        return self.strategy.aggregate_train(server_round, replies)

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid):
        return self.strategy.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]):
        return self.strategy.aggregate_evaluate(server_round, replies)
