"""The warm SuperNode's parts without a federation: Flower's internals it patches and calls are where
it expects them (a Flower upgrade that moves them fails here, by name), its waits, its executor.

The deployment tests (``test_deployment.py``) run every federation on it: TLS, node authentication,
a node killed and rejoining, and no process left behind.
"""

from __future__ import annotations

import inspect
import time

import flwr.supercore.heartbeat as heartbeats
import flwr.supernode.fleet_http_connection as fleet
import flwr.supernode.start_client_internal as supernode_loop
import pytest
from flwr.common.constant import HEARTBEAT_MIN_INTERVAL
from flwr.supercore.constant import TaskType
from flwr.supercore.superexec import run_superexec

from fedmood.deploy.supernode import MIN_HEARTBEAT, _port, patch_flower, short_sleeps
from fedmood.deploy.warm_superexec import InProcessExecutor


def test_the_flower_internals_it_uses_are_there():
    import flwr.superlink.grid.http_grid as http_grid
    import flwr.supernode.runtime.run_clientapp as clientapp_task

    assert callable(run_superexec.get_executor) and callable(run_superexec.run_superexec)
    source = inspect.getsource(supernode_loop)
    assert "time.sleep(3)" in source and "time.sleep(0.5)" in source  # the waits short_sleeps maps
    for module, name in ((supernode_loop, "pull_objects"), (http_grid, "pull_objects"),
                         (clientapp_task, "pull_and_inflate_object_from_tree")):  # fmt: skip
        assert "initial_backoff" in inspect.signature(getattr(module, name)).parameters, name
    assert isinstance(fleet.HEARTBEAT_DEFAULT_INTERVAL, int | float)
    assert isinstance(heartbeats.HEARTBEAT_DEFAULT_INTERVAL, int | float)
    assert MIN_HEARTBEAT == HEARTBEAT_MIN_INTERVAL  # the SuperLink refuses anything shorter


def test_short_sleeps_shortens_the_idle_and_the_local_waits_and_keeps_the_clock():
    clock = short_sleeps(0.01, 0.02)
    t0 = time.monotonic()
    clock.sleep(3)  # the idle poll
    clock.sleep(0.5)  # a wait for a reply in the node's state
    assert time.monotonic() - t0 < 0.3
    assert clock.monotonic() >= t0 and clock.time() > 0


def test_patching_touches_only_the_supernode_and_refuses_a_heartbeat_below_flowers_minimum(monkeypatch):
    monkeypatch.setattr(supernode_loop, "time", supernode_loop.time)
    monkeypatch.setattr(fleet, "HEARTBEAT_DEFAULT_INTERVAL", fleet.HEARTBEAT_DEFAULT_INTERVAL)
    monkeypatch.setattr(heartbeats, "HEARTBEAT_DEFAULT_INTERVAL", heartbeats.HEARTBEAT_DEFAULT_INTERVAL)
    patch_flower(0.2, 12.0)
    assert fleet.HEARTBEAT_DEFAULT_INTERVAL == heartbeats.HEARTBEAT_DEFAULT_INTERVAL == 12.0
    assert time.sleep is not supernode_loop.time.sleep  # the real module is untouched
    with pytest.raises(SystemExit, match="below 10"):
        patch_flower(0.2, 5.0)


def test_the_node_port_is_read_from_flowers_arguments():
    assert _port(["--superlink", "x:1", "--port", "9100"]) == 9100
    assert _port(["--port=9101"]) == 9101
    with pytest.raises(SystemExit, match="needs --port"):
        _port(["--superlink", "x:1"])


def test_the_executor_takes_clientapp_tasks_only():
    executor = InProcessExecutor()
    types, fabs = executor.get_eligible_capacity({TaskType.CLIENT_APP, TaskType.SERVER_APP})
    assert types == {TaskType.CLIENT_APP} and fabs == set()
