"""Shared fixtures: a small generated data set and a small experiment config."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from flwr.app import Context, Message, Metadata, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from fedmood.paths import PROJECT_ROOT
from fedmood.studies.mood.data.generator import GeneratorConfig, write_day_logs
from fedmood.studies.mood.device import node_context
from fedmood.studies.mood.run_config import compose_config

SMALL = GeneratorConfig(n_users=6, n_days=4, seed=11)


@pytest.fixture(scope="session")
def small_logs(tmp_path_factory):
    """6 users x 4 days of generated logs."""
    return write_day_logs(SMALL, tmp_path_factory.mktemp("logs") / "small")


@pytest.fixture
def small_cfg(small_logs, tmp_path):
    """The experiment config on the small logs, 3 clusters, 3 epochs/rounds."""
    return compose_config(
        [
            "data=logs",
            f"data.logs_dir={small_logs}",
            "data.n_clusters=4",
            "training.epochs=3",
            f"results_root={tmp_path}/results",
            "suggest_users=2",
        ]
    )


def logs_config(logs, results, *overrides: str, config_name: str = "mood") -> dict:
    """An experiment config on the day logs in ``logs``, results under ``results``, plus ``overrides``."""
    return compose_config(
        ["data=logs", f"data.logs_dir={logs}", f"results_root={results}", *overrides], config_name=config_name
    )


@pytest.fixture
def server_identity(monkeypatch):
    """The task identity Flower's ServerApp runtime sets, so a strategy's ``configure_train`` can
    build its messages outside a run."""
    for key, value in (("_task_id", 1), ("_run_id", 1), ("_node_id", 1)):
        monkeypatch.setattr(TaskIdentity, key, value)


def make_message(content: RecordDict, message_type: str, dst: int = 1) -> Message:
    """An instruction Message built outside a run (public API only)."""
    md = Metadata(
        run_id=1,
        message_id="",
        src_node_id=0,
        dst_node_id=dst,
        reply_to_message_id="",
        group_id="",
        created_at=time.time(),
        ttl=3600,
        message_type=message_type,
    )
    return Message(content, metadata=md)


def make_context(partition_id: int, n: int) -> Context:
    """A node Context as the simulation engine would build it."""
    return node_context(partition_id, n)


def run_experiment(script: str, *overrides: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``experiments/<script>.py`` with Hydra overrides in a fresh interpreter; fail with its stderr."""
    cmd = [sys.executable, str(PROJECT_ROOT / "experiments" / f"{script}.py"), *overrides]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=PROJECT_ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


#: Four activity-item centres for small hand-built fragments.
CENTRES = np.array([[0] * 6, [1] * 6, [3] * 6, [4] * 6])


def with_privacy(cfg, **privacy):
    """``cfg`` with a privacy preset (``preset=``) and fields (``section__field=value``) set."""
    from fedmood.studies.mood.run_config import compose_config

    base = compose_config([f"privacy={privacy.pop('preset', 'none')}"])["privacy"]
    for key, val in privacy.items():
        section, _, field = key.partition("__")
        if field:
            base[section] = dict(base[section], **{field: val})
        else:
            base[section] = val
    return dict(cfg, privacy=base)
