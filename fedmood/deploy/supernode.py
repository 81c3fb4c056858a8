"""Flower's SuperNode with a warm ClientApp and shorter waits: ``python -m fedmood.deploy.supernode``.

Takes every ``flower-supernode`` argument (``--port`` is required: the node's Runtime API) and
runs Flower 1.42's own SuperNode with four changes, each measured by ``benchmarks/deploy.py``:

* **a warm ClientApp** (:mod:`fedmood.deploy.warm_superexec`): the SuperNode runs with
  ``--isolation process`` and this process starts the warm SuperExec as its child, so messages are
  served by one long-lived process that imported torch once, instead of a new ``flwr-clientapp``
  process per message (``--cold`` keeps Flower's subprocess executor, for comparison);
* **idle polling**: when the SuperNode polls the SuperLink and finds no message it sleeps a fixed
  3 s (``start_client_internal``), so each message waits up to 3 s to be seen and each reply up to
  3 s to be pushed (it checks its own state for the reply every 0.5 s). Those become
  ``--idle-poll`` seconds (:data:`IDLE_POLL`) and :data:`LOCAL_WAIT`;
* **object pulls**: a message whose parts (objects) are not all at the SuperLink yet is pulled
  again after 1 s, then 2, 4...; here after 0.02 s, at most 0.5 s
  (:func:`fedmood.federated.grid.shorten_object_pull_backoff`; the warm SuperExec and the
  ServerApp's grid do the same);
* **heartbeats**: the SuperNode reports every 30 - 5 s and the SuperLink declares it gone after
  2 x 30 s of silence, so a killed device was noticed after up to a minute. Set to ``--heartbeat``
  seconds (default 10, the smallest interval the SuperLink accepts: a kill is noticed within 20 s).

The process tree is the same as Flower's (the SuperExec is the SuperNode's child), so killing a
node's tree kills its ClientApp too. Patches Flower 1.42.0's internals (the pin in
pyproject.toml); ``tests/deploy/test_warm_supernode.py`` checks they are where this expects.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import types

from fedmood.federated.grid import shorten_object_pull_backoff

#: Seconds between an idle SuperNode's polls of the SuperLink (Flower: 3 s), and between the warm
#: SuperExec's polls of its SuperNode for a task (Flower: 1 s). Every poll is an HTTP request that
#: costs CPU on both ends: ten idle nodes on two cores polling 5 and 20 times a second made a round
#: slower, not faster (benchmarks/deploy.py).
IDLE_POLL, TASK_POLL = 1.0, 0.5
#: The SuperNode's waits for a reply in its own state (no request; Flower: 0.5 s).
LOCAL_WAIT = 0.05
#: The smallest heartbeat interval Flower's SuperLink accepts (``HEARTBEAT_MIN_INTERVAL``).
MIN_HEARTBEAT = 10.0


def short_sleeps(idle: float, local: float = LOCAL_WAIT) -> types.SimpleNamespace:
    """A stand-in for the SuperNode loop's ``time`` module: its idle wait (3 s) becomes ``idle``
    seconds, its shorter waits for a reply in its own state (0.5 s) at most ``local``."""
    clock = types.SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if not name.startswith("_")})
    clock.sleep = lambda seconds: time.sleep(idle if seconds >= 3 else min(float(seconds), local))
    return clock


def patch_flower(idle_poll: float, heartbeat: float) -> None:
    """Shorten the SuperNode's idle poll and heartbeat interval (this process only)."""
    import flwr.supercore.heartbeat as heartbeats
    import flwr.supernode.fleet_http_connection as fleet
    import flwr.supernode.start_client_internal as supernode

    if heartbeat < MIN_HEARTBEAT:
        raise SystemExit(f"--heartbeat {heartbeat}: the SuperLink refuses intervals below {MIN_HEARTBEAT:g} s")
    supernode.time = short_sleeps(idle_poll)
    shorten_object_pull_backoff(supernode, "pull_objects")  # a message's objects a moment late
    fleet.HEARTBEAT_DEFAULT_INTERVAL = heartbeat  # what the node asks the SuperLink to expect
    heartbeats.HEARTBEAT_DEFAULT_INTERVAL = heartbeat  # how often the node's sender beats


def _port(flower_args: list[str]) -> int:
    for i, arg in enumerate(flower_args):
        if arg == "--port" and i + 1 < len(flower_args):
            return int(flower_args[i + 1])
        if arg.startswith("--port="):
            return int(arg.split("=", 1)[1])
    raise SystemExit("fedmood.deploy.supernode needs --port (the node's Runtime API port)")


def main(argv: list[str] | None = None) -> None:
    """Start the SuperNode (and, unless ``--cold``, its warm SuperExec)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=False)
    ap.add_argument("--idle-poll", type=float, default=IDLE_POLL)
    ap.add_argument("--task-poll", type=float, default=TASK_POLL, help="the warm SuperExec's polls for a task")
    ap.add_argument("--heartbeat", type=float, default=MIN_HEARTBEAT)
    ap.add_argument("--cold", action="store_true", help="Flower's subprocess executor (a process per message)")
    ours, flower_args = ap.parse_known_args(sys.argv[1:] if argv is None else argv)
    patch_flower(ours.idle_poll, ours.heartbeat)
    if not ours.cold:
        flower_args += ["--isolation", "process"]
        executor = [sys.executable, "-m", "fedmood.deploy.warm_superexec", "--insecure", "--poll", str(ours.task_poll)]
        executor += ["--runtime-api-address", f"127.0.0.1:{_port(flower_args)}", "--parent-pid", str(os.getpid())]
        subprocess.Popen(executor)  # our own module, our own interpreter
    from flwr.supernode.cli.flower_supernode import flower_supernode

    sys.argv = ["flower-supernode", *flower_args]
    flower_supernode()


if __name__ == "__main__":
    main()
