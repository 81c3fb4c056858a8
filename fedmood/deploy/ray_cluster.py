"""A real multi-node Ray cluster on this machine: a head and worker nodes, each its own ``ray start``.

What a user does on several machines (README, "Simulation on a Ray cluster"), done here on one:
the head is ``ray start --head --port <p> --num-cpus <c> --block``, every worker
``ray start --address <head>:<p> --num-cpus <c> --block``, each in its own session with its own
ports, so the nodes are separate raylets with their own worker processes. A simulation pointed at
:attr:`LocalRayCluster.address` (``federation.ray_address``) places ClientApp actors on all of them.
:meth:`LocalRayCluster.stop` kills every process each ``ray start`` spawned (raylet, GCS, workers),
found by parent ids; nothing is left behind and no other Ray on the machine is touched (unlike
``ray stop``, which stops every Ray process of the user).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from fedmood.deploy.federation import BIN
from fedmood.deploy.processes import Component, free_port, kill_all, start


@dataclass
class LocalRayCluster:
    """A Ray head and ``workers`` worker nodes of ``cpus`` CPUs each, logs under ``root``."""

    root: Path
    workers: int = 1
    cpus: int = 1
    port: int = 0  # the head's GCS port (0: a free one)
    nodes: list[Component] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        self.port = self.port or free_port()

    @property
    def address(self) -> str:
        """``host:port`` of the head (what ``federation.ray_address`` takes)."""
        return f"127.0.0.1:{self.port}"

    def _start_node(self, name: str, role: list[str]) -> Component:
        cmd = [
            str(BIN / "ray"), "start", *role, "--block", "--num-cpus", str(self.cpus), "--node-ip-address", "127.0.0.1",
            "--disable-usage-stats", "--dashboard-agent-listen-port", str(free_port()),
            "--metrics-export-port", str(free_port()), "--runtime-env-agent-port", str(free_port()),
        ]  # fmt: skip
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        node = start(name, cmd, self.root / "logs" / f"{name}.log", env)
        self.nodes.append(node)
        node.wait_for("Ray runtime started", timeout=120)
        return node

    def start(self, timeout: float = 120.0) -> LocalRayCluster:
        """Start the head, then the workers; returns once Ray lists every node alive."""
        head = ["--head", "--port", str(self.port), "--include-dashboard=false"]
        head += ["--ray-client-server-port", str(free_port())]
        try:
            self._start_node("ray-head", head)
            for i in range(self.workers):
                self._start_node(f"ray-worker-{i}", ["--address", self.address])
            self.wait_for_nodes(1 + self.workers, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_for_nodes(self, n: int, timeout: float) -> None:
        """Block until ``n`` nodes with CPUs are alive in the cluster (checked in a child process,
        so this process stays free to start its own Ray)."""
        probe = (
            f"import ray; ray.init(address={self.address!r}, logging_level='ERROR', log_to_driver=False);"
            "print(sum(1 for n in ray.nodes() if n['Alive'] and n['Resources'].get('CPU')))"
        )
        end = time.monotonic() + timeout
        while True:
            out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=timeout)
            alive = int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else 0
            if alive >= n:
                return
            if time.monotonic() > end:
                raise TimeoutError(f"Ray cluster at {self.address}: {alive} of {n} nodes alive after {timeout:.0f} s")
            time.sleep(1.0)

    def stop(self) -> None:
        """Kill every node's whole process tree (raylet, GCS, Ray's workers) and reap it."""
        kill_all([n.process for n in self.nodes])
        self.nodes.clear()

    def __enter__(self) -> LocalRayCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
