"""Federated MetaMF on Flower: what a client receives and sends per round, on real users.

    python benchmarks/metamf_federated_bytes.py [--dataset ml] [--users 30] [--rounds 3]

Runs the four-stage federated MetaMF rounds (``fedmood/studies/metamf/generator_loop.py``) in a Flower
simulation with the first ``--users`` users of the data set (their training ratings, the data set's
full item catalogue) and prints per round the array payload bytes per client, then one line last:

    metamf_federated: dataset=<name> users=<n> bytes_down_per_client=<b> bytes_up_per_client=<b> sec_per_round=<s>
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from fedmood.studies.metamf.data import first_users, load_metamf_dataset
from fedmood.studies.metamf.federated_experiment import run_federated_metamf

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "metamf"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="ml")
    ap.add_argument("--data-root", default=str(DEFAULT_ROOT))
    ap.add_argument("--users", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not Path(args.data_path).is_dir():
        sys.exit(f"MetaMF data not found at {args.data_path} (see ../shared/data/README.md); pass --data-root")
    data = first_users(load_metamf_dataset(args.data_path, args.dataset), args.users)
    train = data.train
    cfg = {"seed": 0, "training": {"lr": 1e-4, "weight_decay": 1e-3, "batch_size": 64, "grad_clip": 5.0}}
    history, _, _ = run_federated_metamf(cfg, data, args.rounds)
    later = history[1:] or history
    print(
        f"ratings per client: mean {len(train) / args.users:.0f}, distinct items per client: "
        f"mean {np.mean([len(np.unique(train.items[train.users == u])) for u in range(args.users)]):.0f}"
    )
    print(
        f"metamf_federated: dataset={args.dataset} users={args.users} "
        f"bytes_down_per_client={np.mean([h['bytes_down_per_client'] for h in history]):.0f} "
        f"bytes_up_per_client={np.mean([h['bytes_up_per_client'] for h in history]):.0f} "
        f"sec_per_round={np.mean([h['seconds'] for h in later]):.3f}"
    )


if __name__ == "__main__":
    main()
