"""The mood recommender on a real local federation: a SuperLink and 3 SuperNodes over TLS with
SuperNode authentication, each device reading its encrypted store; a device killed mid-round.

Select with ``-m deploy``; it runs in ``make test`` and CI. Every node is fedmood's warm SuperNode
(:mod:`fedmood.deploy.supernode`: one ClientApp process per node, heartbeats every 10 s). The
ServerApp presumes a killed node down ``federation.phase_timeout`` (4 s) after the other nodes'
latest reply of the phase (:class:`fedmood.federated.grid.PollingGrid`); the SuperLink itself
declares it dead after about 20 s (and only then admits it again).
"""

from __future__ import annotations

import subprocess
import time

import numpy as np
import pandas as pd
import pytest

from fedmood.deploy.credentials import ensure_node_key
from fedmood.deploy.federation import LocalFederation
from fedmood.deploy.processes import free_port, start
from fedmood.federated.checkpoint import load_checkpoint
from fedmood.federated.device_report import merge_reports
from fedmood.studies.mood.data.generator import GeneratorConfig, write_day_logs

pytestmark = pytest.mark.deploy

ROUNDS, KILL_ROUND, VICTIM = 6, 3, 2


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

        settings = ["personalise.enabled=false", "suggest_users=0", "data.cluster_max_iter=3"]
        settings += ["federation.round_timeout=90"]
        run = fed.run_app(ROUNDS, settings)
        end = time.monotonic() + 300
        while not marker.exists():
            assert run.alive, run.text()[-3000:]
            assert time.monotonic() < end, "the fault round was never reached"
            time.sleep(0.3)
        fed.kill_node(VICTIM)  # SIGKILL of the SuperNode and its ClientApp, mid-round
        killed = time.monotonic()
        assert not fed.nodes[VICTIM].alive
        while "presumed down (federation.phase_timeout=" not in run.text():  # the server does not wait ~20 s
            assert time.monotonic() - killed < 15, run.text()[-3000:]
            time.sleep(0.1)
        fed.start_node(VICTIM)  # the device comes back (accepted once the SuperLink saw it die, ~20 s)
        run.process.wait(timeout=400)
        assert run.process.returncode == 0, run.text()[-3000:]
        again = fed.run_app(2, settings)  # ... and takes part in the next run
        again.process.wait(timeout=400)
        assert again.process.returncode == 0, again.text()[-3000:]

        results = sorted((fed.root / "results").iterdir())
        assert len(results) == 2
        rounds = pd.read_csv(results[0] / "rounds_federated.csv").set_index("round")
        assert list(rounds.index) == list(range(1, ROUNDS + 1))
        assert rounds.loc[1, "clients"] == rounds.loc[2, "clients"] == 3
        # the round completed without the dead node, presumed down 4 s after the others' replies
        assert rounds.loc[KILL_ROUND, "clients"] == 2
        assert (pd.read_csv(results[1] / "rounds_federated.csv")["clients"] == 3).all()  # the node rejoined
        assert rounds.loc[2, "train_mse"] < rounds.loc[1, "train_mse"]  # the model improves
        # validation of round r is reported with round r + 1's replies: rounds 2 .. 5 by the two survivors
        assert rounds["val_mse"].notna().all() and rounds.loc[ROUNDS - 1, "val_mse"] < rounds.loc[2, "val_mse"]
        # every device kept its own parameters in its encrypted store, never in clear
        for i in range(3):
            names = [p.name for p in (fed.node_dir(i) / "store").iterdir()]
            assert any(n.startswith("user-state.") for n in names), names
    finally:
        fed.stop()
    assert fed.leftover_processes() == []
    assert not fed.superlink.alive and not any(n.alive for n in fed.nodes.values())


