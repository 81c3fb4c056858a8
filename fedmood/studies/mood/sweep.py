"""The privacy-utility sweep: skip duplicate runs, collect one table and one figure.

A Hydra multirun crosses mechanism x noise level; mechanisms without noise (``none``,
``secagg``) run once (:func:`claim_run` lets the first of them through), the others once per
level. :class:`CollectPrivacySweep` (a Hydra callback) gathers every run's ``summary.csv`` at the
end into ``privacy_utility.csv`` and ``figures/privacy_utility.png`` in the sweep folder; run
``python -m fedmood.studies.mood.sweep <sweep folder>`` to collect again (e.g. after resuming).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from fedmood.plotstyle import colour, figure, finish
from fedmood.results import CollectSweep, ResultsWriter, collect_main, run_summaries

COLUMNS = ["mechanism", "noise_multiplier", "epsilon", "delta", "val_mse", "sec_per_round"]


def claim_run(sweep_dir: str | Path, key: str) -> bool:
    """True the first time ``key`` is claimed in ``sweep_dir`` (atomic marker file)."""
    marker = Path(sweep_dir) / f".claimed-{key}"
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


def collect(sweep_dir: str | Path) -> pd.DataFrame:
    """One table of every run's summary in ``sweep_dir`` (and the figure), written there."""
    table = run_summaries(sweep_dir)
    table = table[COLUMNS + [c for c in table.columns if c not in COLUMNS]]
    table = table.sort_values(["mechanism", "epsilon"]).reset_index(drop=True)
    writer = ResultsWriter(sweep_dir)
    writer.table("privacy_utility", table)
    writer.figure("privacy_utility", privacy_utility_figure(table))
    return table


def privacy_utility_figure(table: pd.DataFrame):
    """Validation MSE against ε, one line per DP mechanism; runs without DP as horizontal lines."""
    fig, ax = figure(width=6.5)
    dp = table[np.isfinite(table["epsilon"].astype(float))]
    markers = iter(["o", "s", "^", "D", "v", "x"])
    for i, (mech, g) in enumerate(dp.groupby("mechanism")):
        g = g.sort_values("epsilon")
        level = g["dp_level"].iloc[0]
        ax.plot(
            g["epsilon"],
            g["val_mse"],
            marker=next(markers, "o"),
            ls=["-", "--", ":", "-."][i % 4],
            markerfacecolor="none" if i % 2 else None,
            color=colour(mech),
            label=f"{mech} ({level}-level ε)",
        )
    for mech, g in table[~np.isfinite(table["epsilon"].astype(float))].groupby("mechanism"):
        ls = {"none": "-", "secagg": "--"}.get(mech, ":")
        ax.axhline(float(g["val_mse"].iloc[0]), color=colour(mech), ls=ls, lw=1, label=f"{mech} (no DP)")
    ax.set_xscale("log")
    eps = sorted(dp["epsilon"].round(2).unique())
    if eps:
        ax.set_xticks(eps, [f"{e:g}" for e in eps])
        ax.minorticks_off()
    finish(ax, "ε spent over the run (δ = min(1/N^1.1, 1e-5))", "validation MSE (mood scale -1..+1)",
           "Federated mood recommender: privacy vs utility")  # fmt: skip
    fig.tight_layout()
    return fig


class CollectPrivacySweep(CollectSweep):
    """Hydra callback: collect the sweep's table and figure when the multirun ends."""

    collect = staticmethod(collect)
    columns = ("mechanism", "noise_multiplier", "epsilon", "delta", "val_mse", "sec_per_round")
    float_format = "{:.4g}"


if __name__ == "__main__":
    collect_main(collect, "fedmood.studies.mood.sweep")
