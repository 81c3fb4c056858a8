"""The topic-model study end to end on a tiny corpus of three clear topics, and its config checks."""

import json

import numpy as np
import pytest

from fedmood.errors import InputError
from fedmood.studies.topics.corpus import Vocabulary
from fedmood.studies.topics.experiment import check_config, run, user_documents


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
        "federated": {"users": 2, "num_rounds": 3, "local_iterations": 2, "secure": False},
        "cost": {"docs": [10, 20]},
        "wikipedia": {"enabled": False, "seeds": 1, "shared_docs": 1000, "heldout_docs": 500, "user_docs": 500,
                      "min_user_docs": 200},
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
    cfg["user_path"] = str(tmp_path / "my-texts")
    cfg["wikipedia"] = dict(cfg["wikipedia"], enabled="yes", min_user_docs=600)
    cfg["federated"] = dict(cfg["federated"], secure=True)  # two devices
    with pytest.raises(InputError) as err:
        check_config(cfg)
    for key in ("protocol.iterations", "protocol.local_docs", "lda.k_grid", "data_path", "user_path",
                "wikipedia.enabled", "wikipedia.min_user_docs", "federated.secure"):  # fmt: skip
        assert key in str(err.value), key


def test_a_users_own_folder_is_their_documents_every_fifth_held_out(tmp_path):
    vocab = Vocabulary(["river", "stone", "cloud"])
    folder = tmp_path / "texts"
    folder.mkdir()
    for i in range(10):
        (folder / f"{i:02d}.txt").write_text(f"The river and the stone {i}; clouds. cloud {'river ' * i}")
    user, held_out, source = user_documents({"user_path": str(folder)}, [], "", vocab)
    assert (len(user), len(held_out), source) == (8, 2, str(folder))
    assert list(held_out[0]) == [0, 1, 2] + [0] * 4  # document 04: "clouds" is not "cloud"
    assert all(d.dtype == np.intc for d in user + held_out)


def test_a_users_folder_without_the_shared_words_is_refused_naming_it(tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    for i in range(6):
        (folder / f"{i}.txt").write_text("completely unrelated words" if i else "river")
    with pytest.raises(InputError, match=r"texts: 1 of its 6 documents share words .* at least 5"):
        user_documents({"user_path": str(folder)}, [], "", Vocabulary(["river"]))
