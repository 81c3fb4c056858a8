"""Hydra entry point: attack and audit the federated mood recommender under a privacy mechanism.

    python experiments/privacy_attacks.py                                       # no mechanism
    python experiments/privacy_attacks.py privacy=distributed_dp privacy.target_epsilon=1
    python experiments/privacy_attacks.py privacy=secagg federation.clients_per_round=10
    python experiments/privacy_attacks.py -m                                    # the sweep

Each run writes results/privacy_attacks/<timestamp>/ (config.yaml, metrics.csv, summary.csv,
attacks.csv: one row per observer and attack, audit.csv for DP mechanisms, figures/); the sweep
adds attacks.csv and figures/attacks.png to its folder.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from fedmood.cli import guarded
from fedmood.privacy.settings import PrivacySettings
from fedmood.studies.mood.run_config import checked_config
from fedmood.studies.mood.sweep import claim_run
from fedmood.threat_study.experiment import run


@hydra.main(config_path="../conf", config_name="privacy_attacks", version_base="1.3")
@guarded
def main(cfg: DictConfig) -> None:
    config = checked_config(cfg)
    privacy = PrivacySettings.from_cfg(config)  # refuses impossible combinations before any work
    hc = HydraConfig.get()
    key = f"{privacy.mechanism}-{config['federation'].get('clients_per_round')}"
    if hc.mode == RunMode.MULTIRUN and not privacy.any_dp and not claim_run(Path(hc.sweep.dir), key):
        print(f"{key} has no noise level: already run in this sweep, skipped")
        return
    rows = run(config, Path(hc.runtime.output_dir))
    cols = ["mechanism", "observer", "attack", "epsilon", "auc_within", "auc_within_low", "auc_within_high",
            "auc_pooled", "auc_prior", "tpr_at_5fpr", "epsilon_lower", "val_mse"]
    print("\n" + rows[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
