"""Every bad input a new user can give, tried against every entry point as a user would (a subprocess).

    python benchmarks/bad_inputs.py [--only <substring>] [--timeout 120]

Each case runs one command on small data with one thing wrong (a config value, a malformed day
log or ratings file, a bad option) and checks what a user sees:

* ``named_error``: the exit code is the promised one (2 for bad input; 1 for a run that failed,
  such as a client that raised; 130 for Ctrl-C) and the output names the file/field or config key;
* ``traceback``: a Python traceback was printed;
* ``silent_accept``: the command exited 0;
* ``leftovers``: anything left behind: for bad input any file in the results folder (the run
  folder must be gone), for a failed or interrupted run a run folder not marked ``FAILED``, or a
  process of the run still alive after it exited;
* ``hangs``: the command did not end within ``--timeout`` seconds (or 15 s after Ctrl-C);
* ``max_fail_sec``: the longest time to the error over all cases.

Prints one line per case, then the summary line last:

    bad_inputs: cases=<n> named_error=<a> traceback=<b> silent_accept=<c> leftovers=<d> hangs=<e> max_fail_sec=<f>
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
EXIT_BAD, EXIT_FAILED, EXIT_INT = 2, 1, 130


@dataclass
class Case:
    """One command with one thing wrong; ``expect``: text the output must contain (the file/field/key)."""

    name: str
    argv: list[str]
    expect: str
    code: int = EXIT_BAD
    results: Path | None = None  # where the command writes (must hold nothing afterwards, bar FAILED runs)
    interrupt_after: float | None = None  # send SIGINT after this many seconds
    setup: Callable[[], None] | None = field(default=None, repr=False)


@dataclass
class Outcome:
    case: Case
    code: int | None
    seconds: float
    output: str
    left_processes: int

    @property
    def hang(self) -> bool:
        return self.code is None

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.output

    @property
    def silent(self) -> bool:
        return self.code == 0

    @property
    def named(self) -> bool:
        return self.code == self.case.code and self.case.expect in self.output

    @property
    def leftovers(self) -> list[str]:
        out = [f"{self.left_processes} processes"] if self.left_processes else []
        root = self.case.results
        if root is None or not root.exists():
            return out
        files = [p for p in root.rglob("*") if p.is_file()]
        if self.case.code == EXIT_BAD:
            return out + [str(p.relative_to(root)) for p in files]
        runs = {p.parent for p in root.rglob(".hydra")}  # Hydra run folders
        return out + [str(r.relative_to(root)) for r in runs if not (r / "FAILED").is_file()]


def _session_processes(sid: int) -> int:
    """Processes still alive in the session the case's command led."""
    n = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                if stat[stat.rindex(")") + 2] != "Z" and os.getsid(int(entry.name)) == sid:  # zombies have exited
                    n += 1
            except (OSError, ValueError):
                continue
    return n


def run_case(case: Case, timeout: float) -> Outcome:
    """Run one case in its own session; measure its exit, output, time and what it left."""
    if case.setup:
        case.setup()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "", "FEDMOOD_DEBUG": ""}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        case.argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        if case.interrupt_after is not None:
            try:
                proc.wait(case.interrupt_after)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGINT)
                t0 = time.perf_counter()  # the time that counts: from Ctrl-C to the exit
            out, _ = proc.communicate(timeout=15 if case.interrupt_after is not None else timeout)
        else:
            out, _ = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        code = None
    seconds = time.perf_counter() - t0
    time.sleep(1.0)  # let the session's children finish exiting
    left = _session_processes(proc.pid)
    if left:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    return Outcome(case, code, seconds, out.decode("utf-8", "replace"), left)


# ----------------------------------------------------------------------------- the inputs
def _day_logs(root: Path) -> Path:
    from fedmood.studies.mood.data.generator import GeneratorConfig, write_day_logs

    return write_day_logs(GeneratorConfig(n_users=4, n_days=2, seed=3), root)


