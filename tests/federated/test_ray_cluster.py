"""The simulation on a real multi-node Ray cluster: a head and a worker started as separate
``ray start`` processes on this machine (:class:`fedmood.deploy.ray_cluster.LocalRayCluster`)."""

from __future__ import annotations

import socket
import time

import numpy as np
import pandas as pd
import pytest

from fedmood.deploy.processes import cmdline
from fedmood.deploy.ray_cluster import LocalRayCluster
from fedmood.errors import InputError
from fedmood.federated.ray_cluster import address_problem
from fedmood.process_tree import descendants
from fedmood.studies.mood.run import run_federated_simulation
from fedmood.studies.mood.run_config import compose_config


def test_a_ray_address_must_be_host_port_with_something_listening():
    assert "is not host:port" in address_problem("ray://10.0.0.5:10001")
    assert "is not host:port" in address_problem(6379)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert "no Ray head answers at" in address_problem(f"127.0.0.1:{port}")  # bound, not listening
        s.listen()
        assert address_problem(f"127.0.0.1:{port}") is None


def test_an_unreachable_cluster_is_refused_by_name_before_any_work(small_logs, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(InputError, match=r"federation\.ray_address: no Ray head answers"):
        compose_config(["data=logs", f"data.logs_dir={small_logs}", f"federation.ray_address=127.0.0.1:{port}"])


def _cfg(logs, tmp_path, *extra: str) -> dict:
    return compose_config(
        [
            "data=logs", f"data.logs_dir={logs}", "data.n_clusters=4", "training.epochs=3",
            "personalise.enabled=false", "suggest_users=0", f"results_root={tmp_path}/results", *extra,
        ]
    )  # fmt: skip


def test_clients_run_on_both_nodes_of_a_cluster_and_the_result_equals_the_single_node_run(small_logs, tmp_path):
    cluster = LocalRayCluster(tmp_path / "ray", workers=1, cpus=1).start()
    pids = [n.process.pid for n in cluster.nodes]
    try:
        on_cluster = run_federated_simulation(_cfg(small_logs, tmp_path, f"federation.ray_address={cluster.address}"))
    finally:
        spawned = [p for pid in pids for p in [pid, *descendants(pid)]]
        cluster.stop()
    # one ClientApp actor per node (1 CPU each, 1 CPU per client): the 6 clients ran on both nodes
    assert len(on_cluster.ray_nodes) == 2 and sum(on_cluster.ray_nodes.values()) == 2, on_cluster.ray_nodes
    end = time.monotonic() + 10  # SIGKILLed processes take a moment to exit
    while (alive := {p: cmdline(p) for p in spawned if _running(p)}) and time.monotonic() < end:
        time.sleep(0.2)
    assert not alive, f"Ray processes left after stop: {alive}"

    # a local run starts its own Ray, although `ray start` left the (now stopped) cluster's address in /tmp/ray
    local = run_federated_simulation(_cfg(small_logs, tmp_path))
    assert local.ray_nodes == {}
    np.testing.assert_array_equal(on_cluster.centres, local.centres)
    for key, value in local.item_state.items():  # equal up to float32 rounding: the server's sum order is fixed
        # (strategies/reply_order.py); the clients' arithmetic differs by an ulp across the nodes (6e-9 measured)
        np.testing.assert_allclose(on_cluster.item_state[key], value, rtol=0, atol=1e-6, err_msg=key)
    a, b = pd.DataFrame(local.rounds), pd.DataFrame(on_cluster.rounds)
    for col in ("round", "train_mse", "val_mse", "clients"):
        np.testing.assert_allclose(b[col], a[col], rtol=1e-5, err_msg=col)


def _running(pid: int) -> bool:
    """Alive and not a zombie (a killed child that init has not reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
