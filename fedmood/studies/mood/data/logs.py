"""Reading and validating phone day logs (one JSON file per user per day).

Format ``fedmood-daylog/1``::

    {"format": "fedmood-daylog/1", "user_id": "user0007", "date": "2026-01-05",
     "timezone": "Europe/London", "slot_minutes": 10,
     "apps":      [{"start": ISO, "end": ISO, "package": str}, ...],
     "web":       [{"time": ISO, "url": str}, ...],
     "calls":     [{"time": ISO, "contact": str, "direction": str, "duration_s": int}, ...],
     "sms":       [{"time": ISO, "contact": str, "direction": str}, ...],
     "locations": [{"time": ISO, "lat": float, "lon": float, "place": int, ...}, ...],
     "hours":     [{"hour": 0..23, "activities": [UKTUS code per slot], "mood": number}, x24]}

Any problem raises :class:`LogFormatError` naming the file and the field (e.g. ``hours[3].hour``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedmood.errors import InputError, Problem, Problems
from fedmood.studies.mood.data.activities import ACTIVITY_BY_CODE, LOCATIONS, SLOT_MINUTES, SLOTS_PER_HOUR

LOG_FORMAT = "fedmood-daylog/1"
_EVENT_FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "apps": {"start": str, "end": str, "package": str},
    "web": {"time": str, "url": str},
    "calls": {"time": str, "contact": str, "direction": str, "duration_s": int},
    "sms": {"time": str, "contact": str, "direction": str},
    "locations": {"time": str, "lat": (int, float), "lon": (int, float), "place": int},
}
_TIME_FIELDS = ("time", "start", "end")


class LogFormatError(InputError):
    """A day log that does not follow the format; the message names the file and the field."""

    def __init__(self, path: str | Path, field: str, problem: str) -> None:
        self.path, self.field = str(path), field
        super().__init__(Problem(f"{path}: field '{field}'", problem))


@dataclass
class DayLog:
    """The labelled part of one day log: activity codes per slot and mood per hour."""

    user_id: str
    date: str
    activities: np.ndarray  # (24, SLOTS_PER_HOUR) UKTUS codes
    moods: np.ndarray  # (24,) float


def _require(path: Path, obj: dict, key: str, typ: type | tuple[type, ...], where: str = "") -> object:
    name = f"{where}{key}"
    if key not in obj:
        raise LogFormatError(path, name, "missing")
    val = obj[key]
    if isinstance(val, bool) or not isinstance(val, typ):
        want = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise LogFormatError(path, name, f"expected {want}, got {type(val).__name__} {val!r}")
    return val


def _check_event_values(path: Path, key: str, ev: dict, where: str) -> None:
    """Values a well-typed event can still get wrong: order of times, signs, ranges, codes."""
    if key == "apps":
        start, end = dt.datetime.fromisoformat(ev["start"]), dt.datetime.fromisoformat(ev["end"])
        if (start.tzinfo is None) != (end.tzinfo is None):
            raise LogFormatError(path, where + "end", "start and end must both have a UTC offset, or neither")
        if end < start:
            raise LogFormatError(path, where + "end", f"{ev['end']} is before the session's start {ev['start']}")
    if key == "calls" and ev["duration_s"] < 0:
        raise LogFormatError(path, where + "duration_s", f"must be >= 0 seconds, got {ev['duration_s']}")
    if key == "locations":
        for name, bound in (("lat", 90.0), ("lon", 180.0)):
            if not -bound <= ev[name] <= bound:  # also refuses NaN
                raise LogFormatError(path, where + name, f"must lie in [-{bound:g}, {bound:g}] degrees, got {ev[name]}")
        if ev["place"] not in LOCATIONS:
            raise LogFormatError(path, where + "place", f"unknown UKTUS location code {ev['place']}")


def parse_day_log(path: str | Path, doc: dict) -> DayLog:
    """Validate a decoded day log and return its labels; raises :class:`LogFormatError`."""
    path = Path(path)
    if not isinstance(doc, dict):
        raise LogFormatError(path, "<root>", "expected a JSON object")
    fmt = _require(path, doc, "format", str)
    if fmt != LOG_FORMAT:
        raise LogFormatError(path, "format", f"unsupported format {fmt!r}, expected {LOG_FORMAT!r}")
    uid = _require(path, doc, "user_id", str)
    date_s = _require(path, doc, "date", str)
    try:
        date = dt.date.fromisoformat(date_s)
    except ValueError:
        raise LogFormatError(path, "date", f"not an ISO date: {date_s!r}") from None
    slot_min = _require(path, doc, "slot_minutes", int)
    if slot_min != SLOT_MINUTES:
        raise LogFormatError(path, "slot_minutes", f"must be {SLOT_MINUTES}, got {slot_min}")
    for key, fields in _EVENT_FIELDS.items():
        events = _require(path, doc, key, list)
        for i, ev in enumerate(events):
            where = f"{key}[{i}]."
            if not isinstance(ev, dict):
                raise LogFormatError(path, f"{key}[{i}]", "expected an object")
            for f, typ in fields.items():
                val = _require(path, ev, f, typ, where)
                if f in _TIME_FIELDS:
                    try:
                        t = dt.datetime.fromisoformat(val)
                    except ValueError:
                        raise LogFormatError(path, where + f, f"not an ISO time: {val!r}") from None
                    if t.date() != date and not (f == "end" and t.date() == date + dt.timedelta(1)):
                        raise LogFormatError(path, where + f, f"{val} is not on {date_s}")
            _check_event_values(path, key, ev, where)
    hours = _require(path, doc, "hours", list)
    acts = np.zeros((24, SLOTS_PER_HOUR), dtype=np.int64)
    moods = np.zeros(24, dtype=np.float64)
    seen = np.zeros(24, dtype=bool)
    for i, entry in enumerate(hours):
        where = f"hours[{i}]."
        if not isinstance(entry, dict):
            raise LogFormatError(path, f"hours[{i}]", "expected an object")
        h = _require(path, entry, "hour", int, where)
        if not 0 <= h <= 23:
            raise LogFormatError(path, where + "hour", f"{h} is out of range 0..23")
        if seen[h]:
            raise LogFormatError(path, where + "hour", f"hour {h} appears twice")
        seen[h] = True
        codes = _require(path, entry, "activities", list, where)
        if len(codes) != SLOTS_PER_HOUR:
            raise LogFormatError(path, where + "activities", f"expected {SLOTS_PER_HOUR} slots, got {len(codes)}")
        for s, c in enumerate(codes):
            if isinstance(c, bool) or not isinstance(c, int) or c not in ACTIVITY_BY_CODE:
                raise LogFormatError(path, f"{where}activities[{s}]", f"unknown activity code {c!r}")
        mood = _require(path, entry, "mood", (int, float), where)
        if not -1.0 <= mood <= 1.0:
            raise LogFormatError(path, where + "mood", f"{mood} is outside [-1, 1]")
        acts[h], moods[h] = codes, mood
    if not seen.all():
        missing = ", ".join(str(h) for h in np.flatnonzero(~seen))
        raise LogFormatError(path, "hours", f"missing hour(s) {missing}")
    return DayLog(user_id=uid, date=date_s, activities=acts, moods=moods)


def read_day_log(path: str | Path) -> DayLog:
    """Read and validate one day log file."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder, expected a day log file" if path.is_dir() else "does not exist"
        raise LogFormatError(path, "<file>", what)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise LogFormatError(path, "<json>", f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise LogFormatError(path, "<file>", f"not UTF-8 text: {e.reason}") from None
    return parse_day_log(path, doc)


def user_folders(root: str | Path) -> list[Path]:
    """The user folders of a logs root, sorted by name (files/folders starting with _ or . skipped)."""
    root = Path(root)
    if not root.exists():
        raise InputError(Problem(f"logs folder {root}", "does not exist"))
    if not root.is_dir():
        raise InputError(Problem(f"logs folder {root}", "is a file, expected a folder of user folders"))
    users = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    if not users:
        raise InputError(Problem(f"logs folder {root}", "has no user folders (one sub-folder per user)"))
    return users


def read_user_logs(folder: str | Path) -> list[DayLog]:
    """All day logs of one user's folder (``*.json``), sorted by date; raises at the first problem.

    The folder is named after the user: every log's ``user_id`` must be the folder's name (so one
    user cannot hide in two folders), and no date may appear twice.
    """
    folder = Path(folder)
    files = sorted(folder.glob("*.json"))
    if not files:
        raise InputError(Problem(f"user folder {folder}", "has no *.json day logs"))
    logs = [read_day_log(f) for f in files]
    _check_user_folder(folder, files, logs)
    return logs


def _check_user_folder(folder: Path, files: list[Path], logs: list[DayLog]) -> None:
    dates: dict[str, Path] = {}
    for f, log in zip(files, logs, strict=True):
        if log.user_id != folder.name:
            raise LogFormatError(f, "user_id", f"{log.user_id!r} differs from its folder's name {folder.name!r}")
        if log.date in dates:
            raise LogFormatError(f, "date", f"{log.date} is also the date of {dates[log.date].name}")
        dates[log.date] = f


def check_logs_folder(root: str | Path) -> int:
    """Validate every day log under ``root`` and report every bad file at once; returns the user count.

    Raises :class:`~fedmood.errors.InputError` with one problem per bad file (its first problem) and
    per bad folder.
    """
    problems = Problems()
    folders = user_folders(root)
    for folder in folders:
        files = sorted(folder.glob("*.json"))
        if not files:
            problems.add(f"user folder {folder}", "has no *.json day logs")
            continue
        read = [(f, problems.absorb(read_day_log, f)) for f in files]
        good = [(f, log) for f, log in read if log is not None]  # the folder's checks on the files that parse
        problems.absorb(_check_user_folder, folder, [f for f, _ in good], [log for _, log in good])
    problems.raise_if_any()
    return len(folders)
