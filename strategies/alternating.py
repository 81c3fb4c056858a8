"""FedAvg whose rounds alternate between training phases.

The anonymiser's schedule alternates {train the adversaries} and {train the AAE against the frozen
adversaries}; federated, each of those is a FedAvg round over the same model record (all the
networks). :class:`AlternatingFedAvg` is Flower's FedAvg that names the phase of each round in the
train config (``phase``), cycling through ``phases``; clients train what the phase says and return
the whole record (unchanged networks average to themselves). Run inside
:class:`strategies.strict.FailLoudly`, replies are averaged in an order of their content, not of
their arrival (:mod:`strategies.reply_order`), so a seeded run repeats.
"""

from __future__ import annotations

from flwr.app import ConfigRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg


class AlternatingFedAvg(FedAvg):
    """FedAvg with ``config["phase"] = phases[(round - 1) % len(phases)]`` in every train message."""

    def __init__(self, phases: tuple[str, ...], **kwargs) -> None:
        if not phases:
            raise ValueError("AlternatingFedAvg needs at least one phase")
        super().__init__(**kwargs)
        self.phases = tuple(phases)

    def phase(self, server_round: int) -> str:
        return self.phases[(server_round - 1) % len(self.phases)]

    def configure_train(self, server_round: int, arrays, config: ConfigRecord, grid: Grid):
        config = ConfigRecord({**dict(config), "phase": self.phase(server_round)})
        return super().configure_train(server_round, arrays, config, grid)
