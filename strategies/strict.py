"""Make any Message-API strategy fail loudly when a client fails.

Flower logs a ClientApp exception (or a missing reply) and aggregates whatever came back, so an
experiment silently carries on with fewer users. Experiments that must not (every user is a
client, and results are compared with a centralised run) wrap their strategy with
:class:`FailLoudly`: any error reply, or fewer replies than messages sent, raises
:class:`ClientRoundError` in the ServerApp, which makes ``run_simulation`` / ``flwr run`` fail.
"""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import ConfigRecord, Message
from flwr.serverapp import Grid


class ClientRoundError(RuntimeError):
    """A round in which a client raised or did not reply."""


def check_replies(phase: str, server_round: int, sent: int, replies: Iterable[Message]) -> list[Message]:
    """The replies as a list; raises :class:`ClientRoundError` on any error or missing reply."""
    replies = list(replies)
    errors = [m for m in replies if m.has_error()]
    if errors:
        first = errors[0]
        raise ClientRoundError(
            f"{phase} round {server_round}: {len(errors)} of {sent} clients failed; node "
            f"{first.metadata.src_node_id}: {first.error.reason}"
        )
    if len(replies) < sent:
        raise ClientRoundError(f"{phase} round {server_round}: {len(replies)} replies for {sent} messages")
    return replies


class FailLoudly:
    """Mixin placed before a Flower strategy class: ``class S(FailLoudly, FedAvg)``."""

    def configure_train(self, server_round: int, arrays, config: ConfigRecord, grid: Grid):
        msgs = list(super().configure_train(server_round, arrays, config, grid))  # type: ignore[misc]
        self._sent_train = len(msgs)
        return msgs

    def configure_evaluate(self, server_round: int, arrays, config: ConfigRecord, grid: Grid):
        msgs = list(super().configure_evaluate(server_round, arrays, config, grid))  # type: ignore[misc]
        self._sent_evaluate = len(msgs)
        return msgs

    def aggregate_train(self, server_round: int, replies: Iterable[Message]):
        replies = check_replies("train", server_round, self._sent_train, replies)
        return super().aggregate_train(server_round, replies)  # type: ignore[misc]

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]):
        replies = check_replies("evaluate", server_round, self._sent_evaluate, replies)
        return super().aggregate_evaluate(server_round, replies)  # type: ignore[misc]
