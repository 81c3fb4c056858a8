"""MetaMF's part of the report: the ΔMAE@β tables and figures of a β sweep, or one run's test errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fedmood.reporting import Section, experiment_of, figures_in, inside, markdown_table, read_config
from fedmood.studies.metamf.sweep import markdown_tables

STUDY = "MetaMF vs NoMetaMF under a privacy budget β (Lin et al.; Müllner et al.)"


def sections(folder: Path) -> list[Section]:
    """A β sweep (``beta_sweep.csv``) or a single MetaMF run (centralised or federated) in ``folder``."""
    folder = Path(folder)
    if (folder / "beta_sweep.csv").is_file():
        body = markdown_tables(pd.read_csv(folder / "beta_sweep.csv"))
        return [Section(STUDY, "ΔMAE@β", folder, body, figures_in(folder))]
    experiment = experiment_of(folder)
    if experiment in ("metamf", "metamf_federated") and (folder / "summary.csv").is_file():
        if inside(folder, "beta_sweep.csv"):
            return []
        cfg = read_config(folder)
        kind = "federated " if experiment == "metamf_federated" else ""
        title = f"{kind}{cfg.get('variant', '')} {cfg.get('dataset', '')} β={cfg.get('beta')}"
        body = markdown_table(pd.read_csv(folder / "summary.csv"), "{:.4f}")
        return [Section(STUDY, title.strip(), folder, body, figures_in(folder), cfg)]
    return []
