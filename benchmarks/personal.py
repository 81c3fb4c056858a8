"""Personal model training on MotionSense: Shared vs Personal vs Local, and the on-device cost.

    python benchmarks/personal.py [--size quick|full] [--data-path ../shared/data/motionsense]

Runs ``experiments/personal.py``'s study (``conf/personal_size/``; quick by default: minutes on 2
cores) into ``results/personal/benchmark-<size>`` and prints one summary line last:

    personal: shared_acc=<a> personal_acc_at_20=<b> local_acc_at_20=<c> crossover_personal=<n1>
    crossover_local=<n2> personalise_sec=<t> personalise_peak_mb=<m>

(one line; accuracies are means over the held-out devices, k = all other users; a crossover is
``none`` when it does not happen on the grid of n).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from fedmood.data.motionsense import data_files_present, default_root
from fedmood.paths import CONF_DIR, PROJECT_ROOT
from fedmood.studies.personal.experiment import run


def _n(v: float) -> str:
    return "none" if math.isnan(v) else str(int(v))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="quick", choices=["quick", "full"])
    ap.add_argument("--data-path", default=str(default_root()))
    args = ap.parse_args()
    if not data_files_present(args.data_path):
        sys.exit(f"MotionSense not found at {args.data_path} (see ../shared/data/README.md); pass --data-path")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("personal", overrides=[f"personal_size={args.size}"])
    config = OmegaConf.to_container(cfg, resolve=True)
    config["data_path"] = args.data_path
    out = PROJECT_ROOT / "results" / "personal" / f"benchmark-{args.size}"
    if (out / "results.csv").exists():
        (out / "results.csv").unlink()  # a benchmark measures afresh (the experiment itself resumes)
    t0 = time.perf_counter()
    s = run(config, out)
    print(json.dumps(s, indent=2))
    print(f"size={args.size} total_sec={time.perf_counter() - t0:.0f} results={out}")
    print(
        f"personal: shared_acc={s['shared_acc']:.2f} personal_acc_at_20={s['personal_acc_at_20']:.2f} "
        f"local_acc_at_20={s['local_acc_at_20']:.2f} crossover_personal={_n(s['crossover_personal'])} "
        f"crossover_local={_n(s['crossover_local'])} personalise_sec={s['personalise_sec']:.3f} "
        f"personalise_peak_mb={s['personalise_peak_mb']:.0f}"
    )


if __name__ == "__main__":
    main()
