"""Hydra entry point: the mood recommender, centralised baseline vs federated Flower run.

    python experiments/mood.py                       # default: 50 users x 20 days, 10 clusters
    python experiments/mood.py data=paper            # the paper's 4 profiles x 250 days
    python experiments/mood.py -m data.n_clusters=5,10,20
    python experiments/mood.py data=logs data.logs_dir=/path/to/logs
    python experiments/mood.py data=ratings data.ratings_path=ratings.tsv

Writes results/mood/<timestamp>/: config.yaml, metrics.csv, summary.csv, rounds_federated.csv,
comparison.json, suggestions.csv, figures/*.png.
"""

from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from fedmood.cli import guarded
from fedmood.studies.mood.experiment import run
from fedmood.studies.mood.run_config import checked_config


@hydra.main(config_path="../conf", config_name="mood", version_base="1.3")
@guarded
def main(cfg: DictConfig) -> None:
    config = checked_config(cfg)
    out = HydraConfig.get().runtime.output_dir
    res = run(config, out)
    summary = res["summary"]
    shown = [c for c in ("model", "train_mse", "val_mse", "sec_per_epoch", "mechanism", "epsilon") if c in summary]
    print("\n" + summary[shown].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for key, val in res["extra"].items():
        print(f"{key}: {val:.4f}" if isinstance(val, float) else f"{key}: {val}")
    sugg = res["suggestions"]
    fed = sugg[sugg["model"] == "federated"]
    if len(fed):
        print(f"\nSuggestions for {fed['context'].iloc[0]} (the federated model as each user's device personalised it;")
        print("mood scale -1..+1, ± one standard error from the user's own hours in that activity):")
    for user, g in fed.groupby("user"):
        print(f"  user {user} (mean mood {g['user_mean_mood'].iloc[0]:+.2f}):")
        for _, r in g.iterrows():
            print(
                f"    {r['rank']}. {r['activities']}: predicted {r['predicted_mood']:+.2f} ± {r['uncertainty']:.2f} "
                f"(gain {r['gain_over_mean']:+.2f}; {r['own_hours']} of your hours)"
            )
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
