"""Hydra entry point: personal topic models (Servia-Rodriguez et al., IoTDI 2018, §IV) on NIPS.

    python experiments/topics.py                       # the full study
    python experiments/topics.py topics_size=quick     # minutes

Writes results/topics/<size>-<timestamp>/ (see :mod:`fedmood.studies.topics.experiment`).
"""

from __future__ import annotations

import json

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from fedmood.cli import guarded
from fedmood.paths import with_absolute_paths
from fedmood.studies.topics.experiment import run


@hydra.main(config_path="../conf", config_name="topics", version_base="1.3")
@guarded
def main(cfg: DictConfig) -> None:
    config = with_absolute_paths(OmegaConf.to_container(cfg, resolve=True), ("data_path", "results_root"))
    summary = run(config, HydraConfig.get().runtime.output_dir)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
