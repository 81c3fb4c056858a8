"""Activity and location codes of the UK Time Use Survey 2014-15 (UKTUS) used by fedmood.

UKTUS codes activities with the Harmonised European Time Use Survey (HETUS 2008) scheme, extended
with a few UK codes for mobile-device use; the diary records one activity per 10-minute slot and a
location code ("where") per slot. The codes below are the ones a phone logger can attribute, as in
Lyness' "Towards 'Her'" (which used 110, 1110, 3721, 5140, 5141, 7231, 7241, 8220, 8320, ...).
Each activity also carries the phone signals a logger would see while it happens, so that the
generator writes consistent app, web, call, text and place events.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Activity:
    """One UKTUS activity code with the phone signals it produces."""

    code: int
    name: str
    kind: str  # "sleep", "personal", "work", "leisure" or "phone" (short, phone-based activity)
    apps: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    place: int = 11  # UKTUS location code where it usually happens
    calls: bool = False
    texts: bool = False


#: UKTUS location ("where") codes used for GPS places.
LOCATIONS: dict[int, str] = {
    11: "Home",
    13: "Working place or school",
    14: "Other people's home",
    15: "Restaurant, cafe or pub",
    18: "Parks, countryside, seaside",
    19: "Shopping centres, markets, other shops",
    31: "Travelling on foot",
}

#: Activities in a fixed order; a config taking the first ``n`` keeps the core daily ones.
ACTIVITIES: tuple[Activity, ...] = (
    Activity(110, "Sleep", "sleep"),
    Activity(
        1110,
        "Working time in main job",
        "work",
        apps=("com.microsoft.teams", "com.google.android.gm"),
        sites=("docs.google.com",),
        place=13,
    ),
    Activity(210, "Eating", "personal"),
    Activity(
        7241, "Social media", "phone", apps=("com.instagram.android", "com.twitter.android", "com.facebook.katana")
    ),
    Activity(8320, "Listening to recordings (music)", "leisure", apps=("com.spotify.music",)),
    Activity(6110, "Walking and hiking", "leisure", apps=("com.google.android.apps.fitness",), place=18),
    Activity(8220, "Watching video", "leisure", apps=("com.google.android.youtube", "com.netflix.mediaclient")),
    Activity(5110, "Socialising with family", "leisure", place=11),
    Activity(
        7231,
        "Browsing the internet",
        "phone",
        apps=("com.android.chrome",),
        sites=("www.bbc.co.uk", "en.wikipedia.org", "www.theguardian.com"),
    ),
    Activity(5140, "Telephone conversation", "phone", apps=("com.google.android.dialer",), calls=True),
    Activity(5141, "Text messaging", "phone", apps=("com.google.android.apps.messaging",), texts=True),
    Activity(8210, "Watching TV", "leisure", apps=("com.bbc.iplayer",)),
    Activity(5120, "Visiting and receiving visitors", "leisure", apps=("com.whatsapp",), place=14),
    Activity(
        3721,
        "Shopping (online and in shops)",
        "leisure",
        apps=("com.amazon.mShop.android.shopping",),
        sites=("www.amazon.co.uk",),
        place=19,
    ),
    Activity(8120, "Reading books", "leisure", apps=("com.amazon.kindle",)),
    Activity(6120, "Jogging and running", "leisure", apps=("com.strava",), place=18),
)

ACTIVITY_BY_CODE: dict[int, Activity] = {a.code: a for a in ACTIVITIES}
#: The kinds of activity, as the UKTUS diary groups them.
KINDS = ("sleep", "personal", "work", "leisure", "phone")
MIN_ACTIVITIES = 6
SLOT_MINUTES = 10  # the UKTUS diary's time slot
SLOTS_PER_HOUR = 60 // SLOT_MINUTES


def activity_set(n_activities: int) -> tuple[Activity, ...]:
    """The first ``n_activities`` activities of :data:`ACTIVITIES` (sleep, work, eating first)."""
    if not MIN_ACTIVITIES <= n_activities <= len(ACTIVITIES):
        raise ValueError(f"n_activities must be between {MIN_ACTIVITIES} and {len(ACTIVITIES)}, got {n_activities}")
    return ACTIVITIES[:n_activities]
