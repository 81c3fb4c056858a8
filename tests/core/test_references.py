"""Every module and file the README, the configs and the docstrings name exists.

A module moved without updating the text that points at it is caught here: dotted names
(``fedmood.studies.mood.run``, an attribute after the module is allowed) and repository paths
(``fedmood/federated/grid.py``, ``conf/...``, ``tests/...``) in tracked text files.
"""

from __future__ import annotations

import re
import subprocess

from fedmood.paths import PROJECT_ROOT

TOPS = ("fedmood", "strategies", "tests", "benchmarks", "experiments", "conf")
DOTTED = re.compile(r"(?<![\w/.])((?:fedmood|strategies)(?:\.\w+)+)")
PATH = re.compile(r"(?<![\w/.])((?:" + "|".join(TOPS) + r")/[\w/.-]*\w)")


def _text_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    return [f for f in out.stdout.split() if f.endswith((".py", ".md", ".yaml", ".toml")) and not f.startswith("docs/")]


def _is_module(parts: list[str]) -> bool:
    path = PROJECT_ROOT.joinpath(*parts)
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _defines(parts: list[str], name: str) -> bool:
    """Whether the module ``parts`` defines ``name`` at its top level (a def, class or assignment)."""
    path = PROJECT_ROOT.joinpath(*parts)
    source = (path.with_suffix(".py") if path.with_suffix(".py").is_file() else path / "__init__.py").read_text()
    n = re.escape(name)
    pattern = rf"^(?:async def |def |class ){n}\b|^{n}\s*[:=]|^[\w, ]*\b{n}\b[\w, ]*="
    return re.search(pattern, source, re.MULTILINE) is not None or f"import {name}" in source


def dangling_references(text: str) -> list[str]:
    """The dotted module names (and the attribute after one) and repository paths in ``text`` that
    point at nothing."""
    bad = []
    for match in DOTTED.finditer(text):
        parts = match.group(1).split(".")
        known = [i for i in range(len(parts), 0, -1) if _is_module(parts[:i])]  # the longest module prefix
        if not known or known[0] == 1 or (known[0] < len(parts) and not _defines(parts[: known[0]], parts[known[0]])):
            bad.append(match.group(1))
    bad += [m.group(1) for m in PATH.finditer(text) if not (PROJECT_ROOT / m.group(1)).exists()]
    return bad


def test_every_named_module_and_path_exists():
    found = {f: dangling_references((PROJECT_ROOT / f).read_text()) for f in _text_files()}
    dangling = [f"{f}: {ref}" for f, refs in found.items() for ref in refs]
    assert not dangling, "references to modules or files that do not exist:\n" + "\n".join(dangling)


def test_the_check_sees_a_moved_module():
    gone_module, gone_file = "fedmood." + "pipeline.run_comparison", "fedmood/" + "federated/server_app.py"
    assert dangling_references(f"see {gone_module} and {gone_file}") == [gone_module, gone_file]
    assert dangling_references("fedmood.studies.mood.run.app, fedmood/federated/grid.py, `fedmood/`") == []
    moved = "fedmood.training." + "TrainConfig"
    assert dangling_references(f"{moved} and fedmood.studies.mood.train.TrainConfig") == [moved]
