"""One report of every study found in results folders.

    python -m fedmood.report results/ [more folders] [--out results/report]      (make report)

Walks the folders, asks every study which of them are its results (each study's ``report.py``:
a run, or a sweep it collected; the runs of a collected sweep are left to the sweep), and writes
one self-contained Markdown page, ``report.md``, with the figures copied beside it: per study, our
tables next to the paper's numbers, the run's folder, date and main settings. Nothing found, a
folder that does not exist, or an output folder inside nothing writable: a one-line error, exit 2.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from fedmood.errors import InputError
from fedmood.reporting import Section
from fedmood.results import atomic_write_text
from fedmood.studies.aae import report as aae_report
from fedmood.studies.metamf import report as metamf_report
from fedmood.studies.mood import report as mood_report
from fedmood.studies.personal import report as personal_report
from fedmood.studies.topics import report as topics_report
from fedmood.threat_study import report as threat_report

#: The studies in the order the report shows them.
STUDIES: list[Callable[[Path], list[Section]]] = [
    mood_report.sections,
    threat_report.sections,
    metamf_report.sections,
    aae_report.sections,
    personal_report.sections,
    topics_report.sections,
]
#: Settings shown with every section when its run has them.
SETTINGS = ("experiment", "seed", "variant", "dataset", "beta", "users", "size_name", "privacy", "federation")


def find_sections(roots: list[Path], exclude: Path | None = None) -> list[Section]:
    """Every study's sections in ``roots`` and the folders below them, in study order, oldest first."""
    missing = [str(r) for r in roots if not r.is_dir()]
    if missing:
        raise InputError(f"not a folder: {', '.join(missing)}")
    roots = [r.resolve() for r in roots]
    folders = sorted({p for r in roots for p in [r, *r.rglob("*")] if p.is_dir()})
    if exclude is not None:
        folders = [f for f in folders if f != exclude and exclude not in f.parents]
    found = []
    for study in STUDIES:
        found += sorted((s for f in folders for s in study(f)), key=lambda s: (s.date, str(s.folder)))
    return found


def _settings(config: dict) -> str:
    shown = []
    for key in SETTINGS:
        value = config.get(key)
        if key == "privacy" and isinstance(value, dict):
            value = value.get("mechanism")
        elif key == "federation" and isinstance(value, dict):
            key, value = "rounds", value.get("num_rounds")
        if value is not None and not isinstance(value, dict | list):
            shown.append(f"{key}={value}")
    return ", ".join(shown)


def _shown(folder: Path, roots: list[Path]) -> str:
    """``folder`` as the user named it: relative to the results folder it was found in."""
    for root in roots:
        root = root.resolve()
        if folder == root or root in folder.parents:
            return str(Path(root.name) / folder.relative_to(root))
    return str(folder)


def render(sections: list[Section], out: Path, roots: list[Path] | None = None) -> Path:
    """Write ``out/report.md`` and ``out/figures/`` for ``sections``; the report's path."""
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# fedmood: every study's results", ""]
    studies = list(dict.fromkeys(s.study for s in sections))
    lines += [f"Studies found: {', '.join(studies)}.", ""]
    copied = 0
    for study in studies:
        lines += [f"## {study}", ""]
        for s in (x for x in sections if x.study == study):
            where = f"`{_shown(s.folder, roots or [])}`, {s.date}" + (f"; {_settings(s.config)}" if s.config else "")
            lines += [f"### {s.title}", "", where, ""]
            lines += [s.body.rstrip(), ""]
            for fig in s.figures:
                name = f"{copied:03d}-{fig.name}"  # numbered: two runs' figures may share a name
                shutil.copyfile(fig, fig_dir / name)
                copied += 1
                lines += [f"![{fig.stem}](figures/{name})", ""]
    path = atomic_write_text(out / "report.md", "\n".join(lines) + "\n")
    path.chmod(0o644)  # a page to share, unlike a run's private results
    return path


def main(argv: list[str] | None = None) -> int:
    """The command line; 0 on success, 2 (one line on stderr) when nothing can be reported."""
    ap = argparse.ArgumentParser(prog="python -m fedmood.report", description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path, help="results folders (searched recursively)")
    ap.add_argument("--out", type=Path, help="where report.md and figures/ go (default: <first folder>/report)")
    args = ap.parse_args(argv)
    out = args.out or args.folders[0] / "report"
    try:
        sections = find_sections(args.folders, exclude=out.resolve() if out.exists() else None)
        if not sections:
            raise InputError(
                f"no study results in {', '.join(map(str, args.folders))} (looked for each study's "
                "config.yaml with its tables, and collected sweeps): run e.g. `make run` first"
            )
        path = render(sections, out, args.folders)
    except (InputError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"report of {len(sections)} section(s) from {len({s.study for s in sections})} study(ies): {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
