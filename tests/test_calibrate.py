"""`geowarn calibrate`: thresholds proposed from a site's record, checked against a hand
computation on generated records; the snippet is a rule file the rules loader accepts; nothing
is written unless --write, and never over a file."""
import csv
import math
import subprocess
import sys

import numpy as np
import yaml

from geowarn.daemon.journal import Entry, Journal, journal_path
from geowarn.daemon.rules import load_rules
from geowarn.drivers.base import Reading
from geowarn.drivers.timestamps import format_ts

from datasets import REPO

CLI = [sys.executable, "-m", "geowarn.daemon.cli", "calibrate"]
T0 = 1_600_000_000.0 - 1_600_000_000.0 % 86400  # a UTC midnight


def _write(path, rows):
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ts", "site", "device", "kind", "channel", "value"])
        w.writerows(rows)
    return path


def _snippet(out: str, site: str) -> dict:
    text = out.split(f"# --- sites/{site}.yaml ---\n", 1)[1].split("# --- sites/", 1)[0]
    return yaml.safe_load(text)


def test_two_years_of_rain_give_dynaslopes_t2_rule(tmp_path):
    """Three years of hourly rain, one storm a year whose 72 h total is known: T2 is the median
    of the yearly maxima; 1-day yellow T2/2, 3-day yellow T2, blue 0.75 of each."""
    rng = np.random.default_rng(3)
    hours = np.zeros(3 * 365 * 24)
    wet = rng.random(len(hours)) < 0.05
    hours[wet] = rng.uniform(0.1, 0.5, wet.sum())  # drizzle: no 72 h reaches 40 mm
    storms = [150.0, 210.0, 180.0]  # each over 48 h, in the middle of its year
    for y, total in enumerate(storms):
        a = y * 8760 + 4000
        hours[a - 100:a + 200] = 0.0
        hours[a:a + 48] = total / 48
    rows = [[format_ts(T0 + i * 3600 + 1800), "RAINY", "g1", "rain", "mm", f"{v:.6f}"] for i, v in enumerate(hours)]
    p = subprocess.run([*CLI, str(_write(tmp_path / "r.csv", rows))], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    doc = _snippet(p.stdout, "RAINY")
    t2 = 180.0  # median of 150, 210, 180
    totals = doc["devices"]["g1"]["rainfall"]["totals_mm"]
    assert totals[72]["yellow"] == t2 and totals[72]["blue"] == 0.75 * t2
    assert totals[24]["yellow"] == t2 / 2 and totals[24]["blue"] == 0.75 * t2 / 2
    # the current 24 h orange/red (160/200) stay above the proposal; 72 h has none
    assert totals[24]["orange"] == 160 and totals[72]["orange"] is None
    assert "median of 3 yearly maxima" in p.stdout and "150.0, 210.0, 180.0" in p.stdout


def test_a_short_rain_record_gives_percentiles_of_daily_maxima(tmp_path):
    rng = np.random.default_rng(5)
    n_days = 200
    t = T0 + np.sort(rng.choice(n_days * 144, 4000, replace=False)) * 600.0 + 600.0  # 10-minute reports
    v = np.round(rng.gamma(0.6, 2.5, len(t)), 1)
    rows = [[format_ts(a), "SHORT", "g1", "rain", "mm", b] for a, b in zip(t, v)]
    p = subprocess.run([*CLI, str(_write(tmp_path / "r.csv", rows))], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    totals = _snippet(p.stdout, "SHORT")["devices"]["g1"]["rainfall"]["totals_mm"]
    # by hand: each report in its hour, the 3 h total ending at every hour, its maximum per day
    first_h = math.floor(t[0] / 3600)
    hourly = {}
    for a, b in zip(t, v):
        hourly[math.floor(a / 3600) - first_h] = hourly.get(math.floor(a / 3600) - first_h, 0.0) + b
    n_h = max(hourly) + 1
    days = n_h // 24
    daily = [max(sum(hourly.get(h - k, 0.0) for k in range(3) if h - k >= 0) for h in range(d * 24, d * 24 + 24))
             for d in range(days)]

    def nice_up(x):
        e = math.floor(math.log10(x)) - 1
        return round(math.ceil(x / 10 ** e) * 10 ** e, max(0, -e))

    assert totals[3]["blue"] == nice_up(np.percentile(daily, 99))
    assert totals[3]["yellow"] == nice_up(np.percentile(daily, 99.7))
    assert totals[3]["orange"] == 100 and totals[3]["red"] == 120  # kept from the current rules
    assert f"percentiles of the {days} daily maxima" in p.stdout


def test_deformation_noise_floors_from_a_daily_survey_and_a_gnss(tmp_path):
    """A prism read daily with σ = 3 mm and a 2-hourly GNSS with σ = 2 mm (dh derived from
    dx, dy as the service derives it): the noise found, the spike floor hampel_k·σ and the rate
    floor 5·σ·√(12/n)/W over the rule's window."""
    rng = np.random.default_rng(9)
    td = T0 + np.arange(400) * 86400.0
    prism = 0.5 * np.arange(400) + rng.normal(0, 3.0, 400)
    tg = T0 + np.arange(0, 90 * 86400, 7200.0)
    dx = 100 + 0.1 * np.arange(len(tg)) / 12 + rng.normal(0, 2.0, len(tg))
    dy = 50 + rng.normal(0, 2.0, len(tg))
    rows = [[format_ts(a), "SLOPE", "p1", "crack", "width", b] for a, b in zip(td, prism)]
    rows += [[format_ts(a), "SLOPE", "g1", "gnss", ch, x] for a, x, y in zip(tg, dx, dy) for ch, x in (("dx", x), ("dy", y))]
    rows += [[format_ts(a), "SLOPE", "g1", "gnss", "dz", z] for a, z in zip(tg, rng.normal(0, 1.0, len(tg)))]
    p = subprocess.run([*CLI, str(_write(tmp_path / "s.csv", rows))], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    doc = _snippet(p.stdout, "SLOPE")["devices"]
    spike = doc["p1"]["quality"]["spike_floor"]
    assert 0.85 * 5 * 3.0 <= spike <= 1.15 * 5 * 3.0  # crack rule: hampel_k 5
    # the GNSS: dh (≈ dx here) has σ ≈ 2, dz ≈ 1: the device's floors are the larger channel's
    gspike = doc["g1"]["quality"]["spike_floor"]
    assert 0.85 * 10 <= gspike <= 1.15 * 10
    # rate floor over the GNSS rule's 168 h window: 84 readings, 5·2·√(12/84)/7 days ≈ 0.54 mm/day,
    # below the GNSS blue of 2 mm/day: kept
    assert doc["g1"]["threshold"]["rate"]["blue"] == 2
    line = next(ln for ln in p.stdout.splitlines() if "gnss g1 dh" in ln)
    sigma = float(line.split("noise σ ")[1].split()[0])
    floor = next(ln for ln in p.stdout.splitlines() if "rate floor over the 168 h" in ln and "dh" not in ln)
    assert abs(float(floor.split("= ")[1].split()[0]) - 5 * sigma * math.sqrt(12 / 84) / 7) < 0.01
    # the daily prism: the crack rule's 72 h window holds 3 daily readings, under rate_min_points
    assert "holds 3 readings at this cadence, fewer than rate_min_points 4" in p.stdout


def test_a_noisy_series_raises_a_blue_rate_it_could_never_reach(tmp_path):
    """A tiltmeter so noisy (σ 0.1°, hourly) that its blue rate, 0.05°/day, is within its
    scatter over the 72 h window: 5·σ·√(12/72)/3 days ≈ 0.068°/day."""
    rng = np.random.default_rng(2)
    t = T0 + np.arange(0, 60 * 86400, 3600.0)
    rows = [[format_ts(a), "TILTY", "t1", "tilt", ch, rng.normal(0, 0.1)] for a in t for ch in ("x", "y")]
    p = subprocess.run([*CLI, str(_write(tmp_path / "t.csv", rows))], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    rate = _snippet(p.stdout, "TILTY")["devices"]["t1"]["threshold"]["rate"]
    sigma = max(float(ln.split("noise σ ")[1].split()[0]) for ln in p.stdout.splitlines() if "noise σ" in ln)
    floor = 5 * sigma * math.sqrt(12 / 72) / 3
    assert 0.05 < floor <= rate["blue"] <= floor * 1.1
    assert rate["yellow"] == 0.2 and "blue raised to the rate floor (was 0.05)" in p.stdout


def test_writes_only_with_write_and_never_over_a_file(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "defaults.yaml").write_text((REPO / "alert_rules" / "defaults.yaml").read_text())
    rng = np.random.default_rng(1)
    t = T0 + np.arange(0, 30 * 86400, 7200.0)
    src = _write(tmp_path / "c.csv", [[format_ts(a), "CR1", "c1", "crack", "width", 10 + rng.normal(0, 1)] for a in t])
    p = subprocess.run([*CLI, str(src), "--rules-dir", str(rules)], capture_output=True, text=True)
    assert p.returncode == 0 and not (rules / "sites").exists()
    p = subprocess.run([*CLI, str(src), "--write"], capture_output=True, text=True)
    assert p.returncode == 2 and "no rules directory of your own" in p.stderr
    p = subprocess.run([*CLI, str(src), "--rules-dir", str(rules), "--write"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    written = rules / "sites" / "CR1.yaml"
    assert written.is_file()
    rule = load_rules(rules).for_device("crack", "CR1", "c1")
    assert 4 <= rule.quality.spike_floor <= 6
    before = written.read_text()
    p = subprocess.run([*CLI, str(src), "--rules-dir", str(rules), "--write"], capture_output=True, text=True)
    assert p.returncode == 2 and "exists" in p.stderr and written.read_text() == before


def test_from_a_state_directory(tmp_path):
    rng = np.random.default_rng(4)
    with Journal(journal_path(tmp_path / "state")) as j:
        j.write(Entry(readings=[(Reading("c1", "crack", "width", T0 + i * 3600.0, 5 + rng.normal(0, 0.4)), "S1")
                                for i in range(500)]
                      + [(Reading("c9", "crack", "width", T0 + i * 3600.0, 1.0), "S9") for i in range(20)]))
    p = subprocess.run([*CLI, "--state-dir", str(tmp_path / "state"), "--site", "S1"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "sites/S1.yaml" in p.stdout and "S9" not in p.stdout
    assert "500 readings" in p.stdout
    p = subprocess.run([*CLI, "--state-dir", str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert p.returncode == 2 and "no journal here" in p.stderr
    p = subprocess.run(CLI, capture_output=True, text=True)
    assert p.returncode == 2 and "give a record" in p.stderr
