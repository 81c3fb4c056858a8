"""Flower's SecAgg+ workflow one round at a time: the secure sum under every protected exchange.

Flower's ``DefaultWorkflow`` runs a fixed number of SecAgg+ fit rounds. fedmood needs SecAgg+ for
more than training: the federated k-modes runs a data-dependent number of rounds (until the centres
stop moving) whose count tables must be summed securely too. :class:`SecureRounds` drives Flower's
own ``SecAggPlusWorkflow`` directly: each :meth:`SecureRounds.run` is one complete SecAgg+ round
(setup, key sharing, masked vectors, unmasking) whose instructions come from a legacy strategy's
``configure_fit`` and whose unmasked aggregate reaches that strategy's ``aggregate_fit``.

:class:`SecureSum` is such a strategy for integer statistics: it asks every node for the named
``stage`` (sending the round's arrays, if any) and returns the exact integer sums
(:func:`strategies.secagg.from_grid`), so a secure k-modes gives the same centres as the plain one
and a secure federated LDA the same topics.
"""

from __future__ import annotations

import timeit

import numpy as np
from flwr.app import ConfigRecord, Context
from flwr.common import FitIns, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.compat.common import recorddict_compat as compat
from flwr.server import LegacyContext, ServerConfig
from flwr.server.compat.app_utils import start_update_client_manager_thread
from flwr.server.strategy import Strategy as LegacyStrategy
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD, Key
from flwr.serverapp import Grid

from strategies.secagg import from_grid, secagg_workflow
from strategies.strict import ClientRoundError, failure_text


class SecureRounds:
    """One ``SecAggPlusWorkflow`` and a legacy context to run it round by round (a context manager)."""

    def __init__(self, grid: Grid, context: Context, settings, n_sampled: int) -> None:
        self.grid, self.workflow = grid, secagg_workflow(settings, n_sampled)
        self.context = LegacyContext(context=context, config=ServerConfig(num_rounds=0))
        self._thread, self._stop, registered = start_update_client_manager_thread(grid, self.context.client_manager)
        registered.wait()
        self.context.state.config_records[MAIN_CONFIGS_RECORD] = ConfigRecord({Key.START_TIME: timeit.default_timer()})

    def run(self, strategy: LegacyStrategy, server_round: int, parameters: list[np.ndarray]) -> list[np.ndarray]:
        """One SecAgg+ round with ``strategy``; the parameters after it (unchanged if nothing was aggregated)."""
        self.context.strategy = strategy
        self.context.state.array_records[MAIN_PARAMS_RECORD] = compat.parameters_to_arrayrecord(
            ndarrays_to_parameters(parameters), keep_input=True
        )
        self.context.state.config_records[MAIN_CONFIGS_RECORD][Key.CURRENT_ROUND] = server_round
        self.workflow(self.grid, self.context)
        record = self.context.state.array_records[MAIN_PARAMS_RECORD]
        return parameters_to_ndarrays(compat.arrayrecord_to_parameters(record, keep_input=True))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> SecureRounds:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SecureSum(LegacyStrategy):
    """Ask every connected node for ``config`` and receive the exact sum of their integers.

    It waits for ``wait_for`` nodes (at most ``timeout`` seconds). Nodes answer with
    :func:`strategies.secagg.to_grid` arrays and weight ``max_weight``; :attr:`sums` holds the
    integer sums of the round and :attr:`clients` how many nodes they hold. With ``strict`` every
    asked node must contribute; else at least ``min_nodes``.
    """

    def __init__(
        self, config: dict, settings, wait_for: int, min_nodes: int, strict: bool = True, timeout: float = 600.0
    ) -> None:
        self.config, self.settings, self.strict = dict(config), settings, strict
        self.wait_for, self.min_nodes, self.timeout = wait_for, min_nodes, timeout
        self.sums: list[np.ndarray] | None = None
        self.clients = 0
        self.sampled = 0

    def initialize_parameters(self, client_manager):
        return None

    def configure_fit(self, server_round, parameters, client_manager):
        if not client_manager.wait_for(self.wait_for, timeout=int(self.timeout)):
            raise ClientRoundError(
                f"secure sum '{self.config.get('stage', '')}': {client_manager.num_available()} nodes connected, "
                f"{self.wait_for} awaited for {self.timeout:.0f} s"
            )
        clients = list(client_manager.all().values())
        self.sampled = len(clients)  # every node gets the round's parameters (none for clustering statistics)
        return [(c, FitIns(parameters, {**self.config, "server-round": server_round})) for c in clients]

    def aggregate_fit(self, server_round, results, failures):
        stage = self.config.get("stage", "")
        if (failures and self.strict) or len(results) < self.min_nodes:
            raise ClientRoundError(
                f"secure sum '{stage}': {len(results)} of {self.sampled} nodes contributed, "
                f"{self.min_nodes} needed" + (f"; a node failed: {failure_text(failures[0])}" if failures else "")
            )
        average = parameters_to_ndarrays(results[0][1].parameters)
        self.sums = [from_grid(a, len(results), self.settings) for a in average]
        self.clients = len(results)
        return None, {}

    def configure_evaluate(self, server_round, parameters, client_manager):
        return []

    def aggregate_evaluate(self, server_round, results, failures):
        return None, {}

    def evaluate(self, server_round, parameters):
        return None


def secure_sum(
    rounds: SecureRounds,
    config: dict,
    settings,
    wait_for: int,
    min_nodes: int,
    strict: bool,
    tag: int,
    timeout: float = 600.0,
    sent: list[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """The exact integer sums of every node's answer to ``config`` (one SecAgg+ round, numbered ``tag``);
    ``sent``: arrays every node receives with the question (e.g. the global counts it answers against)."""
    strategy = SecureSum(config, settings, wait_for, min_nodes, strict, timeout)
    rounds.run(strategy, tag, list(sent or []))
    if strategy.sums is None:
        why = rounds.workflow.halt_reason("fewer than its threshold of nodes answered")
        raise ClientRoundError(f"secure sum '{config.get('stage', '')}': SecAgg+ halted: {why}")
    return strategy.sums
