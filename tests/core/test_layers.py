"""The package's imports point one way: down the layers, and never in a cycle.

Layers, bottom to top (a module may import only from its own layer or those below it):

    core -> data -> training -> privacy -> strategies -> federated -> studies -> across studies

Every import counts, including those inside functions. Studies (``fedmood/studies/<study>/``) never
import each other; the threat study attacks several of them and the deployment runs the mood
study's apps on a real federation, so both sit above them ("across studies"); the Hydra entry
points in ``experiments/`` sit above everything. The test fails on an upward
import, an import between two studies, or any cycle among modules.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from fedmood.paths import PROJECT_ROOT

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("fedmood", "fedmood.paths", "fedmood.errors", "fedmood.results", "fedmood.process_tree",
              "fedmood.cli", "fedmood.keys")),
    ("data", ("fedmood.data",)),
    ("training", ("fedmood.training", "fedmood.classification")),
    ("privacy", ("fedmood.privacy",)),
    ("strategies", ("strategies",)),
    ("federated", ("fedmood.federated",)),
    ("studies", ("fedmood.studies",)),
    ("across studies", ("fedmood.threat_study", "fedmood.deploy", "fedmood.report")),
]  # fmt: skip
#: The studies: none may import another.
STUDIES = ("fedmood.studies.mood", "fedmood.studies.metamf", "fedmood.studies.aae", "fedmood.studies.personal",
           "fedmood.studies.topics")  # fmt: skip


def _modules() -> dict[str, Path]:
    out = {}
    for top in ("fedmood", "strategies"):
        for path in (PROJECT_ROOT / top).rglob("*.py"):
            name = ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (anywhere in its body)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def _longest_match(module: str, prefixes) -> int:
    return max((len(p) for p in prefixes if module == p or module.startswith(p + ".")), default=-1)


def layer_of(module: str) -> int:
    """The index of the layer a module belongs to (its longest matching prefix)."""
    scores = [_longest_match(module, prefixes) for _, prefixes in LAYERS]
    best = max(scores)
    assert best >= 0, f"{module} is in no layer: add it to LAYERS"
    return max(i for i, s in enumerate(scores) if s == best)


def study_of(module: str) -> int | None:
    """The index of the study a module belongs to (None below the studies)."""
    scores = [_longest_match(module, (study,)) for study in STUDIES]
    return scores.index(max(scores)) if max(scores) >= 0 else None


def test_imports_point_down_the_layers():
    upward = [
        f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
        for a, targets in import_graph().items()
        for b in sorted(targets)
        if layer_of(b) > layer_of(a)
    ]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_studies_do_not_import_each_other():
    crossing = [
        f"{a} imports {b}"
        for a, targets in import_graph().items()
        for b in sorted(targets)
        if study_of(a) is not None and study_of(b) is not None and study_of(a) != study_of(b)
    ]
    assert not crossing, "imports between studies:\n" + "\n".join(crossing)


def test_no_import_cycles():
    graph = import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_checker_sees_a_violation():
    """The checks can fail: a strategy importing a study is upward, two studies are apart."""
    assert layer_of("strategies.strict") < layer_of("fedmood.studies.metamf.model")
    assert study_of("fedmood.studies.aae.model") != study_of("fedmood.studies.metamf.model")
    assert layer_of("fedmood.threat_study.attacks.scoring") > layer_of("fedmood.studies.mood.model")
    assert study_of("fedmood.federated.study") is None


@pytest.mark.parametrize("study", STUDIES)
def test_a_study_imports_alone(study):
    """Importing every module of one study loads no other study (checked in a fresh interpreter)."""
    modules = [m for m in import_graph() if m == study or m.startswith(study + ".")]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('fedmood.studies.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, check=True)
    others = [m for m in out.stdout.split() if study_of(m) is not None and STUDIES[study_of(m)] != study]
    assert not others, f"importing {study} loaded {others}"
