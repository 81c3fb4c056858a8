"""The mood recommender on a real local federation: a SuperLink and 3 SuperNodes over TLS with
SuperNode authentication, each device reading its encrypted store; a device killed mid-round.

Select with ``-m deploy``; it runs in ``make test`` and CI (about 2-3 minutes: every Flower message
starts a ClientApp process that imports torch, and a killed node is declared dead by the SuperLink
only after it misses its heartbeats, about 60 s).
"""

from __future__ import annotations

import time

import pandas as pd
import pytest

from fedmood.data.generator import GeneratorConfig, write_day_logs
from fedmood.deploy.credentials import ensure_node_key
from fedmood.deploy.federation import LocalFederation
from fedmood.deploy.processes import free_port, start

pytestmark = pytest.mark.deploy

ROUNDS, KILL_ROUND, VICTIM = 5, 3, 2


def _refused(fed: LocalFederation, tmp_path, name: str, key) -> str:
    """Start a SuperNode with ``key`` (None: no key) and return its log once it has exited."""
    cmd = fed.node_command(0)
    at = cmd.index("--auth-supernode-private-key")
    cmd = cmd[:at] + cmd[at + 2 :] + (["--auth-supernode-private-key", str(key)] if key else [])
    cmd[cmd.index("--port") + 1] = str(free_port())
    node = start(name, cmd, tmp_path / f"{name}.log", fed.env())
    try:
        node.process.wait(timeout=60)
    finally:
        node.kill()
    assert node.process.returncode != 0
    return node.text()


def test_secured_federation_trains_survives_a_killed_node_and_cleans_up(tmp_path):
    logs = write_day_logs(GeneratorConfig(n_users=3, n_days=6, seed=5), tmp_path / "logs")
    fed = LocalFederation(tmp_path / "fed", 3)
    marker = tmp_path / "fault"
    try:
        fed.start(logs, node_config={VICTIM: f'fault-marker="{marker}" fault-round={KILL_ROUND}'})
        assert "https://127.0.0.1" in fed.superlink.text()  # TLS
        # node authentication: an unregistered key and no key at all are both refused
        stranger = ensure_node_key(tmp_path / "stranger", "auth")
        assert "[code: 2004]" in _refused(fed, tmp_path, "stranger", stranger.private)
        assert "[code: 2001]" in _refused(fed, tmp_path, "anonymous", None)

        run = fed.run_app(
            ROUNDS,
            ["personalise.enabled=false", "suggest_users=0", "data.cluster_max_iter=3", "federation.round_timeout=120"],
        )
        end = time.monotonic() + 300
        while not marker.exists():
            assert run.alive, run.text()[-3000:]
            assert time.monotonic() < end, "the fault round was never reached"
            time.sleep(0.3)
        fed.kill_node(VICTIM)  # SIGKILL of the SuperNode and its ClientApp, mid-round
        assert not fed.nodes[VICTIM].alive
        fed.start_node(VICTIM)  # the device comes back (accepted once the SuperLink saw it die)
        run.process.wait(timeout=400)
        log = run.text()
        assert run.process.returncode == 0, log[-3000:]
        assert "Node Unavailable" in log

        results = sorted((fed.root / "results").iterdir())
        assert len(results) == 1
        rounds = pd.read_csv(results[0] / "rounds_federated.csv").set_index("round")
        assert list(rounds.index) == list(range(1, ROUNDS + 1))
        assert rounds.loc[1, "clients"] == rounds.loc[2, "clients"] == 3
        assert rounds.loc[KILL_ROUND, "clients"] == 2  # the round completed without the dead node
        assert rounds.loc[ROUNDS, "clients"] == 3  # ...which rejoined
        assert rounds.loc[2, "train_mse"] < rounds.loc[1, "train_mse"]  # the model improves
        assert rounds["val_mse"].notna().all() and rounds.loc[ROUNDS, "val_mse"] < rounds.loc[1, "val_mse"]
        # every device kept its own parameters in its encrypted store, never in clear
        for i in range(3):
            names = [p.name for p in (fed.node_dir(i) / "store").iterdir()]
            assert any(n.startswith("user-state.") for n in names), names
    finally:
        fed.stop()
    assert fed.leftover_processes() == []
    assert not fed.superlink.alive and not any(n.alive for n in fed.nodes.values())
