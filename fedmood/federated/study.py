"""The skeleton of a FedAvg-style study in Flower's simulation, shared by the AAE and personal studies.

A study brings its ``ClientApp``, its strategy and its initial arrays; :func:`run_fedavg_study`
runs the ServerApp around them: waits for every node, optionally prepares the start (e.g. a
query round for pooled statistics), runs the strategy with every client failure failing the run,
keeps a row per round (clients, seconds, and whatever the study adds), prints progress, and checks
that every round happened.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from fedmood.federated.grid import wait_for_nodes
from fedmood.federated.simulation import simulate
from strategies.strict import FailLoudly

#: Seconds the ServerApp waits for the simulated nodes and for each reply.
NODE_TIMEOUT = 600.0


def run_fedavg_study(
    name: str,
    client: ClientApp,
    strategy,
    initial: ArrayRecord | Callable[[Grid, list[int]], ArrayRecord],
    num_rounds: int,
    n_nodes: int,
    *,
    row: Callable[[int, dict], dict] | None = None,
    progress_line: Callable[[dict], str] | None = None,
    measure: Callable[[int, ArrayRecord], dict] | None = None,
) -> tuple[ArrayRecord, list[dict]]:
    """Run ``strategy`` for ``num_rounds`` over ``n_nodes`` simulated nodes of ``client``.

    ``initial`` is the start arrays, or a function of the grid and the node ids that computes them
    (run after every node connected). ``row(rnd, metrics)`` adds columns to a round's history row
    (``round``, ``clients``, ``seconds``); ``measure(rnd, arrays)`` adds what the experiment measures
    on the round's aggregate with data no node sent (e.g. held-out windows; not part of the protocol);
    ``progress_line(row)``, if given, is printed after each round. Returns the final arrays and the
    history; raises if a round is missing.
    """
    logging.getLogger("flwr").setLevel("WARNING")
    history: list[dict] = []
    result: list[ArrayRecord] = []
    server = ServerApp()

    @server.main()
    def _main(grid: Grid, context: Context) -> None:
        nodes = wait_for_nodes(grid, n_nodes, NODE_TIMEOUT)
        start = initial(grid, nodes) if callable(initial) else initial
        clock = [time.perf_counter()]

        def on_aggregate(rnd: int, arrays, metrics, n: int) -> None:
            now = time.perf_counter()
            entry = {"round": rnd, "clients": n, "seconds": now - clock[0]}
            entry.update(row(rnd, dict(metrics or {})) if row else {})
            entry.update(measure(rnd, arrays) if measure is not None and arrays is not None else {})
            history.append(entry)
            clock[0] = time.perf_counter()  # what measure() took is not the next round's
            if progress_line is not None:
                print(progress_line(entry), flush=True)

        out = FailLoudly(strategy, on_aggregate=on_aggregate).start(
            grid=grid, initial_arrays=start, num_rounds=num_rounds, train_config=ConfigRecord({})
        )
        result.append(out.arrays)

    simulate(server, client, n_nodes)
    if not result or len(history) != num_rounds:
        raise RuntimeError(f"{name} ended after {len(history)} of {num_rounds} rounds (see the Flower log)")
    return result[0], history
