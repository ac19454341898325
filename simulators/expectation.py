"""Judging a run against its scenario's `expect:` block. The drill runner gathers what happened
(an `Outcome`: level changes, notifications, faults, siren replies) from the service; this
module only compares, so the rules of "pass" live next to the schema they read."""
from __future__ import annotations

from dataclasses import dataclass, field

from geowarn.daemon.model.levels import Level

from .scenario import Scenario

HOUR = 3600.0


@dataclass
class Outcome:
    """What the warning chain did, on the simulated clock."""

    level_changes: dict[str, list[tuple[float, str]]] = field(default_factory=dict)  # site -> [(ts, level)]
    notified: dict[str, set[str]] = field(default_factory=dict)  # site -> roles that got a message
    device_faults: set[tuple[str, str]] = field(default_factory=set)  # (device, fault)
    siren_replies: dict[str, str] = field(default_factory=dict)  # alarm device -> succ | fail | none
    accelerated_sites: set[str] = field(default_factory=set)

    def max_level(self, site: str) -> str:
        return max((lv for _, lv in self.level_changes.get(site, [])), key=Level.of, default="normal")

    def first_at_or_above(self, site: str, level: str) -> float | None:
        return min((ts for ts, lv in self.level_changes.get(site, []) if Level.of(lv) >= Level.of(level)),
                   default=None)


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def judge(scenario: Scenario, outcome: Outcome, failure_times: dict[str, float]) -> list[Check]:
    """One check per stated expectation; the run passes when all do."""
    e = scenario.expect
    checks: list[Check] = []

    def check(name: str, passed: bool, detail: str) -> None:
        checks.append(Check(name, passed, detail))

    for site, level in e.levels.items():
        got = outcome.max_level(site)
        check(f"level {site}", got == level, f"reached {got}, expected {level}")
    for site, level in e.max_levels.items():
        got = outcome.max_level(site)
        check(f"at most {site}", Level.of(got) <= Level.of(level), f"reached {got}, at most {level}")
    others = sorted(set(outcome.level_changes) - set(e.levels) - set(e.max_levels))
    too_high = [f"{s} {outcome.max_level(s)}" for s in others
                if Level.of(outcome.max_level(s)) > Level.of(e.others_max_level)]
    check("other sites", not too_high, f"above {e.others_max_level}: {', '.join(too_high)}" if too_high
          else f"all at or below {e.others_max_level}")
    for site, roles in e.notified.items():
        missing = sorted(set(roles) - outcome.notified.get(site, set()))
        check(f"notified {site}", not missing, f"not notified: {', '.join(missing)}" if missing else ", ".join(roles))
    for site, roles in e.not_notified.items():
        wrong = sorted(set(roles) & outcome.notified.get(site, set()))
        check(f"not notified {site}", not wrong, f"notified anyway: {', '.join(wrong)}" if wrong else "none of them")
    for d in e.device_faults:
        seen = (d.device, d.fault) in outcome.device_faults
        check(f"fault {d.device}", seen, f"{d.fault} {'reported' if seen else 'never reported'}")
    if e.no_household_warning:
        households = sorted(s for s, roles in outcome.notified.items() if "household" in roles)
        check("no household warning", not households, f"households warned at {', '.join(households)}" if households
              else "no household was warned")
    if e.min_lead_time_h is not None:
        for site, tf in failure_times.items():
            first = outcome.first_at_or_above(site, e.lead_level)
            lead_h = None if first is None else (tf - first) / HOUR
            check(f"lead time {site}", lead_h is not None and lead_h >= e.min_lead_time_h,
                  f"no {e.lead_level} warning before failure" if lead_h is None
                  else f"{lead_h:.1f} h from the first {e.lead_level} warning to failure "
                       f"(needs {e.min_lead_time_h:g} h)")
    for dev, reply in e.sirens.items():
        got = outcome.siren_replies.get(dev, "none")
        check(f"siren {dev}", got == reply, f"replied {got}, expected {reply}")
    for site in e.accelerated_sites:
        check(f"accelerated {site}", site in outcome.accelerated_sites,
              "told to report faster" if site in outcome.accelerated_sites else "never told to report faster")
    return checks
