"""The personal-model study's part of the report: the crossovers and the accuracy curves."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from fedmood.reporting import Section, experiment_of, figures_in, read_config
from fedmood.studies.personal.experiment import crossovers_markdown

STUDY = "Personal model training (Servia-Rodriguez et al.)"


def sections(folder: Path) -> list[Section]:
    """A personal-model run in ``folder``: where Personal beats Shared and Local catches up."""
    folder = Path(folder)
    if experiment_of(folder) != "personal" or not (folder / "crossovers.csv").is_file():
        return []
    body = crossovers_markdown(pd.read_csv(folder / "crossovers.csv"))
    if (folder / "summary.json").is_file():
        summary = json.loads((folder / "summary.json").read_text())
        shown = {k: v for k, v in summary.items() if isinstance(v, float | int) and not isinstance(v, bool)}
        body += "\n" + ", ".join(f"{k} = {v:.3f}" if isinstance(v, float) else f"{k} = {v}" for k, v in shown.items())
        body += "\n"
    return [Section(STUDY, "Shared, Local and Personal models", folder, body, figures_in(folder), read_config(folder))]
