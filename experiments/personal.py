"""Hydra entry point: personal model training (Servia-Rodriguez et al., IoTDI 2018) on MotionSense.

    python experiments/personal.py                        # every subject, 3 seeds, + federated Shared
    python experiments/personal.py personal_size=quick    # minutes
    python experiments/personal.py personal.params=head   # personalise the output layer only

Writes results/personal/<size>-<timestamp>/ (see :mod:`fedmood.studies.personal.experiment`); rerun with
``hydra.run.dir=`` set to an interrupted run's folder to resume it.
"""

from __future__ import annotations

import json

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from fedmood.cli import guarded
from fedmood.paths import with_absolute_paths
from fedmood.studies.personal.experiment import run


@hydra.main(config_path="../conf", config_name="personal", version_base="1.3")
@guarded
def main(cfg: DictConfig) -> None:
    config = with_absolute_paths(OmegaConf.to_container(cfg, resolve=True), ("data_path", "results_root", "cache_dir"))
    summary = run(config, HydraConfig.get().runtime.output_dir)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
