"""Figures of the anonymisation study: raw vs anonymised windows (paper Fig. 8) and 2-D embeddings (Fig. 7)."""

from __future__ import annotations

import numpy as np
import torch

from fedmood.studies.aae.evaluate import Protocol
from fedmood.studies.aae.model import Autoencoder
from fedmood.studies.aae.paper import LABELS, PAPER_TABLE2

ACTIVITY_NAMES = {"dws": "downstairs", "ups": "upstairs", "wlk": "walking", "jog": "jogging"}
CHANNELS = ("|rotationRate| (z)", "|acceleration| (z)")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def windows_figure(proto: Protocol, aae: Autoencoder, seed: int = 0):
    """One test-subject window per activity: raw and anonymised, both channels."""
    plt = _plt()
    test = proto.act_test
    rng = np.random.default_rng(seed)
    acts = test.activities
    fig, axes = plt.subplots(2, len(acts), figsize=(3.2 * len(acts), 4.6), sharex=True)
    for j, act in enumerate(acts):
        idx = rng.choice(np.flatnonzero(test.activity == j))
        raw = test.x[idx]
        anon = aae.transform(torch.as_tensor(raw[None]))[0].numpy()
        for c in range(2):
            ax = axes[c, j]
            ax.plot(raw[c], lw=1.0, label="raw")
            ax.plot(anon[c], lw=1.0, label="anonymised")
            if c == 0:
                ax.set_title(f"{ACTIVITY_NAMES.get(act, act)} (subject {test.subject[idx]})")
            if j == 0:
                ax.set_ylabel(CHANNELS[c])
    axes[0, 0].legend(fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("sample (50 Hz)")
    fig.tight_layout()
    return fig


def embedding_figure(proto: Protocol, aae: Autoencoder, seed: int = 0, n: int = 1500):
    """t-SNE of short-trial windows, raw and anonymised, coloured by user and by activity."""
    from sklearn.manifold import TSNE

    plt = _plt()
    test = proto.id_test
    idx = np.random.default_rng(seed).choice(len(test), size=min(n, len(test)), replace=False)
    raw = test.x[idx]
    anon = aae.transform(torch.as_tensor(raw)).numpy()
    fig, axes = plt.subplots(2, 2, figsize=(9, 8.5))
    for i, (name, x) in enumerate((("raw", raw), ("anonymised", anon))):
        xy = TSNE(2, init="pca", random_state=seed, perplexity=30).fit_transform(x.reshape(len(x), -1))
        for j, (label, colours, cmap) in enumerate(
            (("user", test.subject[idx], "tab20"), ("activity", test.activity[idx], "tab10"))
        ):
            ax = axes[i, j]
            ax.scatter(xy[:, 0], xy[:, 1], c=colours, cmap=cmap, s=4)
            ax.set_title(f"{name} windows, coloured by {label}")
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return fig


def table2_figure(table):
    """Table 2 as a figure: activity F1 (the utility kept) and identity accuracy (what an attacker
    still learns) per method, ours as bars (± sd over seeds), the paper's as black stars."""
    from fedmood.plotstyle import PAPER_POINT, colour, figure, finish

    fig, (left, right) = figure(2, width=5.4)
    methods = list(table["method"])
    x = np.arange(len(methods))
    colours = [colour(m) for m in methods]
    paper = [PAPER_TABLE2.get(m.replace("_federated", ""), (np.nan,) * 3) for m in methods]
    left.bar(x, table["act_f1"], yerr=table.get("act_f1_sd"), color=colours, capsize=3)
    left.plot(x, [p[0] for p in paper], **PAPER_POINT, label="paper")
    right.bar(x, table["id_acc"], color=colours)
    right.plot(x, [p[1] for p in paper], **PAPER_POINT, label="paper")
    right.axhline(100 / 24, color="grey", ls="--", lw=1, label="chance (1/24)")
    finish(left, "", "activity macro-F1 (%)", "Utility kept")
    finish(right, "", "identity accuracy (%)", "What an attacker still learns")
    for ax in (left, right):
        ax.set_xticks(x, [LABELS.get(m, m) for m in methods], rotation=35, ha="right", fontsize=8)
        ax.set_ylim(0, 100)
    fig.tight_layout()
    return fig
