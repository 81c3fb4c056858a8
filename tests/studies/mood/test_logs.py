import json

import numpy as np
import pytest

from fedmood.data.ratings import RatingsFormatError, index_ratings, read_ratings_table
from fedmood.studies.mood.data.fragments import load_user_fragments, split_into_fragments
from fedmood.studies.mood.data.logs import LogFormatError, read_day_log, read_user_logs


@pytest.fixture
def good_doc(small_logs):
    path = sorted((small_logs / "user0000").glob("*.json"))[0]
    return json.loads(path.read_text())


def _write(tmp_path, doc, name="2026-01-05.json"):
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return p


@pytest.mark.parametrize(
    "mutate, field, words",
    [
        (lambda d: d.pop("date"), "date", "missing"),
        (lambda d: d["hours"][3].update(hour=27), "hours[3].hour", "out of range"),
        (lambda d: d["hours"][5]["activities"].__setitem__(2, 9999), "hours[5].activities[2]", "unknown activity code"),
        (lambda d: d["hours"][0].pop("mood"), "hours[0].mood", "missing"),
        (lambda d: d["hours"][1].update(mood=3), "hours[1].mood", "outside"),
        (lambda d: d["hours"].pop(), "hours", "missing hour(s) 23"),
        (lambda d: d["hours"][2].update(hour=1), "hours[2].hour", "appears twice"),
        (lambda d: d["apps"][0].update(start="yesterday"), "apps[0].start", "not an ISO time"),
        (lambda d: d["locations"][0].update(place=99), "locations[0].place", "unknown UKTUS location"),
        (lambda d: d.update(format="other/2"), "format", "unsupported"),
        (lambda d: d["hours"][0].update(activities=[110]), "hours[0].activities", "expected 6 slots"),
    ],
)
def test_malformed_log_names_file_and_field(tmp_path, good_doc, mutate, field, words):
    mutate(good_doc)
    path = _write(tmp_path, good_doc)
    with pytest.raises(LogFormatError) as err:
        read_day_log(path)
    assert err.value.field == field
    assert str(path) in str(err.value) and f"'{field}'" in str(err.value) and words in str(err.value)


def test_bad_json_names_file_and_line(tmp_path):
    path = _write(tmp_path, '{"format": "fedmood-daylog/1",\n "user_id": }')
    with pytest.raises(LogFormatError, match=r"2026-01-05.json: field '<json>': invalid JSON at line 2"):
        read_day_log(path)


def test_user_folder_must_be_one_user(tmp_path, good_doc):
    _write(tmp_path, good_doc)
    other = dict(good_doc, user_id="someone-else", date="2026-01-06")
    for h in ("apps", "web", "calls", "sms", "locations"):
        other[h] = []
    _write(tmp_path, other, "2026-01-06.json")
    with pytest.raises(LogFormatError, match="user_id"):
        read_user_logs(tmp_path)


def test_fragments_are_hours_in_order(small_logs):
    logs = read_user_logs(small_logs / "user0002")
    frags = split_into_fragments(logs)
    assert len(frags.moods) == 24 * len(logs)
    np.testing.assert_array_equal(frags.hours[:25], [*range(24), 0])
    np.testing.assert_array_equal(frags.slots[24 + 7], logs[1].activities[7])
    assert frags.moods[24 + 7] == logs[1].moods[7]
    assert frags.dates[24] == logs[1].date
    enc = load_user_fragments(small_logs / "user0002").encoded()
    assert enc.min() >= 0 and enc.shape == frags.slots.shape


def test_ratings_table_formats_and_errors(tmp_path):
    tsv = tmp_path / "r.tsv"
    tsv.write_text("a\tx\t1.0\na\ty\t-1\nb\tx\t0\nb\tz\t1\n")
    df = read_ratings_table(tsv)
    assert list(df.columns) == ["user", "item", "rating", "line"] and len(df) == 4
    users, n_items, labels = index_ratings(df, val_frac=0.5, seed=0)
    assert n_items == 3 and labels == ["x", "y", "z"] and len(users) == 2
    assert len(users[0].train) == 1 and len(users[0].val) == 1
    ml = tmp_path / "r.dat"
    ml.write_text("1::10::5::978300760\n2::10::3::978302109\n")
    assert read_ratings_table(ml)["rating"].tolist() == [5.0, 3.0]
    csv = tmp_path / "r.csv"
    csv.write_text("user,item,rating\n1,2,4\n1,3,oops\n")
    with pytest.raises(RatingsFormatError, match=r"r.csv: line 3: field 'rating': not a number"):
        read_ratings_table(csv)
    short = tmp_path / "s.csv"
    short.write_text("1,2\n")
    with pytest.raises(RatingsFormatError, match=r"s.csv: line 1: expected 3 fields"):
        read_ratings_table(short)
