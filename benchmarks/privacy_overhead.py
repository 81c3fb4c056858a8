"""What each privacy mechanism costs, measured in one run on the default data.

    python benchmarks/privacy_overhead.py [--secagg-clients 100] [--secagg-rounds 6] [--dpsgd-rounds 5]

* ``secagg_round_ratio``: mean wall time of a SecAgg+ round over a plain FedAvg round of the
  federated mood recommender, both in the Flower simulation with ``--secagg-clients`` users
  (rounds 2 .. R-1: the first has the actors' start-up, the last the final evaluation); the
  SecAgg+ round's four stages are timed too (``rounds_federated.csv``: ``secagg_<stage>_seconds``);
* ``dpsgd_step_ratio``: time of a local epoch (the training loop, ``fit-seconds``) with Opacus
  DP-SGD over the plain one, on every default user's device, same data, batch size and
  schedule, measured in this process over ``--dpsgd-rounds`` rounds each, interleaved;
* ``fed_val_mse``: the non-private federated run's final validation MSE (default config);
* ``central_dp_val_mse_at_eps1``: the same run with user-level central DP calibrated to ε = 1
  (δ = min(1/users^1.1, 1e-5), the default) over the whole run.

Prints the details, then one summary line last:

    privacy: secagg_round_ratio=<r> dpsgd_step_ratio=<r> fed_val_mse=<x> central_dp_val_mse_at_eps1=<y>
"""

from __future__ import annotations

import argparse

import numpy as np

from fedmood.studies.mood.data.local import load_all_local_data
from fedmood.studies.mood.device import centres_config, local_round, node_context
from fedmood.studies.mood.experiment import centralised_clustering
from fedmood.studies.mood.run import run_federated_simulation
from fedmood.studies.mood.run_config import compose_config
from fedmood.studies.mood.server_app import initial_item_arrays


def _round_seconds(run) -> float:
    secs = [r["seconds"] for r in run.rounds]
    middle = secs[1:-1] or secs
    return float(np.mean(middle))


def _stage_seconds(run) -> dict[str, float]:
    """Mean seconds of each SecAgg+ stage over the same rounds as :func:`_round_seconds`."""
    rows = run.rounds[1:-1] or run.rounds
    prefix, suffix = "secagg_", "_seconds"
    names = [k for k in rows[0] if k.startswith(prefix) and k.endswith(suffix)]
    return {k[len(prefix) : -len(suffix)]: float(np.mean([r[k] for r in rows])) for k in names}


def _federated(overrides: list[str]):
    return run_federated_simulation(compose_config(["suggest_users=0", *overrides]))


def dpsgd_epoch_ratio(rounds: int) -> tuple[float, float]:
    """Summed local-epoch seconds over all default users: (plain, DP-SGD), interleaved per user."""
    plain_cfg = compose_config(["suggest_users=0"])
    dp_cfg = compose_config(["suggest_users=0", "privacy=dpsgd"])
    n_users, n_items = plain_cfg["data"]["n_users"], plain_cfg["data"]["n_clusters"]
    centres = _centres(plain_cfg)
    t_plain = t_dp = 0.0
    for user in range(n_users):
        contexts = {"plain": node_context(user, n_users), "dp": node_context(user, n_users)}
        items = {k: v.numpy() for k, v in initial_item_arrays(plain_cfg, n_items).items()}
        for rnd in range(1, rounds + 1):
            config = {"server-round": rnd, "evaluate-first": rnd > 1, **centres_config(centres)}
            t_plain += local_round(plain_cfg, contexts["plain"], items, config).metrics["fit-seconds"]
            t_dp += local_round(dp_cfg, contexts["dp"], items, config).metrics["fit-seconds"]
    return t_plain, t_dp


def _centres(cfg: dict) -> np.ndarray:
    """The centralised k-modes items of the default data (what the federated clustering agrees with)."""
    devices = load_all_local_data(cfg["data"], int(cfg["seed"]))
    return centralised_clustering(
        devices, int(cfg["data"]["n_clusters"]), int(cfg["data"]["cluster_max_iter"]), int(cfg["seed"])
    )[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--secagg-clients", type=int, default=100)
    ap.add_argument("--secagg-rounds", type=int, default=6)
    ap.add_argument("--dpsgd-rounds", type=int, default=5)
    args = ap.parse_args()

    fed = _federated([])
    fed_val = fed.rounds[-1]["val_mse"]
    print(f"non-private federated run: val_mse={fed_val:.4f} sec_per_round={_round_seconds(fed):.3f}", flush=True)

    dp = _federated(["privacy=central_dp", "privacy.target_epsilon=1.0"])
    p = dp.privacy
    dp_val = dp.rounds[-1]["val_mse"]
    print(
        f"central DP (server-side fixed clipping {p['clipping_norm']}): epsilon={p['epsilon']:.4f} "
        f"(Flower's accountant: {p['epsilon_flower']:.4f}) delta={p['delta']:.3g} noise_multiplier="
        f"{p['noise_multiplier']:.3f} val_mse={dp_val:.4f} ({dp_val / fed_val:.3f}x non-private)",
        flush=True,
    )

    t_plain, t_dp = dpsgd_epoch_ratio(args.dpsgd_rounds)
    print(
        f"local epochs, all users x {args.dpsgd_rounds} rounds: plain {t_plain:.3f} s, DP-SGD {t_dp:.3f} s", flush=True
    )

    size = [f"data.n_users={args.secagg_clients}", f"training.epochs={args.secagg_rounds}"]
    plain = _federated(size)
    secure = _federated([*size, "privacy=secagg"])
    t_fedavg, t_secagg = _round_seconds(plain), _round_seconds(secure)
    stages = _stage_seconds(secure)
    print(
        "SecAgg+ stages (mean s per round): " + ", ".join(f"{k} {v:.3f}" for k, v in stages.items())
        + f"; the rest of the round {t_secagg - sum(stages.values()):.3f}",
        flush=True,
    )
    print(
        f"{args.secagg_clients} clients: FedAvg round {t_fedavg:.3f} s, SecAgg+ round {t_secagg:.3f} s "
        f"(num_shares=7, threshold=4), same aggregate: "
        f"{max(np.abs(plain.item_state[k] - secure.item_state[k]).max() for k in plain.item_state):.2e} max abs diff",
        flush=True,
    )
    print(
        f"privacy: secagg_round_ratio={t_secagg / t_fedavg:.3f} dpsgd_step_ratio={t_dp / t_plain:.3f} "
        f"fed_val_mse={fed_val:.4f} central_dp_val_mse_at_eps1={dp_val:.4f}"
    )


if __name__ == "__main__":
    main()
