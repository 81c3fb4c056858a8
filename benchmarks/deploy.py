"""A deployed round against a simulated one, and how soon a killed SuperNode is noticed.

    python benchmarks/deploy.py [--nodes 10] [--rounds 6] [--days 6] [--also-flower]

On the same generated day logs (``--nodes`` users) and the same configuration, in one run:

* **simulated**: the federated mood recommender in Flower's simulation (one node per user);
* **deployed**: the same app on a real local federation (:class:`fedmood.deploy.federation.LocalFederation`:
  a SuperLink and ``--nodes`` SuperNodes on 127.0.0.1, TLS and SuperNode authentication on),
  each node a warm SuperNode (:mod:`fedmood.deploy.supernode`); with ``--also-flower`` once more
  with Flower's own ``flower-supernode`` (a ClientApp process per message), for comparison;
* seconds per round: the mean of the rounds' wall times (``rounds_federated.csv``) over rounds
  2 .. R-1 (round 1 has the clustering and the start-up, the last the final evaluation);
* **kill detection**: a second deployed run; one SuperNode is SIGKILLed in round 2, right after it
  received its training message (the fault mod holds it there), and the run's streamed log is read
  every 0.1 s until the ServerApp reports it presumed down (``federation.phase_timeout``: silent
  that long after the other nodes' latest reply; the figure includes the log's streaming delay).
  The SuperLink is also asked (``flwr supernode list``) every 0.5 s until it lists the node
  offline (Flower's own detection: two missed heartbeats of at least 10 s).

Prints the details, then one summary line last:

    deploy: nodes=<n> deployed_sec_per_round=<a> simulated_sec_per_round=<b> ratio=<a/b> kill_detect_sec=<c>
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fedmood.deploy.federation import CONNECTION, LocalFederation
from fedmood.studies.mood.data.generator import GeneratorConfig, write_day_logs
from fedmood.studies.mood.run import run_federated_simulation
from fedmood.studies.mood.run_config import compose_config

COMMON = ["personalise.enabled=false", "suggest_users=0", "data.cluster_max_iter=3"]


def _mean_round(seconds: list[float]) -> float:
    middle = seconds[1:-1] or seconds
    return float(np.mean(middle))


def simulated(logs: Path, rounds: int) -> list[float]:
    """Seconds of each round of the simulated run."""
    cfg = compose_config([*COMMON, "data=logs", f"data.logs_dir={logs}", f"training.epochs={rounds}"])
    run = run_federated_simulation(cfg)
    return [float(r["seconds"]) for r in run.rounds]


def deployed(fed: LocalFederation, rounds: int) -> list[float]:
    """Seconds of each round of one ``flwr run`` on the (started) federation ``fed``."""
    run = fed.run_app(rounds, [*COMMON, f"training.epochs={rounds}"])
    run.process.wait(timeout=1800)
    if run.process.returncode != 0:
        raise RuntimeError(f"the deployed run failed:\n{run.text()[-3000:]}")
    folder = sorted((fed.root / "results").iterdir())[-1]
    rounds = pd.read_csv(folder / "rounds_federated.csv")
    if (rounds["clients"] < fed.n_nodes).any():  # a node presumed down would make the rounds cheaper
        raise RuntimeError(f"a round went on without some node: clients {list(rounds['clients'])}")
    return [float(s) for s in rounds["seconds"]]


def _online(fed: LocalFederation) -> set[int]:
    nodes = json.loads(fed.flwr(["supernode", "list", CONNECTION, "--format", "json"])).get("nodes", [])
    return {int(n["node-id"]) for n in nodes if str(n.get("status", "")) == "online"}


def kill_detection(fed: LocalFederation, victim: int, marker: Path, timeout: float = 120.0) -> tuple[float, float]:
    """Seconds from SIGKILL of SuperNode ``victim`` in round 2 of a run until the ServerApp presumes it
    down, and until the SuperLink lists it offline."""
    marker.unlink()  # arms the victim's fault point (round 2)
    run = fed.run_app(4, [*COMMON, "training.epochs=4"])
    while not marker.exists():
        if not run.alive:
            raise RuntimeError(f"the run ended before the fault round:\n{run.text()[-3000:]}")
        time.sleep(0.05)
    before = _online(fed)
    fed.kill_node(victim)
    t0 = time.monotonic()
    server = superlink = float("nan")
    while time.monotonic() - t0 < timeout and (np.isnan(server) or np.isnan(superlink)):
        if np.isnan(server) and "presumed down (federation.phase_timeout=" in run.text():
            server = time.monotonic() - t0
        if np.isnan(superlink) and len(_online(fed)) < len(before):
            superlink = time.monotonic() - t0
        time.sleep(0.1)
    run.process.wait(timeout=600)
    return server, superlink


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--days", type=int, default=6, help="days of logs per user")
    ap.add_argument("--also-flower", action="store_true", help="also time Flower's own SuperNode")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fedmood-deploy-bench-") as tmp:
        tmp = Path(tmp)
        logs = write_day_logs(GeneratorConfig(n_users=args.nodes, n_days=args.days, seed=11), tmp / "logs")
        sim = simulated(logs, args.rounds)
        print(f"simulated rounds (s): {[round(s, 2) for s in sim]}", flush=True)
        timings = {}
        for warm in (True, False) if args.also_flower else (True,):
            name = "warm" if warm else "flower"
            fed = LocalFederation(tmp / f"fed-{name}", args.nodes, warm=warm)
            marker, victim = tmp / f"fault-{name}", args.nodes - 1
            marker.write_text("disarmed\n")  # the fault point fires only once the marker is gone
            try:
                t0 = time.monotonic()
                fed.start(logs, node_config={victim: f'fault-marker="{marker}" fault-round=2'})
                print(f"{name}: federation of {args.nodes} nodes up in {time.monotonic() - t0:.1f} s", flush=True)
                timings[name] = deployed(fed, args.rounds)
                print(f"{name} deployed rounds (s): {[round(s, 2) for s in timings[name]]}", flush=True)
                if warm:
                    kill_sec, superlink_sec = kill_detection(fed, victim, marker)
                    print(
                        f"{name}: killed node presumed down by the ServerApp after {kill_sec:.1f} s, "
                        f"listed offline by the SuperLink after {superlink_sec:.1f} s",
                        flush=True,
                    )
            finally:
                fed.stop()
    a, b = _mean_round(timings["warm"]), _mean_round(sim)
    if "flower" in timings:
        f = _mean_round(timings["flower"])
        print(f"Flower's own SuperNode: {f:.2f} s per round ({f / b:.1f}x the simulation, {f / a:.1f}x warm)")
    print(
        f"deploy: nodes={args.nodes} deployed_sec_per_round={a:.3f} simulated_sec_per_round={b:.3f} "
        f"ratio={a / b:.2f} kill_detect_sec={kill_sec:.1f}"
    )


if __name__ == "__main__":
    main()
