"""The topic-model study end to end on a tiny corpus of three clear topics, and its config checks."""

import json

import numpy as np
import pytest

from fedmood.errors import InputError
from fedmood.studies.topics.experiment import check_config, run


def _corpus(folder, seed=0):
    rng = np.random.default_rng(seed)
    words = [[f"w{i}" for i in range(t * 6, t * 6 + 6)] for t in range(3)]
    folder.mkdir()
    for name, n in (("nips.train", 60), ("nips.test", 40)):
        lines = [" ".join(rng.choice(words[d % 3], 30)) for d in range(n)]
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


def _cfg(data, out):
    return {
        "experiment": "topics", "seed": 1, "data_path": str(data), "results_root": str(out), "min_count": 1,
        "lda": {"n_topics": None, "k_grid": [2, 3], "alpha": 0.1, "eta": 0.01},
        "shared": {"iterations": 30},  # seed 0 sticks in a local optimum (measured), seed 1 does not
        "protocol": {"seeds": 2, "iterations": 10, "user_docs": 20, "local_docs": [5, 20]},
        "fractions": [0.5, 1.0],
        "federated": {"users": 2, "num_rounds": 3, "local_iterations": 2},
        "cost": {"docs": [10, 20]},
    }  # fmt: skip


@pytest.mark.flower
def test_the_study_on_three_clear_topics(tmp_path):
    out = tmp_path / "run"
    summary = run(_cfg(_corpus(tmp_path / "nips"), tmp_path), out, progress=False)
    assert summary["k"] == 3  # chosen by held-out perplexity
    assert summary["personal_ll_it1"] > summary["local_ll_it1"]  # starting from M_S helps at first
    assert summary["heldout_ppl_personal"] == pytest.approx(6, rel=0.2)  # six words per topic
    for name in ("k_selection.csv", "curves.csv", "fractions.csv", "heldout.csv", "federated.csv", "cost.csv",
                 "summary.json", "figures/fig4_curves.png", "figures/fig5_fractions.png"):  # fmt: skip
        assert (out / name).is_file(), name
    assert json.loads((out / "summary.json").read_text())["k"] == 3


def test_bad_values_are_refused_by_name_before_any_work(tmp_path):
    cfg = _cfg(tmp_path / "nowhere", tmp_path)
    cfg["protocol"] = dict(cfg["protocol"], iterations=5, local_docs=[5, 50])
    cfg["lda"] = dict(cfg["lda"], k_grid=[1])
    with pytest.raises(InputError) as err:
        check_config(cfg)
    for key in ("protocol.iterations", "protocol.local_docs", "lda.k_grid", "data_path"):
        assert key in str(err.value), key
