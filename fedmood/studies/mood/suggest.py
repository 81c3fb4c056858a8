"""Suggestions a person can act on: discretionary activity items, for a context, on the mood scale.

An activity item is a cluster of hourly fragments, described by what its centre contains. It is
*discretionary* when most of its centre's slots are activities a person can choose to do for their
mood: the UKTUS kinds ``leisure`` and ``phone`` (``suggest.kinds``); paid work, sleep, personal
care and eating are never suggested. A suggestion is for a context, an hour of the day and a
weekday or weekend day: what the user's own logs show them doing then (within ``window`` hours)
is what is feasible; with nothing there, any discretionary item they have done. Predictions are
clipped to the mood scale, and each comes with an uncertainty: the standard error of the user's
own moods in that item, their overall spread counted as one more observation (so that a few
identical moods do not read as certainty).

Everything here runs on the device, from the global item parameters and the user's own ones. The
phone's view, from the model a run left in the device's store:

    python -m fedmood.studies.mood.suggest --store devices/node-0/store --hour 19 [--weekend]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from fedmood.studies.mood.data.activities import ACTIVITIES, KINDS
from fedmood.studies.mood.data.local import LocalData
from fedmood.studies.mood.model import EmbeddingDotBias

#: Activity kinds a person can choose for their mood (UKTUS leisure and short phone-based ones).
DISCRETIONARY_KINDS = ("leisure", "phone")
#: The mood scale the labels live on; predictions are clipped to it.
MOOD_SCALE = (-1.0, 1.0)


@dataclass(frozen=True)
class SuggestContext:
    """When a suggestion is for: an hour of the day (None: any) and a weekend day or not (None: any)."""

    hour: int | None = None
    weekend: bool | None = None
    window: int = 1  # hours either side of ``hour`` that count as "that time"

    @classmethod
    def from_cfg(cls, cfg: dict) -> SuggestContext:
        """The context of the ``suggest`` config block."""
        s = cfg.get("suggest") or {}
        hour, weekend = s.get("hour"), s.get("weekend")
        return cls(
            None if hour is None else int(hour), None if weekend is None else bool(weekend), int(s.get("window", 1))
        )

    def matches(self, hours: np.ndarray, weekend: np.ndarray) -> np.ndarray:
        """Which rows (by their hour and weekend flag) fall in this context."""
        ok = np.ones(len(hours), dtype=bool)
        if self.hour is not None:
            distance = np.abs((np.asarray(hours) - self.hour + 12) % 24 - 12)
            ok &= distance <= self.window
        if self.weekend is not None:
            ok &= np.asarray(weekend, dtype=bool) == self.weekend
        return ok

    def describe(self) -> str:
        """``19:00 on a weekday``, ``any time``."""
        when = "any time" if self.hour is None else f"{self.hour:02d}:00"
        return when + ("" if self.weekend is None else " on a weekend day" if self.weekend else " on a weekday")


@dataclass(frozen=True)
class Suggestion:
    """One suggested activity item for one user."""

    item: int
    activities: str  # what the item contains
    predicted: float  # predicted mood, on the mood scale
    gain: float  # predicted mood minus the user's average mood
    uncertainty: float  # one standard error, from the user's own hours in this item
    own_hours: int  # how many of the user's own training hours fell in this item

    def to_dict(self) -> dict:
        return asdict(self)


def describe_centre(centre: np.ndarray | None, item: int) -> str:
    """Human-readable description of an activity item (its centre's activities per slot)."""
    if centre is None:
        return f"item {item}"
    counts = Counter(ACTIVITIES[int(v)].name for v in centre)
    return ", ".join(f"{name} x{c}" if c > 1 else name for name, c in counts.most_common())


def discretionary_items(centres: np.ndarray | None, n_items: int, kinds=DISCRETIONARY_KINDS) -> np.ndarray:
    """Per item, whether most of its centre's slots are of the given (discretionary) kinds.

    Without centres (a plain ratings table) every item counts: nothing is known of its content.
    """
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"suggest.kinds: {unknown} are not activity kinds (known: {', '.join(KINDS)})")
    if centres is None:
        return np.ones(n_items, dtype=bool)
    kind_of = np.array([a.kind in kinds for a in ACTIVITIES])
    return kind_of[np.asarray(centres)].mean(axis=1) > 0.5


