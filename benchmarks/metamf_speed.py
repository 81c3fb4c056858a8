"""One epoch of MetaMF on a published data set: seconds, peak memory, validation MAE.

    python benchmarks/metamf_speed.py [--dataset ml] [--data-root ../shared/data/metamf] [--threads 2] [--device cpu]

(``--device cuda`` times the GPU path: the fixed-shape step replayed as a CUDA graph.)

Prints the epoch's details, then one summary line last:

    metamf: dataset=<name> sec_per_epoch=<s> peak_rss_mb=<m> val_mae=<v>
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path

import torch

from fedmood.studies.metamf.data import load_metamf_dataset
from fedmood.studies.metamf.model import MetaMF
from fedmood.studies.metamf.train import MetaTrainConfig, fit
from fedmood.training import torch_device

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "metamf"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="ml")
    ap.add_argument("--data-root", default=str(DEFAULT_ROOT))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu (the target: 2 cores), cuda or auto")
    args = ap.parse_args()
    if not Path(args.data_path).is_dir():
        sys.exit(f"MetaMF data not found at {args.data_path} (see ../shared/data/README.md); pass --data-root")
    torch.set_num_threads(args.threads)
    data = load_metamf_dataset(args.data_path, args.dataset)
    torch.manual_seed(0)
    device = torch_device(args.device)
    model = MetaMF(data.n_users, data.n_items).to(device)
    res = fit(model, data.train, data.valid, MetaTrainConfig(max_epochs=1), progress=True)
    epoch = res.history[0]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        print(f"device={torch.cuda.get_device_name()} peak_gpu_mb={torch.cuda.max_memory_allocated() / 2**20:.0f}")
    print(
        f"users={data.n_users} items={data.n_items} train={len(data.train)} batch=64 steps={-(-len(data.train) // 64)}"
    )
    print(
        f"metamf: dataset={args.dataset} sec_per_epoch={epoch['seconds']:.1f} peak_rss_mb={peak_mb:.0f} "
        f"val_mae={epoch['val_mae']:.4f}"
    )


if __name__ == "__main__":
    main()
