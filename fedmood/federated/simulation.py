"""Running a ServerApp and a ClientApp in Flower's simulation engine, the way every experiment here does."""

from __future__ import annotations

from flwr.clientapp import ClientApp
from flwr.serverapp import ServerApp


def simulate(
    server_app: ServerApp, client_app: ClientApp, num_nodes: int, client_cpus: float = 1, backend_cpus: int = 2
) -> None:
    """``run_simulation`` with ``num_nodes`` SuperNodes on the CPU, Ray's own logging quiet."""
    from flwr.simulation import run_simulation

    run_simulation(
        server_app=server_app,
        client_app=client_app,
        num_supernodes=num_nodes,
        backend_config={
            "client_resources": {"num_cpus": client_cpus, "num_gpus": 0.0},
            "init_args": {"num_cpus": backend_cpus, "log_to_driver": False, "logging_level": "ERROR"},
        },
        verbose_logging=False,
    )
