"""`python -m fedmood.report`: every study it finds, sweeps once, a clear error on a folder with none."""

import json
import subprocess
import sys

import pandas as pd
import yaml

from fedmood.paths import PROJECT_ROOT
from fedmood.report import main
from fedmood.results import ResultsWriter


def _run(folder, experiment, **config):
    writer = ResultsWriter(folder)
    writer.config({"experiment": experiment, "seed": 1, **config})
    return writer


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    return fig


def _every_study(root):
    mood = _run(root / "mood" / "run1", "mood", privacy={"mechanism": "none"}, federation={"num_rounds": 50})
    mood.table("summary", pd.DataFrame({"model": ["centralised", "federated"], "train_mse": [0.159, 0.175],
                                        "val_mse": [0.160, 0.171], "sec_per_epoch": [0.11, 0.23]}))  # fmt: skip
    mood.json("comparison", {"val_mse_ratio": 1.07, "cluster_ari": 0.98})
    mood.figure("mse_both", _figure())
    sweep = root / "privacy_utility" / "multirun" / "s1"
    point = {"mechanism": "central_dp", "noise_multiplier": 1.1, "epsilon": 2.0, "delta": 1e-5, "val_mse": 0.2,
             "sec_per_round": 0.3}  # fmt: skip
    ResultsWriter(sweep).table("privacy_utility", pd.DataFrame([point]))
    one = _run(sweep / "0", "privacy_utility")  # a run of the sweep: reported by the sweep's table only
    one.table("summary", pd.DataFrame({"mechanism": ["central_dp"], "val_mse": [0.2]}))
    _run(root / "metamf" / "r", "metamf").table(
        "beta_sweep",
        pd.DataFrame([{"dataset": "ml", "model": "metamf", "group": g, "beta": b, "delta_mae": 1.0 + b / 10, "mae": 0.7}
                      for g in ("All", "Low", "Med", "High") for b in (1.0, 0.5)]),
    )  # fmt: skip
    _run(root / "aae" / "quick-1", "aae").table(
        "table2", pd.DataFrame({"method": ["raw", "aae"], "act_f1": [92.0, 91.0], "act_f1_sd": [0.5, 0.6],
                                "id_acc": [96.0, 7.0], "id_f1": [95.0, 2.0]})
    )
    _run(root / "personal" / "quick-1", "personal").table(
        "crossovers", pd.DataFrame({"k": [23], "shared_acc": [0.8], "crossover_personal": [10.0],
                                    "crossover_local": [float("nan")]})
    )
    ResultsWriter(root / "privacy_attacks" / "sweep").table(
        "attacks",
        pd.DataFrame({"mechanism": ["none", "secagg"], "attack": ["client_update"] * 2, "auc_within": [0.96, 0.5]}),
    )


def test_the_report_has_every_study_with_the_papers_numbers_and_each_sweep_once(tmp_path, capsys):
    _every_study(tmp_path / "results")
    assert main([str(tmp_path / "results")]) == 0
    report = (tmp_path / "results" / "report" / "report.md").read_text()
    for heading in ("Mood recommender", "Privacy-utility sweep", "Privacy against the server", "MetaMF",
                    "Anonymising autoencoder", "Personal model training"):  # fmt: skip
        assert f"{heading}" in report, heading
    assert "| centralised | 0.1590 | 0.0469 | 0.1600 | 0.0534 |" in report  # ours next to the paper's Table I
    assert "| Raw data | 92.00 ± 0.50 | 92.51 |" in report  # Table 2 next to the paper's
    assert "A federated run" not in report  # the sweep's own run is in the sweep's table
    assert "rounds=50" in report and "privacy=none" in report
    figures = list((tmp_path / "results" / "report" / "figures").glob("*.png"))
    assert len(figures) == 1 and f"](figures/{figures[0].name})" in report
    assert main([str(tmp_path / "results")]) == 0  # again: its own report folder is not a study
    assert "6 section(s) from 5 study(ies)" in capsys.readouterr().out.splitlines()[-1]
    assert yaml.safe_load((tmp_path / "results" / "mood" / "run1" / "config.yaml").read_text())["seed"] == 1


def test_a_folder_without_results_fails_with_one_clear_line(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "notes.json").write_text(json.dumps({"x": 1}))
    for args, message in (
        ([str(tmp_path / "empty")], "no study results in"),
        ([str(tmp_path / "nowhere")], "not a folder"),
    ):
        done = subprocess.run([sys.executable, "-m", "fedmood.report", *args], capture_output=True, text=True,
                              cwd=PROJECT_ROOT, timeout=120)  # fmt: skip
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert done.stderr.startswith("error: ") and message in done.stderr and len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "empty" / "report").exists()
