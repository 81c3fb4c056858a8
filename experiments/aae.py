"""Hydra entry point: Table 2 of Malekzadeh et al. ("Mobile Sensor Data Anonymization", IoTDI 2019).

    python experiments/aae.py                        # full schedule: every row of the table
    python experiments/aae.py aae_size=quick         # minutes
    python experiments/aae.py methods=[raw,aae] data_path=/path/to/motionsense

Writes results/aae/<schedule>-<timestamp>/: config.yaml, table2.csv (after every row), table2.md
(ours next to the paper's), aae.pt (the anonymiser, for ``python -m fedmood.studies.aae.anonymise``),
the AAE/REP training histories and figures/.
"""

from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from fedmood.cli import guarded
from fedmood.paths import with_absolute_paths
from fedmood.studies.aae.experiment import run


@hydra.main(config_path="../conf", config_name="aae", version_base="1.3")
@guarded
def main(cfg: DictConfig) -> None:
    config = with_absolute_paths(OmegaConf.to_container(cfg, resolve=True), ("data_path", "results_root", "cache_dir"))
    table = run(config, HydraConfig.get().runtime.output_dir)
    print("\n" + table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
