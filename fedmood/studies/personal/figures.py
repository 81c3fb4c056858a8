"""The personal-model paper's figure: accuracy against the device's number of windows n."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fedmood.plotstyle import PAPER_LINE, colour, figure, finish

#: Where the paper (Servia-Rodriguez et al., Fig. 3) finds Personal overtaking Shared.
PAPER_PERSONAL_BEATS_SHARED_N = 20

STYLE = {"local": ("Local", colour("local")), "personal": ("Personal", colour("personal")),
         "shared": ("Shared", colour("shared"))}  # fmt: skip


def accuracy_figure(curve: pd.DataFrame, k: int, federated: pd.DataFrame | None = None):
    """Shared (k users) as a flat line, Local and Personal as curves; mean over users with a ±1 sd band."""
    fig, ax = figure()
    ns = sorted(curve.loc[curve.model != "shared", "n"].unique())
    for model in ("local", "personal"):
        c = curve[(curve.model == model) & (curve.k == (0 if model == "local" else k))].sort_values("n")
        label, hue = STYLE[model]
        ax.plot(c.n, c.accuracy_mean, marker="o", ms=3, color=hue, label=label)
        sd = c.accuracy_std.fillna(0.0)
        ax.fill_between(c.n, c.accuracy_mean - sd, c.accuracy_mean + sd, color=hue, alpha=0.15)
    shared = curve[(curve.model == "shared") & (curve.k == k)]
    if len(shared):
        label, hue = STYLE["shared"]
        m, s = float(shared.accuracy_mean.iloc[0]), float(np.nan_to_num(shared.accuracy_std.iloc[0]))
        ax.axhline(m, color=hue, ls="--", label=f"{label} ({k} users)")
        ax.axhspan(m - s, m + s, color=hue, alpha=0.1)
    if federated is not None and len(federated):
        f = federated.sort_values("n")
        ax.plot(f.n, f.accuracy_mean, marker="s", ms=3, color=colour("federated_personal"),
                label="Personal (federated Shared)")
    ax.axvline(PAPER_PERSONAL_BEATS_SHARED_N, **PAPER_LINE, label="paper: Personal beats Shared from n ≈ 20")
    ax.set_xscale("log")
    ax.set_xticks(ns, [str(n) for n in ns], fontsize=8)
    ax.set_ylim(max(0.0, float(np.nanmin(curve.accuracy_mean)) - 10), 100)
    title = "Personal model training on MotionSense (mean over users)"
    finish(ax, "windows on the device (n)", "test accuracy (%)", title, legend=False)
    ax.legend(loc="lower right", fontsize=8)
    return fig
