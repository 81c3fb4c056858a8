"""Centralised fastai-style baseline vs the federated Flower run, on the same data, in one process.

    python benchmarks/mood_fed_vs_central.py [hydra overrides, e.g. training.epochs=10]

Both models use the same day logs, per-user splits, trainer, batch size and number of epochs
(rounds). Time per epoch is the mean wall time of a centralised epoch (train + validation) and of
a federated round (every client's local epoch and validation, aggregation, and the Flower
simulation's messaging), including the first round's actor start-up. Prints the round's time
breakdown, then one summary line last:

    mood: central_val_mse=<x> fed_val_mse=<y> val_mse_ratio=<y/x> time_per_epoch_ratio=<t_fed/t_central>
"""

from __future__ import annotations

import sys

import numpy as np

from fedmood.studies.mood import experiment as mood_experiment
from fedmood.studies.mood.run_config import compose_config


def main(overrides: list[str]) -> None:
    cfg = compose_config([*overrides, "suggest_users=0"])
    res = mood_experiment.run(cfg, out_dir=None, progress=False)
    central, fed = res["central"].rounds, res["federated"].rounds
    t_c = float(np.mean([r["seconds"] for r in central]))
    t_f = float(np.mean([r["seconds"] for r in fed]))
    later = fed[1:] or fed
    wall = float(np.mean([r["seconds"] for r in later]))
    handler = float(np.mean([r["client_seconds"] for r in later]))
    fit = float(np.mean([r["fit_seconds"] for r in later]))
    workers = int(cfg["federation"]["backend_num_cpus"]) // int(cfg["federation"]["client_num_cpus"])
    print(
        f"users={len(res['central'].model.user_factors.weight)} epochs={len(central)} "
        f"central_sec_per_epoch={t_c:.4f} fed_sec_per_round={t_f:.4f}"
    )
    print(f"federated round 1 (actor start-up included): {fed[0]['seconds']:.3f} s")
    print(
        f"federated rounds 2..: wall {wall:.4f} s = client handlers {handler:.4f} s summed over "
        f"clients (training loop {fit:.4f} s, set-up/serialisation in the handler "
        f"{handler - fit:.4f} s) spread over {workers} actors "
        f"(~{handler / workers:.4f} s) + Flower messaging/aggregation ~{wall - handler / workers:.4f} s"
    )
    s = res["summary"].set_index("model")
    c_val, f_val = float(s.loc["centralised", "val_mse"]), float(s.loc["federated", "val_mse"])
    print(
        f"mood: central_val_mse={c_val:.4f} fed_val_mse={f_val:.4f} "
        f"val_mse_ratio={f_val / c_val:.3f} time_per_epoch_ratio={t_f / t_c:.3f}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
