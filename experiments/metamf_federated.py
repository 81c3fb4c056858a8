"""Hydra entry point: federated MetaMF on Flower (the MetaMF paper's Algorithm 1), one device per user.

    python experiments/metamf_federated.py                          # first 100 users of ml, 50 rounds
    python experiments/metamf_federated.py users=300 num_rounds=200 beta=0.5
    python experiments/metamf_federated.py ratings_path=/path/to/ratings.csv users=null

Writes results/metamf_federated/<dataset>-<variant>-beta<β>-<timestamp>/ (config.yaml, history.csv
with the training MSE, device-side validation MAE and bytes per client of every round, summary.csv
with the device-side test MAE/MSE for all users and the Low/Med/High groups).
"""

from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from fedmood.cli import guarded
from fedmood.paths import with_absolute_paths
from fedmood.studies.metamf.federated_experiment import run


@hydra.main(config_path="../conf", config_name="metamf_federated", version_base="1.3")
@guarded
def main(cfg: DictConfig) -> None:
    config = with_absolute_paths(
        OmegaConf.to_container(cfg, resolve=True), ("data_path", "results_root", "ratings_path")
    )
    table = run(config, HydraConfig.get().runtime.output_dir)
    print("\n" + table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
