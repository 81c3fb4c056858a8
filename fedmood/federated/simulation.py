"""Running a ServerApp and a ClientApp in Flower's simulation engine, the way every experiment here does."""

from __future__ import annotations

import logging
import os
import re
import time

from flwr.clientapp import ClientApp
from flwr.serverapp import ServerApp


def simulate(
    server_app: ServerApp,
    client_app: ClientApp,
    num_nodes: int,
    client_cpus: float = 1,
    backend_cpus: int = 2,
    ray_address: str | None = None,
) -> dict[str, int]:
    """``run_simulation`` with ``num_nodes`` SuperNodes on the CPU, Ray's own logging quiet.

    Ray runs on this machine with ``backend_cpus`` CPUs, or, given ``ray_address`` (``host:port`` of
    a running Ray head, :mod:`fedmood.federated.ray_cluster`), on that cluster's nodes: then the
    ClientApp actors per Ray node id are returned (``{}`` on the local Ray).

    A ClientApp's exception is logged as one line (its message), not as Ray's traceback: the run
    then fails with the clients' reasons (``FEDMOOD_DEBUG=1`` keeps the tracebacks).
    """
    from flwr.simulation import run_simulation

    from fedmood.federated.ray_cluster import client_placement

    flwr_log = logging.getLogger("flwr")
    if not os.environ.get("FEDMOOD_DEBUG") and not any(isinstance(f, OneLineClientErrors) for f in flwr_log.filters):
        flwr_log.addFilter(OneLineClientErrors())

    ray_args: dict = {"log_to_driver": False, "logging_level": "ERROR"}
    # "local": a new Ray here even if `ray start` left a cluster address in /tmp/ray (ray.init would join it)
    ray_args |= {"address": ray_address} if ray_address else {"address": "local", "num_cpus": backend_cpus}
    started = time.time()
    run_simulation(
        server_app=server_app,
        client_app=client_app,
        num_supernodes=num_nodes,
        backend_config={"client_resources": {"num_cpus": client_cpus, "num_gpus": 0.0}, "init_args": ray_args},
        verbose_logging=False,
    )
    return client_placement(ray_address, os.getpid(), started) if ray_address else {}


class OneLineClientErrors(logging.Filter):
    """Shorten Flower's log of a failed ClientApp (a Ray traceback, ~60 lines) to its message, and
    drop Flower 1.42's deprecation notice of ``run_simulation`` (README: why it is still used)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "The `run_simulation` function is deprecated" in text:
            return False
        if "Traceback (most recent call last)" in text:
            found = re.findall(r"Message: (.+)", text)
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            record.msg, record.args = f"a ClientApp failed: {found[-1] if found else lines[-1]}", ()
        return True