def _mutated_logs(base: Path, dest: Path, change: Callable[[Path], None]) -> Path:
    shutil.copytree(base, dest)
    change(dest)
    return dest


def _edit(user: str, day: int, edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        path = sorted((root / user).glob("*.json"))[day]
        doc = json.loads(path.read_text())
        edit(doc)
        path.write_text(json.dumps(doc))

    return change


def _set(key: str, index: int, field_: str, value) -> Callable[[Path], None]:
    """Set ``doc[key][index][field_]`` in the first log (of any user) that has such an entry."""

    def change(root: Path) -> None:
        for path in sorted(root.glob("*/*.json")):
            doc = json.loads(path.read_text())
            if len(doc.get(key, [])) > index:
                doc[key][index][field_] = value
                path.write_text(json.dumps(doc))
                return
        raise RuntimeError(f"no log with {key}[{index}]")

    return change


def _copy_day_as_duplicate(root: Path) -> None:
    files = sorted((root / "user0001").glob("*.json"))
    shutil.copy(files[0], root / "user0001" / "copy-of-first-day.json")


def _same_user_twice(root: Path) -> None:
    for path in (root / "user0002").glob("*.json"):
        doc = json.loads(path.read_text())
        doc["user_id"] = "user0001"
        path.write_text(json.dumps(doc))


def _json_folder(root: Path) -> None:
    (root / "user0001" / "2026-02-01.json").mkdir()


def _ratings(path: Path, rows: list[tuple], header: bool = True) -> Path:
    lines = (["user,item,rating"] if header else []) + [",".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _good_rows(scale: float = 1.0, offset: float = 0.0) -> list[tuple]:
    rng = np.random.default_rng(0)
    return [(f"u{u}", f"i{i}", round(offset + scale * rng.uniform(-1, 1), 2)) for u in range(5) for i in range(6)]


def _recording(path: Path, value: str | None = None) -> Path:
    from fedmood.data.motionsense import COLUMNS

    rng = np.random.default_rng(0)
    rows = rng.normal(0, 0.3, size=(300, len(COLUMNS)))
    lines = [",".join(COLUMNS)] + [",".join(f"{v:.5f}" for v in r) for r in rows]
    if value is not None:
        cols = lines[40].split(",")
        cols[3] = value
        lines[40] = ",".join(cols)
    path.write_text("\n".join(lines) + "\n")
    return path


def _anonymiser(path: Path) -> Path:
    from fedmood.data.motionsense import Standardiser
    from fedmood.studies.aae.experiment import save_anonymiser
    from fedmood.studies.aae.model import Autoencoder

    save_anonymiser(path, Autoencoder(hidden=8), Standardiser(np.zeros((2, 1)), np.ones((2, 1))), 128, 8)
    return path


def build_cases(tmp: Path) -> list[Case]:
    """Every case, with its files made under ``tmp``."""
    logs = _day_logs(tmp / "logs")
    n = [0]

    def results() -> Path:
        n[0] += 1
        return tmp / "results" / f"case-{n[0]:02d}"

    def mood(*overrides: str, script: str = "experiments/mood.py", code: int = EXIT_BAD, expect: str, name: str,
             interrupt_after: float | None = None) -> Case:  # fmt: skip
        r = results()
        base = ["training.epochs=2", "personalise.enabled=false", "data.n_users=4", "data.n_days=2"]
        if script != "experiments/mood.py":
            base = ["training.epochs=2", "data.n_users=4", "data.n_days=2"]
        argv = [PY, script, *base, f"results_root={r}", *overrides]
        return Case(name, argv, expect, code, r, interrupt_after)

    def logs_case(name: str, change: Callable[[Path], None], expect: str, script: str = "experiments/mood.py") -> Case:
        folder = _mutated_logs(logs, tmp / f"logs-{name}", change)
        return mood("data=logs", f"data.logs_dir={folder}", script=script, expect=expect, name=name)

    def ratings_case(name: str, path: Path, expect: str, *extra: str) -> Case:
        return mood("data=ratings", f"data.ratings_path={path}", *extra, expect=expect, name=name)

    good_ratings = _ratings(tmp / "good.csv", _good_rows())
    non_utf8 = tmp / "latin1.csv"
    non_utf8.write_bytes("user,item,rating\nu1,caf\xe9,0.5\n".encode("latin-1"))
    (tmp / "a-folder.csv").mkdir()
    cases = [
        # ---- config values (mood recommender)
        mood("training.epochs=0", expect="training.epochs", name="epochs-0"),
        mood("training.batch_size=0", expect="training.batch_size", name="batch-size-0"),
        mood("data.n_clusters=0", expect="data.n_clusters", name="clusters-0"),
        mood("federation.clients_per_round=0", expect="federation.clients_per_round", name="clients-per-round-0"),
        mood("federation.clients_per_round=9", expect="federation.clients_per_round", name="clients-per-round-9-of-4"),
        mood("privacy=dpsgd", "privacy.target_epsilon=0", expect="target_epsilon", name="epsilon-0"),
        mood("privacy=central_dp", "privacy.delta=2", expect="delta", name="delta-2"),
        mood("data.val_frac=1.0", expect="data.val_frac", name="val-frac-1"),
        mood("training.lr_max=-1", expect="training.lr_max", name="lr-negative"),
        mood("model.y_range=[1,0]", expect="model.y_range", name="y-range-reversed"),
        mood(
            "privacy=secagg",
            "privacy.secagg.clipping_range=0.0001",
            expect="secagg.clipping_range",
            name="secagg-grid-not-power-of-two",
        ),
        mood("data=logs", expect="data.logs_dir", name="logs-without-folder"),
        mood("data=logs", f"data.logs_dir={tmp / 'nowhere'}", expect="nowhere does not exist", name="logs-missing"),
        mood(
            "data=ratings",
            f"data.ratings_path={tmp / 'a-folder.csv'}",
            expect="a-folder.csv is a folder",
            name="ratings-path-is-folder",
        ),
        # ---- day logs
        logs_case("user-id-not-folder", _edit("user0001", 0, lambda d: d.update(user_id="someone")), "field 'user_id'"),
        logs_case("same-user-two-folders", _same_user_twice, "user0002"),
        logs_case("duplicate-date", _copy_day_as_duplicate, "field 'date'"),
        logs_case("app-ends-before-start", _swap_app_times, "field 'apps[0].end'"),
        logs_case("negative-call", _set("calls", 0, "duration_s", -5), "calls[0].duration_s"),
        logs_case("latitude-500", _set("locations", 0, "lat", 500.0), "locations[0].lat"),
        logs_case("mood-3", _set("hours", 4, "mood", 3), "hours[4].mood"),
        logs_case("json-is-folder", _json_folder, "2026-02-01.json"),
        logs_case("invalid-json", lambda r: next((r / "user0000").glob("*.json")).write_text("{oops"), "'<json>'"),
        logs_case(
            "privacy-utility-bad-mood",
            _set("hours", 4, "mood", 3),
            "hours[4].mood",
            script="experiments/privacy_utility.py",
        ),
        logs_case(
            "no-user-folders", lambda r: [shutil.rmtree(p) for p in r.iterdir() if p.is_dir()], "no user folders"
        ),
        # ---- ratings tables
        ratings_case(
            "ratings-1e9", _ratings(tmp / "huge.csv", [*_good_rows()[:-1], ("u4", "i5", 1e9)]), "model.y_range"
        ),
        ratings_case("movielens-scale", _ratings(tmp / "ml.csv", _good_rows(2, 3)), "model.y_range"),
        ratings_case("duplicate-pair", _ratings(tmp / "dup.csv", [*_good_rows(), ("u0", "i0", 0.5)]), "line 32"),
        ratings_case("single-row-user", _ratings(tmp / "single.csv", [*_good_rows(), ("u9", "i0", 0.5)]), "'u9'"),
        ratings_case(
            "every-user-one-row", _ratings(tmp / "ones.csv", [(f"u{u}", "i0", 0.1) for u in range(5)]), "needs 2+"
        ),
        ratings_case("non-utf8", non_utf8, "latin1.csv: line 2"),
        ratings_case(
            "rating-not-number", _ratings(tmp / "nan.csv", [*_good_rows(), ("u1", "i9", "good")]), "field 'rating'"
        ),
        ratings_case("rating-inf", _ratings(tmp / "inf.csv", [*_good_rows(), ("u1", "i9", "inf")]), "field 'rating'"),
        ratings_case("short-row", _ratings(tmp / "short.csv", [*_good_rows(), ("u1", "i9")]), "expected 3 fields"),
        ratings_case(
            "ok-file-clients-9", good_ratings, "federation.clients_per_round", "federation.clients_per_round=9"
        ),
        # ---- the other experiments
        mood(
            "training.epochs=0",
            script="experiments/privacy_attacks.py",
            expect="training.epochs",
            name="attacks-epochs-0",
        ),
        _metamf(
            results(),
            tmp,
            "metamf-rating-1e9",
            ["ratings_path=" + str(_ratings(tmp / "m1e9.csv", [*_good_rows(1, 3), ("u0", "i9", 1e9)]))],
            "rating_range",
        ),
        _metamf(results(), tmp, "metamf-missing-file", [f"ratings_path={tmp / 'none.csv'}"], "none.csv does not exist"),
        _metamf(
            results(),
            tmp,
            "metamf-beta-0",
            [f"ratings_path={_ratings(tmp / 'm.csv', _good_rows(1, 3))}", "beta=0"],
            "beta",
        ),
        _metamf(
            results(),
            tmp,
            "metamf-batch-0",
            [f"ratings_path={tmp / 'm.csv'}", "training.batch_size=0"],
            "training.batch_size",
        ),
        _metamf(results(), tmp, "metamf-unknown-dataset", ["dataset=nope"], "dataset"),
        # ---- deployment
        _deploy(tmp, "deploy-rounds-0", ["run", "--rounds", "0"], "--rounds"),
        _deploy(tmp, "deploy-nodes-0", ["run", "--nodes", "0"], "--nodes"),
        _deploy(tmp, "deploy-kill-node-9", ["run", "--nodes", "2", "--kill-node", "9"], "--kill-node"),
        _deploy(tmp, "deploy-logs-missing", ["run", "--logs", str(tmp / "nowhere")], "nowhere"),
        _deploy(tmp, "deploy-bad-log", ["run", "--nodes", "4", "--logs", str(tmp / "logs-mood-3")], "hours[4].mood"),
        _deploy(tmp, "deploy-bad-override", ["run", "--", "training.epochs=0"], "training.epochs"),
        _deploy(tmp, "deploy-too-few-users", ["run", "--nodes", "6", "--logs", str(logs)], "4 user folders"),
    ]
    # ---- the anonymiser
    model, rec = _anonymiser(tmp / "aae.pt"), _recording(tmp / "rec.csv")
    corrupt = tmp / "corrupt.pt"
    corrupt.write_bytes(b"not a torch file at all")
    (tmp / "out-folder").mkdir()
    anon = [PY, "-m", "fedmood.studies.aae.anonymise", "--model", str(model), "--input"]
    cases += [
        Case("anon-stride-0", [*anon, str(rec), "--output", str(tmp / "o.npz"), "--stride", "0"], "--stride"),
        Case("anon-stride-neg", [*anon, str(rec), "--output", str(tmp / "o.npz"), "--stride", "-5"], "--stride"),
        Case(
            "anon-inf",
            [*anon, str(_recording(tmp / "rec-inf.csv", "inf")), "--output", str(tmp / "o.npz")],
            "rec-inf.csv, line 41",
        ),
        Case(
            "anon-1e300",
            [*anon, str(_recording(tmp / "rec-big.csv", "1e300")), "--output", str(tmp / "o.npz")],
            "rec-big.csv, line 41",
        ),
        Case("anon-output-folder", [*anon, str(rec), "--output", str(tmp / "out-folder")], "out-folder"),
        Case("anon-output-suffix", [*anon, str(rec), "--output", str(tmp / "o.txt")], ".npz or .csv"),
        Case(
            "anon-corrupt-model",
            [
                PY,
                "-m",
                "fedmood.studies.aae.anonymise",
                "--model",
                str(corrupt),
                "--input",
                str(rec),
                "--output",
                str(tmp / "o.npz"),
            ],
            "corrupt.pt",
        ),
        Case("anon-missing-input", [*anon, str(tmp / "no.csv"), "--output", str(tmp / "o.npz")], "no.csv"),
    ]
    # ---- runs that fail while running, and Ctrl-C
    cases += [
        mood(
            "privacy=secagg",
            "privacy.secagg.clipping_range=0.0001220703125",
            code=EXIT_FAILED,
            expect="SecAgg+ would clip",
            name="secagg-client-fails",
        ),
        mood(
            "data.n_users=20",
            "training.epochs=20",
            code=EXIT_INT,
            expect="interrupted",
            name="ctrl-c",
            interrupt_after=16.0,
        ),
    ]
    return cases


def _swap_app_times(root: Path) -> None:
    for path in sorted(root.glob("*/*.json")):
        doc = json.loads(path.read_text())
        if doc["apps"] and doc["apps"][0]["start"] < doc["apps"][0]["end"]:
            app = doc["apps"][0]
            app["start"], app["end"] = app["end"], app["start"]
            path.write_text(json.dumps(doc))
            return


def _metamf(results: Path, tmp: Path, name: str, overrides: list[str], expect: str) -> Case:
    argv = [PY, "experiments/metamf_privacy.py", "training.max_epochs=1", "device=cpu", f"results_root={results}"]
    return Case(name, [*argv, *overrides], expect, EXIT_BAD, results)


def _deploy(tmp: Path, name: str, args: list[str], expect: str) -> Case:
    root = tmp / f"deploy-{name}"
    split = args.index("--") if "--" in args else len(args)
    argv = [PY, "-m", "fedmood.deploy", *args[:split], "--root", str(root), *args[split:]]
    return Case(name, argv, expect, EXIT_BAD, root)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="", help="run only the cases whose name contains this")
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fedmood-bad-inputs-") as tmp:
        cases = [c for c in build_cases(Path(tmp)) if args.only in c.name]
        outcomes = []
        for case in cases:
            o = run_case(case, args.timeout)
            outcomes.append(o)
            flags = [k for k, bad in (("TRACEBACK", o.traceback), ("SILENT", o.silent), ("HANG", o.hang)) if bad]
            flags += [f"LEFT {', '.join(o.leftovers[:3])}"] if o.leftovers else []
            flags += [] if o.named else [f"NOT NAMED (exit {o.code}, wanted {case.code} and {case.expect!r})"]
            last = next((ln for ln in reversed(o.output.strip().splitlines()) if ln.strip()), "")
            print(f"{case.name:32s} exit={o.code!s:>4} {o.seconds:5.1f}s {' '.join(flags) or 'ok'} | {last[:150]}",
                  flush=True)  # fmt: skip
    failed = [o.seconds for o in outcomes if not o.hang]
    print(
        f"bad_inputs: cases={len(outcomes)} named_error={sum(o.named for o in outcomes)} "
        f"traceback={sum(o.traceback for o in outcomes)} silent_accept={sum(o.silent for o in outcomes)} "
        f"leftovers={sum(bool(o.leftovers) for o in outcomes)} hangs={sum(o.hang for o in outcomes)} "
        f"max_fail_sec={max(failed, default=0.0):.1f}"
    )


if __name__ == "__main__":
    main()
