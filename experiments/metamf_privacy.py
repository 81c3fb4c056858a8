"""Hydra entry point: MetaMF vs NoMetaMF under a privacy budget β (Müllner et al., ECIR 2021).

    python experiments/metamf_privacy.py                                 # MetaMF on ml, β = 1
    python experiments/metamf_privacy.py variant=nometamf beta=0.3 dataset=ciao
    python experiments/metamf_privacy.py ratings_path=/path/to/ratings.csv
    python experiments/metamf_privacy.py -m                              # dataset x variant x β sweep

Each run writes results/metamf/<dataset>-<variant>-beta<β>-<timestamp>/ (config.yaml, history.csv,
summary.csv: test MAE/MSE for all users and the Low/Med/High groups); a killed run resumes from
results/metamf/checkpoints/. The sweep adds beta_sweep.csv (with ΔMAE@β) and
figures/delta_mae_<dataset>.png.
"""

from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from fedmood.cli import guarded
from fedmood.paths import with_absolute_paths
from fedmood.studies.metamf.experiment import run


@hydra.main(config_path="../conf", config_name="metamf", version_base="1.3")
@guarded
def main(cfg: DictConfig) -> None:
    config = with_absolute_paths(
        OmegaConf.to_container(cfg, resolve=True), ("data_path", "results_root", "ratings_path")
    )
    table = run(config, HydraConfig.get().runtime.output_dir)
    print("\n" + table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
