"""The package's imports point one way: down the layers, and never in a cycle.

Layers, bottom to top (a module may import only from its own layer or those below it):

    core -> data -> training -> privacy -> strategies -> federated -> studies -> evaluations

Every import counts, including those inside functions. Studies never import each other; the
threat study ("evaluations") attacks several of them and sits above. The test fails on an upward
import, an import between two studies, or any cycle among modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

from fedmood.paths import PROJECT_ROOT

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "core",
        (
            "fedmood",
            "fedmood.paths",
            "fedmood.errors",
            "fedmood.results",
            "fedmood.process_tree",
            "fedmood.cli",
            "fedmood.plotting",
            "fedmood.keys",
        ),
    ),
    ("data", ("fedmood.data", "fedmood.clustering")),
    ("training", ("fedmood.training", "fedmood.models", "fedmood.classification")),
    ("privacy", ("fedmood.privacy",)),
    ("strategies", ("strategies",)),
    ("federated", ("fedmood.federated", "fedmood.suggest")),
    (
        "studies",
        ("fedmood.pipeline", "fedmood.sweep", "fedmood.metamf", "fedmood.aae", "fedmood.personal", "fedmood.deploy"),
    ),
    ("evaluations", ("fedmood.threat_study",)),
]
#: The studies: none may import another (the mood study is its top-level modules and the deployment).
STUDIES = (("fedmood.pipeline", "fedmood.sweep", "fedmood.deploy"), ("fedmood.metamf",), ("fedmood.aae",),
           ("fedmood.personal",))  # fmt: skip


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
    scores = [_longest_match(module, prefixes) for prefixes in STUDIES]
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
    assert layer_of("strategies.strict") < layer_of("fedmood.metamf.model")
    assert study_of("fedmood.aae.models") != study_of("fedmood.metamf.model")
    assert layer_of("fedmood.privacy.attacks.scoring") == layer_of("fedmood.privacy")
