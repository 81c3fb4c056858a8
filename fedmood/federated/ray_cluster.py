"""Simulating on a Ray cluster that is already running: its address, checked before any work, and
where the simulation's ClientApps ran.

Flower's Ray backend calls ``ray.init(**init_args)`` only when Ray is not initialised, so a
simulation given ``init_args={"address": "<head>:<port>"}`` attaches to that cluster and spreads
its ClientApp actors over the cluster's nodes (as many per node as its CPUs hold, at
``client_resources``). After the run, :func:`client_placement` reads Ray's actor table for the
actors the run's Ray jobs started.
"""

from __future__ import annotations

import re
import socket
from collections import Counter

#: ``host:port`` of a Ray head's GCS (what ``ray start --head --port`` prints).
_ADDRESS = re.compile(r"^(?P<host>[A-Za-z0-9_.\-]+|\[[0-9a-fA-F:]+\]):(?P<port>\d{1,5})$")
ACTOR_CLASS = "ClientAppActor"  # Flower's actor that runs the ClientApps (flwr.simulation.ray_transport)


def address_problem(address: object, reach_timeout: float = 3.0) -> str | None:
    """Why ``address`` is not the address of a running Ray head, or None if it is one.

    It must be ``host:port`` (``ray start --head`` prints it) and something must listen there.
    """
    if not isinstance(address, str) or not (m := _ADDRESS.match(address.strip())):
        return f"{address!r} is not host:port (the address `ray start --head` prints, e.g. 10.0.0.5:6379)"
    host, port = m["host"].strip("[]"), int(m["port"])
    if not 0 < port < 65536:
        return f"{address!r}: port {port} is out of range"
    try:
        with socket.create_connection((host, port), timeout=reach_timeout):
            return None
    except OSError as e:
        return f"no Ray head answers at {address} ({e.strerror or e}); start one with `ray start --head --port={port}`"


def client_placement(address: str, driver_pid: int, since: float) -> dict[str, int]:
    """ClientApp actors per Ray node id of the cluster at ``address``, counted over the Ray jobs the
    process ``driver_pid`` started at or after ``since`` (a ``time.time()``): one simulation's."""
    import ray
    import ray._private.state as state  # the GCS's job and actor tables (minimal Ray has no state API server)

    ray.init(address=address, logging_level="ERROR", log_to_driver=False, include_dashboard=False)
    try:
        since_ms = since * 1000.0 - 1.0
        jobs = {j["JobID"] for j in state.jobs() if j["DriverPid"] == driver_pid and j["StartTime"] >= since_ms}
        jobs.discard(ray.get_runtime_context().get_job_id())
        actors = state.actors().values()
        return dict(
            Counter(a["Address"]["NodeID"] for a in actors if a["ActorClassName"] == ACTOR_CLASS and a["JobID"] in jobs)
        )
    finally:
        ray.shutdown()

