"""A ServerApp killed after a round, resumed from its checkpoint, ends where an uninterrupted run ends.

Devices keep their own parameters in their encrypted stores (``federation.stores``), so what
survives the crash is exactly what survives it in a deployment: the checkpoint file and the stores.
"""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import fedmood.studies.mood.server_app as server_app
from fedmood.paths import PROJECT_ROOT
from fedmood.studies.mood.data.device_store import provision_devices
from fedmood.studies.mood.run import run_federated_simulation
from fedmood.studies.mood.run_config import compose_config

pytestmark = pytest.mark.flower


class Killed(Exception):
    """Stands for the ServerApp process dying right after it wrote a checkpoint."""


def test_resumed_run_equals_uninterrupted_run(small_logs, tmp_path, monkeypatch):
    provision_devices(tmp_path / "nodes", small_logs)

    def cfg(name: str, resume: bool = False) -> dict:
        return compose_config(
            [
                "data=logs",
                f"data.logs_dir={small_logs}",
                "data.n_clusters=4",
                "training.epochs=4",
                "personalise.enabled=false",
                "suggest_users=0",
                f"federation.stores={tmp_path / 'nodes'}",
                f"federation.checkpoint={tmp_path / name}",
                f"federation.resume={str(resume).lower()}",
                f"results_root={tmp_path / 'results'}",
            ]
        )

    whole = run_federated_simulation(cfg("whole.npz"))

    real_save = server_app.save_checkpoint

    def save_then_die(path, ckpt):
        real_save(path, ckpt)
        if ckpt.round == 2:
            raise Killed(f"killed after round {ckpt.round}")

    monkeypatch.setattr(server_app, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        run_federated_simulation(cfg("killed.npz"))
    monkeypatch.setattr(server_app, "save_checkpoint", real_save)
    assert (tmp_path / "killed.npz").is_file()

    resumed = run_federated_simulation(cfg("killed.npz", resume=True))
    assert resumed.resumed_from == 2 and whole.resumed_from == 0
    np.testing.assert_array_equal(resumed.centres, whole.centres)
    for key, value in whole.item_state.items():
        np.testing.assert_allclose(resumed.item_state[key], value, rtol=0, atol=1e-6)
    a, b = pd.DataFrame(whole.rounds), pd.DataFrame(resumed.rounds)
    for col in ("round", "train_mse", "val_mse", "clients"):
        np.testing.assert_allclose(b[col], a[col], rtol=1e-5, err_msg=col)
    # without the devices' stored state the resumed run could not match: their factors would restart
    assert any(
        n.startswith("user-state.") for n in (tmp_path / "nodes" / "node-0" / "store").iterdir() for n in [n.name]
    )
    # the devices kept the model the run ended with: the phone suggests from its own store
    store = tmp_path / "nodes" / "node-0" / "store"
    done = subprocess.run(
        [sys.executable, "-m", "fedmood.studies.mood.suggest", "--store", str(store), "--hour", "19", "--weekday"],
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Suggestions for 19:00 on a weekday") and 1 <= len(lines) - 1 <= 3
    assert all("±" in line and "of your hours" in line for line in lines[1:])
    empty = tmp_path / "nodes" / "none"
    empty.mkdir()
    done = subprocess.run([sys.executable, "-m", "fedmood.studies.mood.suggest", "--store", str(empty)],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr and "none" in done.stderr
