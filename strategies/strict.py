"""Make any Flower strategy fail loudly when a client fails, and report each aggregated round.

Flower logs a ClientApp exception (or a missing reply) and aggregates whatever came back; its DP
wrappers even skip the round silently. Experiments that must not carry on with fewer users (every
user is a client, and results are compared with a centralised run) wrap their *outermost*
strategy: any error reply, or fewer replies than messages sent, raises :class:`ClientRoundError`
in the ServerApp, which makes ``run_simulation`` / ``flwr run`` fail.

* :class:`FailLoudly` wraps a Message-API strategy (``flwr.serverapp.strategy``);
* :class:`FailLoudlyLegacy` wraps a legacy one (``flwr.server.strategy``, used by SecAgg+).

Both take ``strict=False`` to only report (SecAgg+ tolerates dropouts by design), and an
``on_aggregate(round, arrays_or_None, metrics, n_results)`` callback for progress and privacy accounting.
A deployment, where devices fail, runs :class:`FailLoudly` with ``strict=False`` and
``min_replies=m``: a round aggregates the replies that came (error replies for dead nodes are
dropped) if there are at least ``m`` of them, and otherwise keeps the previous model.

:class:`FailLoudly` also hands the wrapped strategy its replies in an order of their content, not
of their arrival (:mod:`strategies.reply_order`), so a seeded run aggregates the same sums, bit for
bit, every time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from flwr.app import ConfigRecord, Message
from flwr.server.strategy import Strategy as LegacyStrategy
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from fedmood.errors import RunFailedError
from strategies.reply_order import in_canonical_order

OnAggregate = Callable[[int, object, object, int], None]
log = logging.getLogger("fedmood")


class ClientRoundError(RunFailedError):
    """A round in which a client raised or did not reply."""


def failure_text(failure) -> str:
    """The gist of a legacy round failure: the client's own exception message, not Ray's traceback."""
    error = failure.args[0] if isinstance(failure, BaseException) and failure.args else failure
    text = str(getattr(error, "reason", error))
    if "Message: " in text:
        text = text.rsplit("Message: ", 1)[1]
    return text.strip().rstrip("'>\\").strip()[:300]


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


def successful_replies(phase: str, server_round: int, sent: int, replies: Iterable[Message], minimum: int):
    """The replies without errors; raises :class:`ClientRoundError` if fewer than ``minimum`` remain."""
    replies = list(replies)
    ok = [m for m in replies if not m.has_error()]
    if len(ok) < sent:
        log.warning("%s round %s: %d of %d nodes replied", phase, server_round, len(ok), sent)
    if len(ok) < minimum:
        raise ClientRoundError(f"{phase} round {server_round}: {len(ok)} of {sent} nodes replied, {minimum} needed")
    return ok


class FailLoudly(Strategy):
    """Message-API strategy wrapper: strict reply checks (or a minimum of replies), replies in an order
    of their content, and a per-round callback."""

    def __init__(
        self, strategy: Strategy, on_aggregate: OnAggregate | None = None, strict: bool = True, min_replies: int = 0
    ) -> None:
        super().__init__()
        self.strategy, self.on_aggregate, self.strict, self.min_replies = strategy, on_aggregate, strict, min_replies
        self._sent = {"train": 0, "evaluate": 0}

    def summary(self) -> None:
        self.strategy.summary()

    def configure_train(self, server_round: int, arrays, config: ConfigRecord, grid: Grid):
        msgs = list(self.strategy.configure_train(server_round, arrays, config, grid))
        self._sent["train"] = len(msgs)
        return msgs

    def aggregate_train(self, server_round: int, replies: Iterable[Message]):
        replies = in_canonical_order(replies)
        if self.strict:
            check_replies("train", server_round, self._sent["train"], replies)
        ok = sum(not m.has_error() for m in replies)
        if ok < self.min_replies:
            log.warning(
                "train round %s: %d of %d nodes replied, %d needed: the model is kept",
                server_round,
                ok,
                self._sent["train"],
                self.min_replies,
            )
            if self.on_aggregate is not None:
                self.on_aggregate(server_round, None, {}, ok)
            return None, None
        arrays, metrics = self.strategy.aggregate_train(server_round, replies)
        if self.on_aggregate is not None:
            self.on_aggregate(server_round, arrays, metrics, ok)
        return arrays, metrics

    def configure_evaluate(self, server_round: int, arrays, config: ConfigRecord, grid: Grid):
        msgs = list(self.strategy.configure_evaluate(server_round, arrays, config, grid))
        self._sent["evaluate"] = len(msgs)
        return msgs

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]):
        replies = in_canonical_order(replies)
        if self.strict:
            check_replies("evaluate", server_round, self._sent["evaluate"], replies)
        return self.strategy.aggregate_evaluate(server_round, replies)


class FailLoudlyLegacy(LegacyStrategy):
    """Legacy strategy wrapper (SecAgg+ path): strict failure checks (or a minimum of clients in the
    aggregate, else the model is kept) and a per-round callback. :attr:`last_round` is the last
    round whose results reached ``aggregate_fit`` (SecAgg+ never calls it when it halts)."""

    def __init__(
        self,
        strategy: LegacyStrategy,
        on_aggregate: OnAggregate | None = None,
        strict: bool = True,
        min_replies: int = 0,
    ) -> None:
        self.strategy, self.on_aggregate, self.strict, self.min_replies = strategy, on_aggregate, strict, min_replies
        self.last_round = 0

    def _check(self, phase: str, server_round: int, failures: list) -> None:
        if self.strict and failures:
            raise ClientRoundError(f"{phase} round {server_round}: a client failed: {failure_text(failures[0])}")

    def initialize_parameters(self, client_manager):
        return self.strategy.initialize_parameters(client_manager)

    def configure_fit(self, server_round, parameters, client_manager):
        return self.strategy.configure_fit(server_round, parameters, client_manager)

    def aggregate_fit(self, server_round, results, failures):
        self.last_round = server_round
        self._check("fit", server_round, failures)
        if len(results) < self.min_replies:
            log.warning(
                "fit round %s: %d clients in the aggregate, %d needed: the model is kept",
                server_round,
                len(results),
                self.min_replies,
            )
            if self.on_aggregate is not None:
                self.on_aggregate(server_round, None, {}, len(results))
            return None, {}
        params, metrics = self.strategy.aggregate_fit(server_round, results, failures)
        if self.on_aggregate is not None:
            self.on_aggregate(server_round, params, metrics, len(results))
        return params, metrics

    def configure_evaluate(self, server_round, parameters, client_manager):
        return self.strategy.configure_evaluate(server_round, parameters, client_manager)

    def aggregate_evaluate(self, server_round, results, failures):
        self._check("evaluate", server_round, failures)
        return self.strategy.aggregate_evaluate(server_round, results, failures)

    def evaluate(self, server_round, parameters):
        return self.strategy.evaluate(server_round, parameters)