@pytest.mark.slow
def test_secagg_on_the_real_federation_survives_a_node_killed_after_key_sharing(tmp_path):
    """SecAgg+ with 5 SuperNodes; one dies after the key-sharing stage, before sending its masked update.

    The others' shares of its secrets let the server remove its masks: the round completes with 4.
    """
    n, victim = 5, 4
    logs = write_day_logs(GeneratorConfig(n_users=n, n_days=4, seed=6), tmp_path / "logs")
    fed = LocalFederation(tmp_path / "fed", n)
    marker = tmp_path / "fault"
    try:
        fed.start(logs, node_config={victim: f'fault-marker="{marker}" fault-stage="collect_masked_vectors"'})
        run = fed.run_app(
            2,
            [
                "privacy=secagg",
                "privacy.secagg.num_shares=5",
                "privacy.secagg.reconstruction_threshold=3",
                "privacy.secagg.timeout=120",
                "federation.min_replies=4",
                "personalise.enabled=false",
                "suggest_users=0",
                "data.cluster_max_iter=3",
            ],
        )
        end = time.monotonic() + 300
        while not marker.exists():
            assert run.alive, run.text()[-3000:]
            assert time.monotonic() < end, "the SecAgg+ masked-vector stage was never reached"
            time.sleep(0.3)
        fed.kill_node(victim)
        run.process.wait(timeout=500)
        log = run.text()
        assert run.process.returncode == 0, log[-3000:]
        results = sorted((fed.root / "results").iterdir())
        rounds = pd.read_csv(results[0] / "rounds_federated.csv").set_index("round")
        assert rounds.loc[1, "clients"] == n - 1 and rounds.loc[2, "clients"] == n - 1
        assert rounds["train_mse"].isna().all()  # under SecAgg+ no metric reaches the server ...
        reports = fed.device_reports()  # ... each device keeps its own, in its store
        assert victim not in reports or len(reports[victim]["round"]) < 2
        rows = [{"round": 1}, {"round": 2}]
        merge_reports(rows, {i: r for i, r in reports.items() if i != victim})
        assert all(np.isfinite(r["train_mse"]) and np.isfinite(r["val_mse"]) for r in rows)
        assert "[privacy] secagg" in log
    finally:
        fed.stop()
    assert fed.leftover_processes() == []


@pytest.mark.slow
def test_a_killed_serverapp_resumed_on_the_federation_matches_an_uninterrupted_run(tmp_path):
    """The ServerApp process is SIGKILLed after round 2; a new run resumes from the checkpoint and
    ends with the same per-round history as an uninterrupted run on an identical federation."""
    logs = write_day_logs(GeneratorConfig(n_users=3, n_days=4, seed=8), tmp_path / "logs")
    settings = ["personalise.enabled=false", "suggest_users=0", "data.cluster_max_iter=3"]
    histories = {}
    for name in ("whole", "killed"):
        fed = LocalFederation(tmp_path / name, 3)
        try:
            fed.start(logs)
            run = fed.run_app(4, [*settings, f"federation.checkpoint={fed.checkpoint}"])
            if name == "killed":
                end = time.monotonic() + 300
                while _checkpoint_round(fed.checkpoint) < 2:
                    assert run.alive and time.monotonic() < end, run.text()[-3000:]
                    time.sleep(0.2)
                assert fed.kill_serverapp()
                try:  # the CLI's log stream may outlive the server; a user would press Ctrl-C
                    run.process.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    run.kill()
                assert not list((fed.root / "results").glob("*/rounds_federated.csv"))
                run = fed.run_app(4, [*settings, f"federation.checkpoint={fed.checkpoint}", "federation.resume=true"])
            run.process.wait(timeout=400)
            assert run.process.returncode == 0, run.text()[-3000:]
            (out,) = (fed.root / "results").glob("*/rounds_federated.csv")
            histories[name] = pd.read_csv(out)
            if name == "killed":
                assert "resuming after round 2" in run.text()
        finally:
            fed.stop()
        assert fed.leftover_processes() == []
    for col in ("train_mse", "val_mse", "clients"):
        pd.testing.assert_series_equal(histories["killed"][col], histories["whole"][col], rtol=1e-5)


def _checkpoint_round(path) -> int:
    """The round of the checkpoint at ``path`` (0 while there is none)."""
    return load_checkpoint(path).round if path.is_file() else 0
