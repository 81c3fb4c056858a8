"""Seeded generator of synthetic phone day logs, coded with UK Time Use Survey 2014-15 activities.

Each user has a latent taste: a low-rank affinity for every activity (profile factors times
activity factors, plus an activity bias and per-user noise). A day is a UKTUS-style diary of
10-minute slots: sleep at night, work hours on weekdays, meals, and leisure hours whose activity is
drawn with a preference for what the user likes; some slots are interrupted by short phone-based
activities. The phone events (app sessions, web visits, calls, texts, GPS fixes) follow from the
slots, and each hour is labelled with its activities and a mood driven by the user's affinity for
them. One JSON file per user per day, in the format :mod:`fedmood.studies.mood.data.logs` reads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from fedmood.studies.mood.data.activities import SLOT_MINUTES, SLOTS_PER_HOUR, Activity, activity_set
from fedmood.studies.mood.data.logs import LOG_FORMAT

_BASE_LAT, _BASE_LON = 54.5973, -5.9301  # Belfast, where "Towards 'Her'" was written


@dataclass(frozen=True)
class GeneratorConfig:
    """What the generator makes; every field is a Hydra ``data`` config key."""

    n_users: int = 50
    n_days: int = 20
    n_activities: int = 14
    n_profiles: int | None = None  # distinct taste profiles (paper: 4); None = one per user
    rank: int = 3
    taste_noise: float = 0.15
    mood_noise: float = 0.15
    mood_scale: str = "ternary"  # "ternary" ({-1, 0, 1}, as the paper) or "continuous" ([-1, 1])
    neutral_band: float = 0.2  # |mood signal| below this is labelled 0 on the ternary scale
    interruption_prob: float = 0.2  # chance a waking slot is taken by a short phone activity
    start_date: str = "2026-01-05"
    seed: int = 4006

    def __post_init__(self) -> None:
        if self.n_users < 1 or self.n_days < 1:
            raise ValueError("n_users and n_days must be >= 1")
        if self.mood_scale not in ("ternary", "continuous"):
            raise ValueError(f"mood_scale must be 'ternary' or 'continuous', got {self.mood_scale!r}")
        if self.n_profiles is not None and self.n_profiles < 1:
            raise ValueError("n_profiles must be >= 1 or None")
        activity_set(self.n_activities)  # validates the count

    def fingerprint(self) -> str:
        """A short hash identifying the generated data set (used as its cache folder name)."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def user_id(index: int) -> str:
    """The folder name of user ``index``."""
    return f"user{index:04d}"


def taste_affinity(cfg: GeneratorConfig, rng: np.random.Generator) -> np.ndarray:
    """Latent (user x activity) mood affinity in (-1, 1): low rank plus noise; sleep is neutral."""
    acts = activity_set(cfg.n_activities)
    n_prof = cfg.n_profiles or cfg.n_users
    profiles = rng.normal(size=(n_prof, cfg.rank))
    act_factors = rng.normal(size=(len(acts), cfg.rank)) / np.sqrt(cfg.rank)
    act_bias = rng.normal(scale=0.3, size=len(acts))
    users = profiles[np.arange(cfg.n_users) % n_prof]
    raw = users @ act_factors.T + act_bias + rng.normal(scale=cfg.taste_noise, size=(cfg.n_users, len(acts)))
    aff = np.tanh(raw)
    aff[:, [i for i, a in enumerate(acts) if a.kind == "sleep"]] = 0.0
    return aff


def _choose(rng: np.random.Generator, idx: list[int], aff_row: np.ndarray, temp: float = 2.0) -> int:
    """Draw an activity index from ``idx``, preferring those the user likes."""
    w = np.exp(temp * aff_row[idx])
    return idx[int(rng.choice(len(idx), p=w / w.sum()))]


def _day_slots(
    rng: np.random.Generator,
    acts: tuple[Activity, ...],
    aff_row: np.ndarray,
    weekday: bool,
    interruption_prob: float,
) -> np.ndarray:
    """Activity index per 10-minute slot of one day (24 x SLOTS_PER_HOUR)."""
    kinds = [a.kind for a in acts]
    by_kind = {k: [i for i, kk in enumerate(kinds) if kk == k] for k in set(kinds)}
    sleep, work, personal = by_kind["sleep"][0], by_kind["work"][0], by_kind["personal"][0]
    leisure = by_kind.get("leisure", []) + by_kind.get("phone", [])
    phone = by_kind.get("phone", []) or leisure
    wake = 7 + int(rng.random() < 0.3) + (0 if weekday else int(rng.integers(0, 3)))
    bed = 23 - int(rng.random() < 0.2)
    slots = np.empty((24, SLOTS_PER_HOUR), dtype=np.int64)
    for h in range(24):
        if h < wake or h >= bed:
            main = sleep
        elif h in (wake, 13, 19) or (h == 18 and rng.random() < 0.5):
            main = personal
        elif weekday and 9 <= h < 17:
            main = work
        else:
            main = _choose(rng, leisure, aff_row)
        slots[h] = main
        if main != sleep:
            hit = rng.random(SLOTS_PER_HOUR) < interruption_prob
            for s in np.flatnonzero(hit):
                slots[h, s] = _choose(rng, phone, aff_row)
    return slots


def _iso(date: dt.date, hour: int, minute: float) -> str:
    t = dt.datetime.combine(date, dt.time(hour)) + dt.timedelta(minutes=float(minute))
    return t.isoformat(timespec="seconds")


