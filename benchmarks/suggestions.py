"""Suggestion quality against the generator's truth: centralised, federated, personalised, popularity.

    python benchmarks/suggestions.py [hydra overrides]

Runs the mood comparison on the default generated data (50 users, 20 days; no downloads) and
measures, per user over the discretionary activity items they do (any time of day), precision@3
and NDCG@3 of each model's ranking against the true one and the true mood gain of following the
top suggestion, next to the oracle's and a popularity baseline's; then the same at 19:00 on a
weekday and 20:00 on a weekend day (the items the user does then). The last line is

    suggestions: central_p3=.. fed_p3=.. popularity_p3=.. central_gain=.. fed_gain=.. oracle_gain=..
    non_discretionary_share=..   (one line)
"""

from __future__ import annotations

import sys
import time

import pandas as pd

from fedmood.studies.mood import experiment as mood_experiment
from fedmood.studies.mood.run_config import compose_config
from fedmood.studies.mood.suggestion_quality import quality_summary

CONTEXTS = {"any time": (None, None), "19:00 weekday": (19, False), "20:00 weekend": (20, True)}


def main(overrides: list[str]) -> None:
    cfg = compose_config(["suggest_users=0", "suggest.hour=null", "suggest.weekend=null", *overrides])
    t0 = time.perf_counter()
    res = mood_experiment.run(cfg, out_dir=None, progress=False)
    print(f"trained both models in {time.perf_counter() - t0:.0f} s")
    tables = []
    for label, (hour, weekend) in CONTEXTS.items():
        context_cfg = {**cfg, "suggest": {**cfg["suggest"], "hour": hour, "weekend": weekend}}
        per_user = mood_experiment.suggestion_quality(context_cfg, res["devices"], res["central"], res["federated"])
        tables.append(quality_summary(per_user).assign(context=label))
    table = pd.concat(tables, ignore_index=True)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    s = table[table["context"] == "any time"].set_index("model")
    print(
        f"suggestions: central_p3={s.loc['centralised', 'p_at_k']:.3f} fed_p3={s.loc['federated', 'p_at_k']:.3f} "
        f"popularity_p3={s.loc['popularity', 'p_at_k']:.3f} central_gain={s.loc['centralised', 'gain']:.3f} "
        f"fed_gain={s.loc['federated', 'gain']:.3f} oracle_gain={s['oracle_gain'].max():.3f} "
        f"non_discretionary_share={s['non_discretionary'].max():.3f}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
