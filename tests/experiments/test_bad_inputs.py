"""Bad input is refused before any work, with every problem named at once; nothing is left behind.

In-process checks of the validators (fast), a property-style fuzz of the two readers, and a few
entry points run as a user runs them (exit code, message, no traceback, no leftovers, Ctrl-C).
``benchmarks/bad_inputs.py`` runs the full list of cases the same way.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedmood.data.ratings import RatingsFormatError, check_rating_range, check_rows_per_user, read_ratings_table
from fedmood.errors import InputError
from fedmood.paths import PROJECT_ROOT
from fedmood.results import FAILED, run_summaries
from fedmood.studies.mood.data.logs import LogFormatError, check_logs_folder, parse_day_log, read_user_logs
from fedmood.studies.mood.run_config import compose_config
from fedmood.studies.mood.validation import check_data

# ----------------------------------------------------------------------------- config values


def test_every_bad_config_value_is_named_in_one_error(tmp_path):
    overrides = [
        "training.epochs=0",
        "training.batch_size=0",
        "data.n_clusters=0",
        "federation.clients_per_round=0",
        "data.val_frac=1.0",
        "model.y_range=[1,0]",
        f"results_root={tmp_path}",
    ]
    with pytest.raises(InputError) as err:
        compose_config(overrides)
    keys = [p.where for p in err.value.problems]
    for key in ("training.epochs", "training.batch_size", "data.n_clusters", "federation.clients_per_round",
                "data.val_frac", "model.y_range"):  # fmt: skip
        assert f"config key {key}" in keys
    assert "must be >= 1, got 0" in str(err.value)


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["federation.clients_per_round=7"], "federation.clients_per_round"),  # 6 users
        (["privacy=secagg", "privacy.secagg.clipping_range=0.0001"], "secagg.clipping_range"),
        (["privacy=dpsgd", "privacy.target_epsilon=-1"], "target_epsilon"),
    ],
)
def test_config_against_the_data(small_logs, tmp_path, overrides, key):
    with pytest.raises(InputError, match=key.replace(".", r"\.")):
        check_data(compose_config(["data=logs", f"data.logs_dir={small_logs}", f"results_root={tmp_path}", *overrides]))


def test_a_data_source_without_its_path_is_named(tmp_path):
    with pytest.raises(InputError, match=r"config key data\.logs_dir: data=logs needs"):
        compose_config(["data=logs", f"results_root={tmp_path}"])
    with pytest.raises(InputError, match="is a folder, expected a file"):
        compose_config(["data=ratings", f"data.ratings_path={tmp_path}", f"results_root={tmp_path}"])


# ----------------------------------------------------------------------------- day logs


def _copy(small_logs: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(small_logs, tmp_path / "logs"))


def _edit(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _first(folder: Path, k: int = 0) -> Path:
    return sorted(folder.glob("*.json"))[k]


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda d: d["calls"][0].update(duration_s=-5), "calls[0].duration_s"),
        (lambda d: d["locations"][0].update(lat=500.0), "locations[0].lat"),
        (lambda d: d["locations"][0].update(lon=-181), "locations[0].lon"),
        (lambda d: d["apps"][0].update(start=d["apps"][0]["end"], end=d["apps"][0]["start"]), "apps[0].end"),
        (lambda d: d["hours"][3].update(mood=float("nan")), "hours[3].mood"),
        (lambda d: d.update(user_id="someone-else"), "user_id"),
    ],
)
def test_day_log_values_are_checked(small_logs, tmp_path, change, field):
    logs = _copy(small_logs, tmp_path)
    _edit(_first(logs / "user0002", 1), change)
    with pytest.raises(LogFormatError, match=rf"user0002/.*field '{re.escape(field)}'"):
        read_user_logs(logs / "user0002")


def test_every_bad_file_is_reported_at_once(small_logs, tmp_path):
    logs = _copy(small_logs, tmp_path)
    _edit(_first(logs / "user0001"), lambda d: d["hours"][2].update(mood=3))
    _edit(_first(logs / "user0004", 2), lambda d: d.update(user_id="user0001"))  # one user in two folders
    shutil.copy(_first(logs / "user0005"), logs / "user0005" / "again.json")  # a date twice
    (logs / "user0003" / "2027-01-01.json").mkdir()  # a .json that is a folder
    with pytest.raises(InputError) as err:
        check_logs_folder(logs)
    text = str(err.value)
    assert text.startswith("4 problems:")
    assert "user0001/" in text and "hours[2].mood" in text
    assert "field 'user_id': 'user0001' differs from its folder's name 'user0004'" in text
    assert "field 'date'" in text and "2027-01-01.json" in text


# ----------------------------------------------------------------------------- ratings


def test_ratings_reader_names_every_bad_line(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\na,x,1\na,y,oops\nb,x,inf\nb,z\na,x,2\nb,y,0.5\nc,x,1\n")
    with pytest.raises(RatingsFormatError) as err:
        read_ratings_table(path)
    where = [p.where for p in err.value.problems]
    assert where == [f"{path}: line 3: field 'rating'", f"{path}: line 4: field 'rating'", f"{path}: line 5",
                     f"{path}: line 6"]  # fmt: skip
    assert "already on line 2" in str(err.value)


def test_a_user_needs_two_rows_and_the_scale_must_fit_the_model(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("a,x,1\na,y,5\nb,x,3\n")
    table = read_ratings_table(path)
    with pytest.raises(RatingsFormatError, match=r"line 3: user 'b' has 1 rating\(s\), needs 2\+"):
        check_rows_per_user(table, path)
    with pytest.raises(InputError, match=r"ratings span \[1, 5\].*set model\.y_range='\[0\.6,5\.4\]'"):
        check_rating_range(table["rating"].to_numpy(), (-1.5, 1.5), str(path), "model.y_range")
    check_rating_range(np.array([-1.0, 1.0]), (-1.5, 1.5), str(path), "model.y_range")


def test_a_non_utf8_ratings_file_is_named_with_its_line(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("user,item,rating\nu,caf\xe9,1\n".encode("latin-1"))
    with pytest.raises(RatingsFormatError, match=r"latin\.csv: line 2: not UTF-8"):
        read_ratings_table(path)


# ----------------------------------------------------------------------------- fuzz


@pytest.fixture(scope="module")
def one_log(small_logs):
    return json.loads(_first(small_logs / "user0000").read_text())


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_PATHS = ["user_id", "date", "slot_minutes", "apps", "hours", "calls", "locations", "format"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_day_logs_raise_only_the_named_error(one_log, data):
    doc = json.loads(json.dumps(one_log))
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from(_PATHS))
        target = doc
        if isinstance(doc.get(key), list) and doc[key] and data.draw(st.booleans()):
            target, key = doc[key], data.draw(st.integers(0, len(doc[key]) - 1))
            if isinstance(target[key], dict) and target[key] and data.draw(st.booleans()):
                target, key = target[key], data.draw(st.sampled_from(sorted(target[key])))
        if data.draw(st.booleans()) and isinstance(target, dict):
            target.pop(key, None)
        else:
            target[key] = data.draw(_JSON)
    try:
        parse_day_log("fuzzed.json", doc)
    except LogFormatError as err:
        assert "fuzzed.json: field '" in str(err)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("ab,\t:\n 0123456789.-eEinfNa")), max_size=80))
def test_fuzzed_ratings_files_raise_only_the_named_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "r.csv"
    path.write_text(text)
    try:
        table = read_ratings_table(path)
    except RatingsFormatError as err:
        assert str(path) in str(err)
    else:
        assert np.isfinite(table["rating"]).all() and not table.duplicated(["user", "item"]).any()


# ----------------------------------------------------------------------------- as a user runs them


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "", "FEDMOOD_DEBUG": ""}
    return subprocess.run([sys.executable, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, **kw)


def test_bad_config_exits_2_with_one_message_and_leaves_nothing(tmp_path):
    t0 = time.perf_counter()
    out = _run(["experiments/mood.py", f"results_root={tmp_path}", "training.epochs=0", "data.n_clusters=0"])
    assert out.returncode == 2
    assert "Traceback" not in out.stdout + out.stderr
    assert "config key training.epochs: must be >= 1, got 0" in out.stderr and "data.n_clusters" in out.stderr
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # the run folder is gone
    assert time.perf_counter() - t0 < 30


def test_deploy_refuses_bad_options_before_provisioning(tmp_path):
    out = _run(["-m", "fedmood.deploy", "run", "--rounds", "0", "--nodes", "0", "--root", str(tmp_path / "fed")])
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "option --rounds: must be >= 1, got 0" in out.stderr and "option --nodes" in out.stderr
    assert not (tmp_path / "fed").exists()


@pytest.mark.flower
def test_ctrl_c_stops_the_run_within_seconds_and_leaves_no_process(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "experiments/mood.py",
            f"results_root={tmp_path}",
            "data.n_users=8",
            "data.n_days=3",
            "training.epochs=40",
            "personalise.enabled=false",
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        # as a terminal starts a command: Ctrl-C at its default. An in-process Flower simulation earlier in
        # the session can leave SIGINT ignored in this process, and an ignored signal stays ignored in children.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        for line in proc.stdout:  # into the federated run: Ray and the Flower simulation are up
            if line.startswith("[federated] round 2/"):
                break
        proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        out, _ = proc.communicate(timeout=20)
        stopped_in = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    time.sleep(1)
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _sid(int(p.name)) == proc.pid]
    assert proc.returncode == 130, out[-2000:]
    assert stopped_in < 15 and not left
    (run,) = [p.parent for p in tmp_path.rglob(".hydra")]
    assert "interrupted" in (run / FAILED).read_text()


def test_collectors_skip_failed_runs(tmp_path):
    for name, mse in (("0", 0.1), ("1", 0.2)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.csv").write_text(f"model,val_mse\nfederated,{mse}\n")
    (tmp_path / "1" / FAILED).write_text("interrupted (Ctrl-C)\n")
    assert run_summaries(tmp_path)["run"].tolist() == ["0"]


def _sid(pid: int) -> int | None:
    """The session of a live process (``None`` for one gone or a zombie: it has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return None if stat[stat.rindex(")") + 2] == "Z" else os.getsid(pid)
    except (OSError, ValueError):
        return None
