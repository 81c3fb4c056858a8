"""The anonymising autoencoder's part of the report: Table 2 next to the paper's."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fedmood.reporting import Section, experiment_of, figures_in, read_config
from fedmood.studies.aae.experiment import markdown_table

STUDY = "Anonymising autoencoder (Malekzadeh et al.)"


def sections(folder: Path) -> list[Section]:
    """Table 2 of an AAE run in ``folder`` (nothing for any other folder)."""
    folder = Path(folder)
    if experiment_of(folder) != "aae" or not (folder / "table2.csv").is_file():
        return []
    body = markdown_table(pd.read_csv(folder / "table2.csv"))
    figures = figures_in(folder, "table2", "windows_raw_vs_anonymised")
    return [Section(STUDY, "Table 2 on MotionSense", folder, body, figures, read_config(folder))]
