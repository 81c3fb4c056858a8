"""Bad input, refused before any work: one error type that can carry every problem found at once.

Every reader and every config check raises :class:`InputError` (or one of its subclasses, such as
``LogFormatError``); each problem names where it is (a file with its line and field, or a config
key) and what is allowed. :class:`Problems` collects them so that a user sees all of them in one
message; the entry points (:mod:`fedmood.cli`) print that message without a traceback and exit 2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

#: At most this many problems are spelled out in one message (the count of the rest follows).
SHOWN = 25


@dataclass(frozen=True)
class Problem:
    """One problem: ``where`` (``"<file>: line 3: field 'rating'"`` or ``"config key training.epochs"``) and what."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}" if self.where else self.what


class InputError(ValueError):
    """Input (a file, a folder or a config value) that fedmood refuses; holds every problem found."""

    def __init__(self, problems: str | Problem | Iterable[Problem]) -> None:
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__(self._message())

    def _message(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{len(self.problems)} problems:"] + [f"  - {p}" for p in self.problems[:SHOWN]]
        if len(self.problems) > SHOWN:
            lines.append(f"  ... and {len(self.problems) - SHOWN} more")
        return "\n".join(lines)

    def __reduce__(self):  # picklable across processes (Ray, multiprocessing), subclass and problems kept
        return (_rebuild, (type(self), self.problems, self.__dict__))


def _rebuild(cls: type[InputError], problems: list[Problem], state: dict) -> InputError:
    err = cls.__new__(cls)
    InputError.__init__(err, problems)
    err.__dict__.update(state)
    return err


class RunFailedError(RuntimeError):
    """A run that could not finish for a reason outside fedmood's code (e.g. a client that failed).

    Entry points print its message without a traceback and exit 1; the run's folder is marked FAILED.
    """


def config_problem(key: str, what: str) -> Problem:
    """A problem with a config value, named by its dotted key."""
    return Problem(f"config key {key}", what)


class Problems:
    """A collector: add problems (or absorb the :class:`InputError` of a check), then raise them all."""

    def __init__(self) -> None:
        self.found: list[Problem] = []

    def add(self, where: str, what: str) -> None:
        """Record one problem."""
        self.found.append(Problem(where, what))

    def config(self, key: str, what: str) -> None:
        """Record a problem with the config value at ``key``."""
        self.found.append(config_problem(key, what))

    def absorb(self, check: Callable[..., T], *args, **kwargs) -> T | None:
        """Run ``check``; its :class:`InputError`'s problems are recorded (returns ``None`` then)."""
        try:
            return check(*args, **kwargs)
        except InputError as e:
            self.found.extend(e.problems)
            return None

    def __bool__(self) -> bool:
        return bool(self.found)

    def raise_if_any(self) -> None:
        """Raise one :class:`InputError` with every problem recorded, if any."""
        if self.found:
            raise InputError(self.found)


def require_number(
    problems: Problems,
    key: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    allow_none: bool = False,
) -> None:
    """Check that config ``key`` holds a finite number in the stated range (recorded, not raised)."""
    if value is None and allow_none:
        return
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not float(value).is_integer()):
        problems.config(key, f"must be {kind}, got {value!r}")
        return
    if value != value or value in (float("inf"), float("-inf")):
        problems.config(key, f"must be finite, got {value!r}")
        return
    lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
    hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
    allowed = " and ".join(s for s in (lo, hi) if s)
    below = low is not None and (value < low or (low_open and value == low))
    above = high is not None and (value > high or (high_open and value == high))
    if below or above:
        problems.config(key, f"must be {allowed}, got {value!r}")


def require_range(problems: Problems, key: str, value: object) -> None:
    """Check that config ``key`` holds an interval ``[low, high]`` of two numbers with low < high."""
    ok = isinstance(value, list | tuple) and len(value) == 2
    ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value) and value[0] < value[1]
    if not ok:
        problems.config(key, f"must be [low, high] with low < high, got {value!r}")


def require_path(problems: Problems, where: str, path: str | Path, kind: str = "file") -> bool:
    """Check that ``path`` is an existing ``kind`` ("file" or "folder"); recorded under ``where`` if not."""
    path = Path(path)
    ok = path.is_file() if kind == "file" else path.is_dir()
    if not ok:
        other = "folder" if kind == "file" else "file"
        problems.add(where, f"{path} is a {other}, expected a {kind}" if path.exists() else f"{path} does not exist")
    return ok