def feasible_items(
    user_items: np.ndarray,
    hours: np.ndarray | None,
    weekend: np.ndarray | None,
    context: SuggestContext,
    allowed: np.ndarray,
) -> np.ndarray:
    """The allowed items the user does in ``context`` (by their own rows); else any allowed item they
    have done; else every allowed item. Sorted item ids."""
    done = np.asarray(user_items)
    if hours is not None and weekend is not None:
        at_that_time = np.unique(done[context.matches(hours, weekend)])
        candidates = at_that_time[allowed[at_that_time]]
        if len(candidates):
            return candidates
    ever = np.unique(done)
    candidates = ever[allowed[ever]]
    return candidates if len(candidates) else np.flatnonzero(allowed)


@torch.no_grad()
def predicted_moods(model: EmbeddingDotBias, user: int) -> np.ndarray:
    """The model's mood for ``user`` in every item, clipped to the mood scale."""
    n_items = model.item_factors.num_embeddings
    model.eval()
    pred = model(torch.full((n_items,), user, dtype=torch.long), torch.arange(n_items)).numpy()
    return np.clip(pred.astype(np.float64), *MOOD_SCALE)


def suggest(
    predicted: np.ndarray,
    candidates: np.ndarray,
    user_items: np.ndarray,
    user_moods: np.ndarray,
    n: int,
    centres: np.ndarray | None,
) -> list[Suggestion]:
    """The ``n`` candidates with the highest predicted mood, best first, each with its uncertainty.

    ``user_items`` / ``user_moods`` are the user's own training rows.
    """
    user_items, user_moods = np.asarray(user_items), np.asarray(user_moods, dtype=np.float64)
    mean = float(user_moods.mean()) if len(user_moods) else 0.0
    spread = float(user_moods.std(ddof=1)) if len(user_moods) > 1 else 1.0
    order = np.asarray(candidates)[np.argsort(-predicted[candidates], kind="stable")][:n]
    out = []
    for item in order:
        own = user_moods[user_items == item]
        # the spread of the user's moods in this item, with their overall spread as one more
        # observation: a few identical moods do not make a certain prediction
        variance = (float(((own - own.mean()) ** 2).sum()) + spread**2) / max(len(own), 1) if len(own) else spread**2
        out.append(
            Suggestion(
                item=int(item),
                activities=describe_centre(None if centres is None else centres[item], int(item)),
                predicted=float(predicted[item]),
                gain=float(predicted[item] - mean),
                uncertainty=float(np.sqrt(variance / max(len(own), 1))),
                own_hours=len(own),
            )
        )
    return out


def suggest_kinds(cfg: dict) -> tuple[str, ...]:
    """The activity kinds the ``suggest`` config block allows."""
    return tuple((cfg.get("suggest") or {}).get("kinds", DISCRETIONARY_KINDS))


@dataclass(frozen=True)
class OwnHours:
    """A user's training hours: the item, mood, hour of day and weekend flag of each."""

    items: np.ndarray
    moods: np.ndarray
    hours: np.ndarray | None
    weekend: np.ndarray | None

    @classmethod
    def of(cls, data: LocalData, centres: np.ndarray | None) -> OwnHours:
        rows = data.rows(centres)
        items, moods = rows.part("train")
        hours = data.hours[rows.train] if data.hours is not None else None
        weekend = data.weekend[rows.train] if data.weekend is not None else None
        return cls(items, moods, hours, weekend)

    def feasible(self, context: SuggestContext, allowed: np.ndarray) -> np.ndarray:
        """:func:`feasible_items` of these hours."""
        return feasible_items(self.items, self.hours, self.weekend, context, allowed)


