"""The anonymiser on MotionSense: activity F1 and identity accuracy, centralised and federated.

    python benchmarks/aae.py [--schedule quick|full] [--all-methods] [--data-path DIR] [hydra overrides]

Runs the Table 2 experiment's ``raw``, ``aae`` and ``aae_federated`` rows (``--all-methods``: every
row of ``conf/aae.yaml``, the whole table) with the chosen schedule (``conf/aae_size/``; quick by
default: minutes on 2 cores; Hydra overrides after the options) into ``results/aae/benchmark-<schedule>``
and prints one summary line last:

    aae: act_f1=<a> id_acc=<b> raw_act_f1=<c> raw_id_acc=<d> fed_act_f1=<e> fed_id_acc=<f> fed_id_head_acc=<g>

``fed_id_head_acc``: the federated identity heads' accuracy (%) on held-out windows of the training
subjects (their short trials) after the first adversaries round (``conf/aae.yaml``: ``federated.identity_heads``).
"""

from __future__ import annotations

import argparse
import sys
import time

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from fedmood.data.motionsense import data_files_present, default_root
from fedmood.paths import CONF_DIR, PROJECT_ROOT
from fedmood.studies.aae.experiment import run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schedule", "--size", dest="size", default="quick", choices=["quick", "full"])
    ap.add_argument("--all-methods", action="store_true", help="every row of Table 2, not only raw/aae/federated")
    ap.add_argument("--data-path", default=str(default_root()))
    ap.add_argument("overrides", nargs="*", help="Hydra overrides of conf/aae.yaml, e.g. aae.l2=1e-3")
    args = ap.parse_args()
    if not data_files_present(args.data_path):
        sys.exit(f"MotionSense not found at {args.data_path} (see ../shared/data/README.md); pass --data-path")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        overrides = [f"aae_size={args.size}"] + ([] if args.all_methods else ["methods=[raw,aae,aae_federated]"])
        overrides += args.overrides
        cfg = compose("aae", overrides=overrides)
    config = OmegaConf.to_container(cfg, resolve=True)
    config["data_path"] = args.data_path
    out = PROJECT_ROOT / "results" / "aae" / f"benchmark-{args.size}"
    t0 = time.perf_counter()
    table = run(config, out).set_index("method")
    print(table.to_string(float_format=lambda v: f"{v:.2f}"))
    print(f"size={args.size} total_sec={time.perf_counter() - t0:.0f} results={out}")
    print(
        f"aae: act_f1={table.loc['aae', 'act_f1']:.2f} id_acc={table.loc['aae', 'id_acc']:.2f} "
        f"raw_act_f1={table.loc['raw', 'act_f1']:.2f} raw_id_acc={table.loc['raw', 'id_acc']:.2f} "
        f"fed_act_f1={table.loc['aae_federated', 'act_f1']:.2f} fed_id_acc={table.loc['aae_federated', 'id_acc']:.2f} "
        f"fed_id_head_acc={table.loc['aae_federated', 'id_head_acc']:.2f}"
    )


if __name__ == "__main__":
    main()
