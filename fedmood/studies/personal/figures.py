"""The personal-model paper's figure: accuracy against the device's number of windows n."""

from __future__ import annotations

import numpy as np
import pandas as pd

STYLE = {"local": ("Local", "tab:orange"), "personal": ("Personal", "tab:blue"), "shared": ("Shared", "tab:gray")}


def accuracy_figure(curve: pd.DataFrame, k: int, federated: pd.DataFrame | None = None):
    """Shared (k users) as a flat line, Local and Personal as curves; mean over users with a ±1 sd band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ns = sorted(curve.loc[curve.model != "shared", "n"].unique())
    for model in ("local", "personal"):
        c = curve[(curve.model == model) & (curve.k == (0 if model == "local" else k))].sort_values("n")
        label, colour = STYLE[model]
        ax.plot(c.n, c.accuracy_mean, marker="o", ms=3, color=colour, label=label)
        sd = c.accuracy_std.fillna(0.0)
        ax.fill_between(c.n, c.accuracy_mean - sd, c.accuracy_mean + sd, color=colour, alpha=0.15)
    shared = curve[(curve.model == "shared") & (curve.k == k)]
    if len(shared):
        label, colour = STYLE["shared"]
        m, s = float(shared.accuracy_mean.iloc[0]), float(np.nan_to_num(shared.accuracy_std.iloc[0]))
        ax.axhline(m, color=colour, ls="--", label=f"{label} ({k} users)")
        ax.axhspan(m - s, m + s, color=colour, alpha=0.1)
    if federated is not None and len(federated):
        f = federated.sort_values("n")
        ax.plot(f.n, f.accuracy_mean, marker="s", ms=3, color="tab:green", label="Personal (federated Shared)")
    ax.set_xscale("log")
    ax.set_xticks(ns, [str(n) for n in ns], fontsize=8)
    ax.set_xlabel("windows on the device (n)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(max(0.0, float(np.nanmin(curve.accuracy_mean)) - 10), 100)
    ax.set_title("Personal model training on MotionSense (mean over users)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return fig