def user_suggestions(
    predicted: np.ndarray, data: LocalData, centres: np.ndarray | None, context: SuggestContext, kinds, n: int
) -> list[Suggestion]:
    """The top-``n`` suggestions for one user in ``context``, from ``predicted`` (their mood per item)."""
    own = OwnHours.of(data, centres)
    allowed = discretionary_items(centres, len(predicted), kinds)
    return suggest(predicted, own.feasible(context, allowed), own.items, own.moods, n, centres)


def stored_suggestions(store, context: SuggestContext, n: int, kinds=DISCRETIONARY_KINDS) -> list[Suggestion]:
    """The suggestions from the model a run left in a device's store (its own data, its own model)."""
    from fedmood.data.store import StoreError
    from fedmood.errors import InputError
    from fedmood.studies.mood.data.device_store import FINAL_MODEL, FINAL_MODEL_META, device_data_from_store
    from fedmood.studies.mood.model import GLOBAL_KEYS, LOCAL_KEYS

    if FINAL_MODEL not in store or FINAL_MODEL_META not in store:
        raise InputError(f"{store.root}: no model in this store yet (a run on a deployment or with stores keeps one)")
    try:
        meta, arrays = store.get_json(FINAL_MODEL_META), store.get_arrays(FINAL_MODEL)
        data = device_data_from_store(store, float(meta["val_frac"]), int(meta["seed"]))
    except StoreError as err:
        raise InputError(str(err)) from None
    n_items = arrays["item_factors.weight"].shape[0]
    model = EmbeddingDotBias(1, n_items, int(meta["n_factors"]), tuple(meta["y_range"]))
    model.load_state_dict({k: torch.as_tensor(arrays[k]) for k in GLOBAL_KEYS + LOCAL_KEYS})
    return user_suggestions(predicted_moods(model, 0), data, arrays.get("centres"), context, kinds, n)


def main(argv: list[str] | None = None) -> None:
    """Print a user's suggestions from their device's store."""
    from fedmood.data.store import EncryptedStore, StoreError
    from fedmood.errors import InputError

    ap = argparse.ArgumentParser(prog="python -m fedmood.studies.mood.suggest", description=main.__doc__)
    ap.add_argument("--store", required=True, help="the device's store folder (e.g. devices/node-0/store)")
    ap.add_argument("--key-file", help="its key file (default: <store>.key beside it, else $FEDMOOD_STORE_KEY)")
    ap.add_argument("--hour", type=int, choices=range(24), metavar="0-23", help="the hour (default: any time)")
    day = ap.add_mutually_exclusive_group()
    day.add_argument("--weekend", action="store_true", help="for a Saturday or Sunday")
    day.add_argument("--weekday", action="store_true", help="for a weekday")
    ap.add_argument("-n", type=int, default=3, help="how many suggestions (default 3)")
    ap.add_argument("--kinds", default=",".join(DISCRETIONARY_KINDS), help="activity kinds that may be suggested")
    args = ap.parse_args(argv)
    root = Path(args.store)
    key_file = args.key_file or (str(root) + ".key" if Path(str(root) + ".key").is_file() else None)
    if not root.is_dir():
        raise InputError(f"{root}: no such store folder")
    try:
        store = EncryptedStore.open(root, key_file)
    except StoreError as err:
        raise InputError(f"{root}: {err}") from None
    weekend = True if args.weekend else False if args.weekday else None
    context = SuggestContext(args.hour, weekend)
    try:
        shown = stored_suggestions(store, context, args.n, tuple(k for k in args.kinds.split(",") if k))
    except ValueError as err:
        raise InputError(str(err)) from None
    print(f"Suggestions for {context.describe()} (mood scale -1..+1, ± one standard error from your own hours):")
    for rank, s in enumerate(shown, start=1):
        print(f"  {rank}. {s.activities}: {s.predicted:+.2f} ± {s.uncertainty:.2f} "
              f"(gain {s.gain:+.2f} over your average; {s.own_hours} of your hours)")  # fmt: skip
    if not shown:
        print("  nothing you do then can be suggested", file=sys.stderr)


if __name__ == "__main__":
    from fedmood.cli import run_cli

    run_cli(main)
