"""The mood study's ``federation`` config group (``conf/federation/``), typed.

Read once where a run begins (:meth:`FederationSettings.of`); the ServerApp, the devices and the
simulation then use attributes, never string keys. Its values are checked, each named, before any
work by :mod:`fedmood.studies.mood.validation`; a key that is not a setting is refused here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class FederationSettings:
    """How the federated run is shaped and run (see ``conf/federation/simulation.yaml``)."""

    num_rounds: int
    local_epochs: int = 1
    clients_per_round: int | None = None  # None: every user every round
    strict: bool = True  # any client failure fails the run
    min_replies: int | None = None  # with strict off: a round goes on with at least this many replies
    client_num_cpus: float = 1.0
    backend_num_cpus: int = 2  # the local Ray's CPUs (not used on a cluster: ray_address)
    ray_address: str | None = None  # host:port of a running Ray head: simulate on that cluster
    grid_pull_interval: float = 0.01
    round_timeout: float = 600.0
    phase_timeout: float | None = None  # a node silent this long after a phase's latest reply is presumed down
    wait_for_nodes: float | None = None  # None: round_timeout
    flower_log_level: str = "WARNING"
    nodes: int | None = None  # a deployment's SuperNode count (the server holds no data)
    stores: str | None = None  # folder of the nodes' encrypted stores
    checkpoint: str | None = None
    resume: bool = False
    device_reports: str | None = None  # folder of the devices' own reports (set by the simulation)

    @classmethod
    def of(cls, cfg: Mapping) -> FederationSettings:
        """The settings of ``cfg["federation"]``; a key that is not a setting raises ``ValueError``."""
        given = dict(cfg["federation"])
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(given) - known)
        if unknown:
            raise ValueError(f"federation.{unknown[0]} is not a federation setting (known: {', '.join(sorted(known))})")
        return cls(**given)

    def replies_needed(self, per_round: int) -> int | None:
        """``None`` when every sampled node must reply (``strict``); else the minimum to go on with."""
        return None if self.strict else int(self.min_replies or per_round)

    @property
    def node_timeout(self) -> float:
        """Seconds to wait for the nodes to connect."""
        return float(self.wait_for_nodes or self.round_timeout)
