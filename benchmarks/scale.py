"""How the federated mood recommender scales in Flower's simulation engine with many users.

    python benchmarks/scale.py [--clients 100 1000 5000] [--sampled 1000] [--rounds 5] [--days 4]

For each population size ``n`` one simulation runs in a fresh process (its own Ray instance): ``n``
simulated SuperNodes, one user each (generated day logs, ``--days`` per user), federated
clustering, then ``--rounds`` FedAvg rounds in which ``min(n, --sampled)`` clients are sampled
and each trains one local epoch. Measured per population:

* ``sec_per_round``: mean wall time of a training round, rounds 2 .. R-1 (round 1 also has the
  actors loading every sampled user's data for the first time, round R the final evaluation of
  the model on every client; both are printed apart);
* ``updates_per_sec``: client updates aggregated per second (sampled clients / sec_per_round);
* ``peak_rss_mb``: the peak of the summed resident memory of the run's whole process tree (the
  driver with the ServerApp, Ray's processes and its ClientApp actors), sampled every 0.2 s.

Prints one line per population, then as its last line the summary for the largest ``n`` run:

    scale: clients=<n> sec_per_round=<s> updates_per_sec=<u> peak_rss_mb=<m>
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from fedmood.process_tree import descendants

ROOT = Path(__file__).resolve().parents[1]


def rss_mb(pids: list[int]) -> float:
    """Summed VmRSS of ``pids`` (MB; processes that ended meanwhile count 0)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total / 1024


def one_population(n: int, sampled: int, rounds: int, days: int, cpus: int, client_cpus: float) -> dict:
    """Run in a fresh process: the simulation for ``n`` users; returns the run's round timings."""
    from fedmood.studies.mood.run import run_federated_simulation
    from fedmood.studies.mood.run_config import compose_config

    per_round = min(n, sampled)
    cfg = compose_config(
        [
            f"data.n_users={n}",
            f"data.n_days={days}",
            "data.cluster_max_iter=5",
            f"training.epochs={rounds}",
            f"federation.clients_per_round={per_round if per_round < n else 'null'}",
            f"federation.backend_num_cpus={cpus}",
            f"federation.client_num_cpus={client_cpus}",
            "federation.flower_log_level=ERROR",
            "personalise.enabled=false",
            "suggest_users=0",
        ]
    )
    t0 = time.perf_counter()
    run = run_federated_simulation(cfg)
    return {
        "n": n,
        "sampled": per_round,
        "seconds": [r["seconds"] for r in run.rounds],
        "clients": [r["clients"] for r in run.rounds],
        "cluster_seconds": run.cluster_seconds,
        "total_seconds": time.perf_counter() - t0,
        "val_mse": run.rounds[-1]["val_mse"],
    }


def measure(n: int, sampled: int, rounds: int, days: int, cpus: int, client_cpus: float) -> dict:
    """:func:`one_population` in a child process, with its process tree's peak RSS."""
    cmd = [sys.executable, __file__, "--one", str(n), "--sampled", str(sampled), "--rounds", str(rounds)]
    cmd += ["--days", str(days), "--cpus", str(cpus), "--client-cpus", str(client_cpus)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    peak = 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mb([proc.pid, *descendants(proc.pid)]))
            time.sleep(0.2)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    out, _ = proc.communicate()
    done.set()
    watcher.join()
    if proc.returncode != 0:
        raise RuntimeError(f"population {n} failed with exit code {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    secs = result["seconds"]
    steady = secs[1:-1] or secs
    result.update(
        peak_rss_mb=peak,
        sec_per_round=float(np.mean(steady)),
        first_round_sec=secs[0],
        last_round_sec=secs[-1],
        updates_per_sec=result["sampled"] / float(np.mean(steady)),
    )
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, nargs="+", default=[100, 1000, 5000])
    p.add_argument("--sampled", type=int, default=1000, help="clients sampled per round (at most n)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--days", type=int, default=4, help="days of logs per user")
    p.add_argument("--cpus", type=int, default=2, help="CPUs given to Ray")
    p.add_argument("--client-cpus", type=float, default=1.0, help="CPUs per ClientApp actor (cpus / this = actors)")
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one is not None:
        print(
            json.dumps(one_population(args.one, args.sampled, args.rounds, args.days, args.cpus, args.client_cpus)),
            flush=True,
        )
        return
    last = None
    for n in sorted(args.clients):
        r = measure(n, args.sampled, args.rounds, args.days, args.cpus, args.client_cpus)
        print(
            f"clients={n} sampled_per_round={r['sampled']} rounds={len(r['seconds'])} "
            f"round_seconds={[round(s, 2) for s in r['seconds']]} first_round_sec={r['first_round_sec']:.2f} "
            f"last_round_sec={r['last_round_sec']:.2f} "
            f"sec_per_round={r['sec_per_round']:.2f} updates_per_sec={r['updates_per_sec']:.1f} "
            f"cluster_sec={r['cluster_seconds']:.1f} total_sec={r['total_seconds']:.1f} "
            f"peak_rss_mb={r['peak_rss_mb']:.0f} val_mse={r['val_mse']:.4f}",
            flush=True,
        )
        last = r
    print(
        f"scale: clients={last['n']} sec_per_round={last['sec_per_round']:.2f} "
        f"updates_per_sec={last['updates_per_sec']:.1f} peak_rss_mb={last['peak_rss_mb']:.0f}"
    )


if __name__ == "__main__":
    main()
