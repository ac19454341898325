"""The skill report of a back-test (`geowarn replay --events`): per event the highest level and
lead times in the 72 h before it; hits, alert days and false alert days, against a hand count."""
import json
import subprocess
import sys
from collections import namedtuple

import pytest

from geowarn.daemon.config import ConfigError
from geowarn.daemon.skill import read_events, skill
from geowarn.drivers.timestamps import format_ts, parse_ts

import datasets

Change = namedtuple("Change", "ts site level")
D, H = 86400.0, 3600.0
T0 = parse_ts("2026-03-01T00:00:00Z")


def _events(tmp_path, text):
    p = tmp_path / "events.csv"
    p.write_text(text)
    return read_events(p)


def test_highest_level_lead_times_hits_and_false_alert_days(tmp_path):
    # site A: blue day 2 06:00, yellow day 3 12:00, orange day 4 00:00, normal day 6 00:00;
    # yellow again day 20 10:00 to day 21 02:00 (no event follows: 2 false alert days)
    changes = [Change(T0 + 2 * D + 6 * H, "A", "blue"), Change(T0 + 3 * D + 12 * H, "A", "yellow"),
               Change(T0 + 4 * D, "A", "orange"), Change(T0 + 6 * D, "A", "normal"),
               Change(T0 + 20 * D + 10 * H, "A", "yellow"), Change(T0 + 21 * D + 2 * H, "A", "normal"),
               # site B: blue only, for a day, long before its event
               Change(T0 + 1 * D, "B", "blue"), Change(T0 + 2 * D, "B", "normal")]
    record = {"A": (T0, T0 + 30 * D), "B": (T0, T0 + 30 * D)}
    events = _events(tmp_path, "date,site,what\n"
                               f"{format_ts(T0 + 4 * D + 18 * H)},A,slide\n"   # during the orange
                               f"{format_ts(T0 + 10 * D)[:10]},B,slide\n"      # a date only
                               f"{format_ts(T0 + 60 * D)[:10]},,after the record\n")
    sk = skill(changes, events, record)
    a, b, late = sk["events"]
    assert a["highest"] == "orange" and a["hit"]
    # lead times: to 4 d 18 h from blue (2 d 6 h), yellow (3 d 12 h), orange (4 d 0 h)
    assert a["lead_h"] == {"blue": 60.0, "yellow": 30.0, "orange": 18.0}
    assert b["highest"] == "normal" and not b["hit"] and b["lead_h"] == {}
    assert late["judged"] and late["note"] == "the record ends before the event"
    assert sk["hits"] == 1 and sk["events_judged"] == 3
    # alert days of A: days 3, 4, 5 (yellow 3 d 12 h until 6 d 0 h) and 20, 21; B none
    assert sk["alert_days"] == 5
    # the event at 4 d 18 h follows days 3, 4 (and day 5? it is before it: not within 72 h after)
    assert sk["false_alert_days"] == 3 and sk["sites"]["A"]["false_alert_days"] == 3


def test_an_event_without_a_site_is_any_site_and_a_date_is_its_whole_day(tmp_path):
    changes = [Change(T0 + 5 * D + 15 * H, "A", "yellow"), Change(T0 + 5 * D + 20 * H, "B", "red")]
    record = {"A": (T0, T0 + 9 * D), "B": (T0, T0 + 9 * D)}
    sk = skill(changes, _events(tmp_path, f"date\n{format_ts(T0 + 5 * D)[:10]}\n"), record)
    (e,) = sk["events"]
    # reached during the event's day: negative lead (counted to the day's start)
    assert e["highest"] == "red" and e["lead_h"] == {"blue": -15.0, "yellow": -15.0, "orange": -20.0, "red": -20.0}
    assert sk["hit_level"] == "yellow" and sk["hits"] == 1


def test_a_bad_events_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError) as e:
        _events(tmp_path, "when,site\n2026-01-01,A\n")
    assert "date column" in str(e.value)
    with pytest.raises(ConfigError) as e:
        _events(tmp_path, "date,site\n2026-01-01,A\nlast tuesday,A\n")
    assert e.value.line == 3 and "unparseable" in str(e.value)


def test_replay_with_events_reports_the_skill(tmp_path):
    _, truth = datasets.voight(tmp_path / "v.csv")
    (tmp_path / "ev.csv").write_text(f"date,site\n{format_ts(truth['tf'])},VOIGHT\n")
    out = tmp_path / "r.json"
    cli = [sys.executable, "-m", "geowarn.daemon.cli", "replay", str(tmp_path / "v.csv"), "--auto-register"]
    p = subprocess.run([*cli, "--events", str(tmp_path / "ev.csv"), "--report", str(out)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    sk = json.loads(out.read_text())["skill"]
    (e,) = sk["events"]
    assert e["hit"] and e["highest"] in ("orange", "red") and e["lead_h"]["orange"] > 24
    assert sk["hits"] == 1 and sk["alert_days"] >= 1
    p = subprocess.run([*cli, "--events", str(tmp_path / "ev.csv")], capture_output=True, text=True)
    assert "skill against 1 events: 1 of 1 judged hit" in p.stdout