def _events(
    rng: np.random.Generator,
    acts: tuple[Activity, ...],
    slots: np.ndarray,
    date: dt.date,
    home: tuple[float, float],
    places: dict[int, tuple[float, float]],
) -> dict[str, list[dict]]:
    """Phone events consistent with the day's slots."""
    ev: dict[str, list[dict]] = {"apps": [], "web": [], "calls": [], "sms": [], "locations": []}
    for h in range(24):
        for s in range(SLOTS_PER_HOUR):
            a = acts[slots[h, s]]
            t0 = s * SLOT_MINUTES + rng.uniform(0, 3)
            if s == 0 or a.kind != "sleep":
                lat, lon = places.get(a.place, home)
                ev["locations"].append(
                    {
                        "time": _iso(date, h, t0),
                        "lat": round(lat + rng.normal(0, 2e-4), 6),
                        "lon": round(lon + rng.normal(0, 2e-4), 6),
                        "place": a.place,
                        "accuracy_m": round(float(rng.uniform(5, 40)), 1),
                    }
                )
            if a.apps:
                dur = rng.uniform(2, SLOT_MINUTES - 3.5)
                ev["apps"].append(
                    {"start": _iso(date, h, t0), "end": _iso(date, h, t0 + dur), "package": str(rng.choice(a.apps))}
                )
            if a.sites:
                page = int(rng.integers(1, 10_000))
                ev["web"].append({"time": _iso(date, h, t0 + 0.5), "url": f"https://{rng.choice(a.sites)}/page/{page}"})
            if a.calls:
                ev["calls"].append(
                    {
                        "time": _iso(date, h, t0),
                        "contact": f"c{rng.integers(1, 40):03d}",
                        "direction": str(rng.choice(["incoming", "outgoing"])),
                        "duration_s": int(rng.integers(20, 420)),
                    }
                )
            if a.texts:
                ev["sms"].append(
                    {
                        "time": _iso(date, h, t0),
                        "contact": f"c{rng.integers(1, 40):03d}",
                        "direction": str(rng.choice(["incoming", "outgoing"])),
                    }
                )
    return ev


def _moods(rng: np.random.Generator, slots: np.ndarray, aff_row: np.ndarray, cfg: GeneratorConfig) -> list[float]:
    signal = aff_row[slots].mean(axis=1) + rng.normal(scale=cfg.mood_noise, size=24)
    if cfg.mood_scale == "continuous":
        return [round(float(v), 4) for v in np.clip(signal, -1.0, 1.0)]
    return [int(v) for v in np.where(signal > cfg.neutral_band, 1, np.where(signal < -cfg.neutral_band, -1, 0))]


def generate_day_logs(cfg: GeneratorConfig) -> tuple[dict[str, list[dict]], np.ndarray]:
    """All day logs in memory, ``{user_id: [day log, ...]}``, and the true affinity matrix."""
    rng = np.random.default_rng(cfg.seed)
    acts = activity_set(cfg.n_activities)
    aff = taste_affinity(cfg, rng)
    start = dt.date.fromisoformat(cfg.start_date)
    out: dict[str, list[dict]] = {}
    for u in range(cfg.n_users):
        urng = np.random.default_rng([cfg.seed, u])
        home = (_BASE_LAT + urng.normal(0, 0.03), _BASE_LON + urng.normal(0, 0.05))
        places = {
            code: (home[0] + urng.normal(0, 0.02), home[1] + urng.normal(0, 0.03)) for code in (13, 14, 15, 18, 19)
        }
        days = []
        for d in range(cfg.n_days):
            date = start + dt.timedelta(days=d)
            slots = _day_slots(urng, acts, aff[u], date.weekday() < 5, cfg.interruption_prob)
            moods = _moods(urng, slots, aff[u], cfg)
            log = {
                "format": LOG_FORMAT,
                "user_id": user_id(u),
                "date": date.isoformat(),
                "timezone": "Europe/London",
                "slot_minutes": SLOT_MINUTES,
            }
            log.update(_events(urng, acts, slots, date, home, places))
            log["hours"] = [
                {"hour": h, "activities": [acts[i].code for i in slots[h]], "mood": moods[h]} for h in range(24)
            ]
            days.append(log)
        out[user_id(u)] = days
    return out, aff


def write_day_logs(cfg: GeneratorConfig, out_dir: str | Path) -> Path:
    """Generate the logs and write one ``<user>/<date>.json`` per day, atomically.

    The folder appears whole or not at all: it is written under a temporary name and renamed.
    A ``_generator.json`` beside the user folders records the config and the true affinities.
    """
    out = Path(out_dir)
    if out.exists():
        raise FileExistsError(f"{out} already exists")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    logs, aff = generate_day_logs(cfg)
    try:
        for uid, days in logs.items():
            (tmp / uid).mkdir(parents=True)
            for log in days:
                (tmp / uid / f"{log['date']}.json").write_text(json.dumps(log, separators=(",", ":")))
        acts = activity_set(cfg.n_activities)
        meta = {
            "config": asdict(cfg),
            "activity_codes": [a.code for a in acts],
            "true_affinity": np.round(aff, 5).tolist(),
        }
        (tmp / "_generator.json").write_text(json.dumps(meta, indent=1))
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def ensure_generated(cfg: GeneratorConfig, cache_dir: str | Path) -> Path:
    """The folder of logs for ``cfg`` under ``cache_dir``, generating it on first use."""
    out = Path(cache_dir) / f"logs-{cfg.fingerprint()}"
    if not out.exists():
        try:
            write_day_logs(cfg, out)
        except OSError:
            if not out.is_dir():  # not merely another process that generated it meanwhile
                raise
    return out
