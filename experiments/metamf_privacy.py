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

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from fedmood.metamf.experiment import run
from fedmood.paths import PROJECT_ROOT


@hydra.main(config_path="../conf", config_name="metamf", version_base="1.3")
def main(cfg: DictConfig) -> None:
    config = OmegaConf.to_container(cfg, resolve=True)
    for key in ("data_root", "results_root", "ratings_path"):
        if config.get(key) and not Path(config[key]).is_absolute():
            config[key] = str(PROJECT_ROOT / config[key])
    table = run(config, HydraConfig.get().runtime.output_dir)
    print("\n" + table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
