"""The threat study's sweep: one ``attacks.csv`` and one figure for mechanism x ε x clients per round.

:class:`CollectAttackSweep` (a Hydra callback) gathers every run's ``attacks.csv`` when the multirun
ends; ``python -m fedmood.threat_study.sweep <sweep folder>`` collects again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fedmood.plotstyle import colour, figure, finish
from fedmood.results import CollectSweep, ResultsWriter, collect_main, run_summaries
from fedmood.threat_study.experiment import COLUMNS


def collect(sweep_dir: str | Path) -> pd.DataFrame:
    """Every run's attack rows in ``sweep_dir``, written there with the figure."""
    table = run_summaries(sweep_dir, "attacks")
    table = table[COLUMNS + [c for c in table.columns if c not in COLUMNS]]
    order = ["mechanism", "clients_per_round", "epsilon", "observer", "attack"]
    table = table.sort_values(order).reset_index(drop=True)
    writer = ResultsWriter(sweep_dir)
    writer.table("attacks", table)
    writer.figure("attacks", attacks_figure(table))
    return table


def _label(mechanism: str, per_round: float, n_max: float) -> str:
    return mechanism + ("" if per_round >= n_max else f", {per_round:g}/round")


def attacks_figure(table: pd.DataFrame):
    """Three panels against ε: the server's attack AUC (within-item), the audit's ε lower bound next to
    the accountant's, and validation MSE; runs without DP as horizontal lines."""
    server = table[table["observer"] == "server"]
    n_max = float(server["clients_per_round"].max())
    fig, axes = figure(3, width=5.0, height=4.4)
    dp = server[np.isfinite(server["epsilon"].astype(float))]
    for (mech, per_round), g in dp.groupby(["mechanism", "clients_per_round"]):
        g = g.sort_values("epsilon")
        label = _label(mech, per_round, n_max)
        line = axes[0].errorbar(
            g["epsilon"],
            g["auc_within"],
            yerr=[g["auc_within"] - g["auc_within_low"], g["auc_within_high"] - g["auc_within"]],
            marker="o" if per_round == n_max else "s",
            capsize=3,
            color=colour(mech),
            label=label,
        )
        color = line[0].get_color()
        axes[1].plot(g["epsilon"], g["epsilon_lower"], marker="o", color=color, label=f"{label}: audit lower bound")
        axes[2].plot(g["epsilon"], g["val_mse"], marker="o", color=color, label=label)
    for (mech, per_round), g in server[~np.isfinite(server["epsilon"].astype(float))].groupby(
        ["mechanism", "clients_per_round"]
    ):
        label = _label(mech, per_round, n_max)
        style = {"none": "-", "secagg": "--"}.get(mech, ":")
        axes[0].axhline(float(g["auc_within"].iloc[0]), color="black", ls=style, lw=1, label=f"{label} (no DP)")
        axes[2].axhline(float(g["val_mse"].iloc[0]), color="black", ls=style, lw=1, label=f"{label} (no DP)")
    if len(dp):
        eps = np.sort(dp["epsilon"].unique())
        axes[1].plot(eps, eps, color="grey", lw=1, ls="--", label="accountant's ε")
    axes[0].axhline(0.5, color="grey", lw=0.8)
    ylabels = ("server's attack: within-item AUC (95 % CI)", "ε lower bound from a one-run audit", "validation MSE")
    for ax, ylabel in zip(axes, ylabels, strict=True):
        ax.set_xscale("log")
        finish(ax, "ε (accountant, δ = 1e-5)", ylabel, fontsize=7)
    fig.suptitle("What the server learns of a user's preferences, and what it costs to stop it")
    fig.tight_layout()
    return fig


class CollectAttackSweep(CollectSweep):
    """Hydra callback: collect the sweep's attacks table and figure when the multirun ends."""

    collect = staticmethod(collect)
    columns = ("mechanism", "clients_per_round", "epsilon", "observer", "attack", "auc_within", "epsilon_lower")
    float_format = "{:.3f}"


if __name__ == "__main__":
    collect_main(collect, "fedmood.threat_study.sweep")
