"""Suggestions a person can act on: discretionary activity items, for a context, on the mood scale.

An activity item is a cluster of hourly fragments, described by what its centre contains. It is
*discretionary* when most of its centre's slots are activities a person can choose to do for their
mood: the UKTUS kinds ``leisure`` and ``phone`` (``suggest.kinds``); paid work, sleep, personal
care and eating are never suggested. A suggestion is for a context, an hour of the day and a
weekday or weekend day: what the user's own logs show them doing then (within ``window`` hours)
is what is feasible; with nothing there, any discretionary item they have done. Predictions are
clipped to the mood scale, and each comes with an uncertainty: the standard error of the user's
own moods in that item (their overall spread where they have fewer than two such hours).

Everything here runs on the device, from the global item parameters and the user's own ones.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

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
        sd = float(own.std(ddof=1)) if len(own) > 1 else spread
        out.append(
            Suggestion(
                item=int(item),
                activities=describe_centre(None if centres is None else centres[item], int(item)),
                predicted=float(predicted[item]),
                gain=float(predicted[item] - mean),
                uncertainty=sd / np.sqrt(max(len(own), 1)),
                own_hours=len(own),
            )
        )
    return out


def suggest_kinds(cfg: dict) -> tuple[str, ...]:
    """The activity kinds the ``suggest`` config block allows."""
    return tuple((cfg.get("suggest") or {}).get("kinds", DISCRETIONARY_KINDS))


def user_suggestions(
    predicted: np.ndarray, data: LocalData, centres: np.ndarray | None, context: SuggestContext, kinds, n: int
) -> list[Suggestion]:
    """The top-``n`` suggestions for one user in ``context``, from ``predicted`` (their mood per item)."""
    rows = data.rows(centres)
    items, moods = rows.part("train")
    hours = data.hours[rows.train] if data.hours is not None else None
    weekend = data.weekend[rows.train] if data.weekend is not None else None
    allowed = discretionary_items(centres, len(predicted), kinds)
    return suggest(predicted, feasible_items(items, hours, weekend, context, allowed), items, moods, n, centres)
