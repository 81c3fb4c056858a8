"""Hydra entry point: the federated mood recommender under a privacy mechanism.

    python experiments/privacy_utility.py                                  # central DP at ε = 1
    python experiments/privacy_utility.py privacy=dpsgd privacy.target_epsilon=4
    python experiments/privacy_utility.py privacy=central_dp_secagg privacy.target_epsilon=null \\
        privacy.central_dp.noise_multiplier=2.0
    python experiments/privacy_utility.py -m                               # the whole sweep

Each run writes results/privacy_utility/<timestamp>/ (config.yaml, metrics.csv,
rounds_federated.csv, summary.csv with mechanism, noise, ε, δ, val MSE, seconds per round;
figures/). The sweep adds privacy_utility.csv and figures/privacy_utility.png to its folder.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from fedmood.cli import guarded
from fedmood.privacy.settings import PrivacySettings
from fedmood.studies.mood.run import federated_summary_row, run_federated_simulation, write_federated_only
from fedmood.studies.mood.run_config import checked_config
from fedmood.studies.mood.sweep import claim_run


@hydra.main(config_path="../conf", config_name="privacy_utility", version_base="1.3")
@guarded
def main(cfg: DictConfig) -> None:
    config = checked_config(cfg)
    privacy = PrivacySettings.from_cfg(config)  # refuses impossible combinations before any work
    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    duplicate = hc.mode == RunMode.MULTIRUN and not privacy.any_dp
    if duplicate and not claim_run(Path(hc.sweep.dir), privacy.mechanism):
        print(f"{privacy.mechanism} has no noise level: already run in this sweep, skipped")
        return
    run = run_federated_simulation(config)
    write_federated_only(run, config, out)
    row = federated_summary_row(run)
    print(
        f"{row['mechanism']}: val_mse={row['val_mse']:.4f} epsilon={row['epsilon']:.4g} delta={row['delta']:.3g} "
        f"noise_multiplier={row['noise_multiplier']:.4g} sec_per_round={row['sec_per_round']:.3f}"
    )


if __name__ == "__main__":
    main()
