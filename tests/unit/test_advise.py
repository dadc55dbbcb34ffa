"""advise: synthetic histories whose right answer is known by construction, through the real planner.

Every history below is 10-minute readings of one step region starting Monday
2025-05-05 00:00 UTC, at 30 % (below every step) except where a test puts a
peak. The provisioning delay is 1800 s, so a burst must fire 30 min before the
peak; the expected counts, crons and minutes are worked out in the comments.
"""
from __future__ import annotations

import importlib.util
import json
import random
import struct
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import pytest
import yaml

from ens_autoscaler import sources
from ens_autoscaler.tools.cli import main
from ens_autoscaler.core.errors import InputError
from ens_autoscaler.core.planner import Inventory, Reason, make_plan
from ens_autoscaler.core.policy.model import Policy
from ens_autoscaler.core.policy.validation import parse_policy
from ens_autoscaler.tools.simulate.advise import Advice, Verdict, advise
from ens_autoscaler.tools.simulate.advise_cli import as_dict, text
from ens_autoscaler.tools.simulate.fleet import Fleet
from ens_autoscaler.tools.simulate.history import Reading, write_history
from ens_autoscaler.tools.simulate.recurrence import windows
from ens_autoscaler.tools.simulate.schedule import WEEKDAYS, Schedule

ROOT = Path(__file__).resolve().parents[2]
R = "cn-hangzhou-telecom"
DELAY = 1800.0
MONDAY = datetime(2025, 5, 5, tzinfo=timezone.utc)
STEPS = [{"lower": 70, "upper": 85, "add": 1}, {"lower": 85, "upper": 95, "add": 2}, {"lower": 95, "add": 3}]


def policy(per_region: int = 4, cooldown: int = 600, **region: int) -> Policy:
    return parse_policy({"service": {"appId": "app-1", "timeout": 1800},
                         "limits": {"perRegion": per_region, "total": 8, "cooldownSeconds": cooldown,
                                    "budget24h": {"perRegion": 12}},
                         "regions": {R: {"steps": {"metric": "CPUUtilization", "table": STEPS}, **region}}})


def history(days: float, load: Callable[[datetime], float]) -> list[Reading]:
    steps = int(days * 144)
    return [Reading((MONDAY + timedelta(minutes=10 * i)).timestamp(), R, "CPUUtilization",
                    load(MONDAY + timedelta(minutes=10 * i))) for i in range(steps)]


def evening(peak: Callable[[datetime], float] = lambda at: 90.0,
            weekdays_only: bool = False) -> Callable[[datetime], float]:
    """30 % all day; `peak(at)` from 18:00 to 18:50 UTC (six readings)."""
    def load(at: datetime) -> float:
        on = at.hour == 18 and not (weekdays_only and at.weekday() >= 5)
        return peak(at) if on else 30.0
    return load


def run(readings: list[Reading], zone: str = "UTC", per_region: int = 4, delay: float = DELAY,
        cooldown: int = 600, **region: int) -> Advice:
    return advise(readings, policy(per_region, cooldown, **region), Fleet({R: 2}, delay), zone)


def test_a_clean_daily_peak_gets_one_burst_half_an_hour_before_it() -> None:
    advice = run(history(7, evening()), zone="Asia/Shanghai")
    [region] = advice.regions
    assert region.verdict is Verdict.PROPOSED
    [burst] = region.bursts
    # 90 % is the 85-95 step: +2. 18:00 UTC is 02:00 in Shanghai; 30 min earlier is 01:30, every day.
    assert (burst.count, burst.window) == (2, (120, 180))
    assert burst.schedule.cron == "CRON_TZ=Asia/Shanghai 0 30 1 * * *"
    assert advice.profiles == {"advise-daily-0130": {R: 2}}
    # Without it: the +2 ordered at 18:00 is Running at 18:30, so 18:00-18:30 is short every day:
    # 3 readings x 10 min x 7 days. With it: the two devices are Running at 18:00, never short.
    assert region.before.seconds_under_target == 7 * 30 * 60
    assert region.after.seconds_under_target == 0


def test_a_weekday_only_peak_gets_a_weekday_timer() -> None:
    # (in UTC: 18:00 UTC Monday to Friday is Tuesday to Saturday in Shanghai, a shape the days are cut by)
    advice = run(history(14, evening(weekdays_only=True)))
    [burst] = advice.bursts
    assert burst.schedule.days == WEEKDAYS
    assert burst.schedule.cron == "CRON_TZ=UTC 0 30 17 * * MON,TUE,WED,THU,FRI"
    # 10 weekdays x 30 min short without the burst; none with it
    [region] = advice.regions
    assert (region.before.seconds_under_target, region.after.seconds_under_target) == (10 * 1800, 0)


def test_a_lead_time_across_midnight_fires_the_day_before() -> None:
    # 00:10 on weekdays, 30 min earlier: 23:40 on Sunday to Thursday
    moved = Schedule("UTC", WEEKDAYS, 10).earlier(DELAY)
    assert moved.cron == "CRON_TZ=UTC 0 40 23 * * MON,TUE,WED,THU,SUN"
    sunday_night = datetime(2025, 5, 11, 23, 40, tzinfo=timezone.utc).timestamp()
    assert sunday_night in set(moved.firings(MONDAY.timestamp(), sunday_night))
    friday_night = datetime(2025, 5, 9, 23, 40, tzinfo=timezone.utc).timestamp()
    assert friday_night not in set(moved.firings(MONDAY.timestamp(), sunday_night))


def test_pure_noise_gets_no_burst() -> None:
    rng = random.Random(7)
    advice = run(history(14, lambda at: rng.uniform(0, 100)))
    assert [r.verdict for r in advice.regions] == [Verdict.NO_SHAPE]
    assert advice.profiles == {} and advice.timers == []


def test_a_trend_that_crosses_once_is_no_shape() -> None:
    # 40 % rising to 100 % over 14 days: over 70 % from day 7 on, at every hour. Nothing repeats by the
    # clock, so it is the rules' job, not a timer's.
    advice = run(history(14, lambda at: 40 + 60 * (at - MONDAY) / timedelta(days=14)))
    assert [r.verdict for r in advice.regions] == [Verdict.NO_SHAPE]
    assert advice.bursts == ()


def test_less_than_a_day_of_history_is_too_short() -> None:
    advice = run(history(23 / 24, evening()))
    assert [r.verdict for r in advice.regions] == [Verdict.TOO_SHORT]
    assert advice.bursts == ()


def test_the_count_is_the_rule_at_the_median_day_not_the_worst() -> None:
    peaks = {0: 86, 1: 96, 2: 88, 3: 87, 4: 99, 5: 86, 6: 87}  # sorted: 86 86 87 [87] 88 96 99 -> +2
    # A cooldown as long as the delay, so the rules leave the budget to the burst (with 600 s they spend it on
    # the 96 % and 99 % days, and the burst would be fitted down to what the planner granted there).
    [burst] = run(history(7, evening(lambda at: peaks[at.weekday()])), cooldown=1800).bursts
    assert (burst.peak, burst.count) == (87, 2)


def test_the_planner_caps_a_burst() -> None:
    # 99 % asks +3; limits.perRegion 1 lets one invocation add one device
    [burst] = run(history(7, evening(lambda at: 99.0)), per_region=1).bursts
    assert burst.count == 1


def test_the_same_history_gives_the_same_advice() -> None:
    readings = history(7, evening())
    assert json.dumps(as_dict(run(readings))) == json.dumps(as_dict(run(list(reversed(readings)))))


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(InputError, match="unknown time zone 'Mars/Olympus'"):
        run(history(7, evening()), zone="Mars/Olympus")


# --- the command and what an operator applies ------------------------------------------

@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A week of the evening peak under the default policy, replayed as recorded (a burst is proposed),
    advised for Shanghai time."""
    out = tmp_path_factory.mktemp("advise")
    csv = out / "week.csv"
    write_history(history(7, evening()), csv)
    code = main(["advise", "--policy", str(ROOT / "functions/autoscaler/policy.yaml"), "--metrics", str(csv),
                 "--time-zone", "Asia/Shanghai", "--load", "recorded", "--write", str(out),
                 "--out", str(out / "advise.png"), "--json"])
    assert code == 0
    return out


def test_the_advise_doc_shows_what_the_two_week_sample_advises(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """docs/simulate-and-advise.md's numbers come from one run of its own command (its files go to tmp_path here)."""
    csv = tmp_path / "two-weeks.csv"
    spec = importlib.util.spec_from_file_location("two_weeks", ROOT / "examples" / "two_weeks.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    generator.main(str(csv))
    capsys.readouterr()
    assert main(["advise", "--policy", str(ROOT / "functions/autoscaler/policy.yaml"), "--metrics", str(csv),
                 "--time-zone", "Asia/Shanghai"]) == 0
    printed = capsys.readouterr().out.strip()
    doc = (ROOT / "docs" / "simulate-and-advise.md").read_text(encoding="utf-8")
    shown = doc.split("--time-zone Asia/Shanghai --write advice --out examples/advise-report.png\n```\n\n```\n",
                         1)[1].split("\n```", 1)[0]
    assert shown.split("\n\nwrote ")[0] == printed


def test_the_fragments_validate_and_the_timers_fire_their_profiles(applied: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = applied
    profiles = yaml.safe_load((out / "profiles.yaml").read_text())["profiles"]
    triggers = yaml.safe_load((out / "timers.yaml").read_text())["triggers"]
    assert profiles and {t["triggerConfig"]["payload"] for t in triggers} == set(profiles)
    document = yaml.safe_load((ROOT / "functions/autoscaler/policy.yaml").read_text())
    document["profiles"] = {**document["profiles"], **profiles}
    merged = tmp_path / "policy.yaml"
    merged.write_text(yaml.safe_dump(document))
    capsys.readouterr()
    assert main(["validate", str(merged), "--json"]) == 0
    assert set(profiles) <= set(json.loads(capsys.readouterr().out)["profiles"])
    merged_policy = parse_policy(document)
    for t in triggers:
        config = t["triggerConfig"]
        assert t["triggerType"] == "timer" and config["cronExpression"].startswith("CRON_TZ=Asia/Shanghai ")
        assert len(config["cronExpression"].split()) == 7, "CRON_TZ= and six fields, seconds first"
        event = {"triggerTime": "2025-05-05T10:00:00Z", "triggerName": t["triggerName"], "payload": config["payload"]}
        plan = make_plan(sources.decode(json.dumps(event).encode()), merged_policy, now=0.0, inventory=Inventory())
        assert {e["regionCode"]: e["count"] for e in plan.selector} == profiles[config["payload"]]


def test_the_chart_is_a_png(applied: Path) -> None:
    out = applied
    head = (out / "advise.png").read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    assert width > height > 0  # two columns of panels


def test_a_policy_without_timeout_needs_the_delay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bare = tmp_path / "policy.yaml"
    bare.write_text(yaml.safe_dump({"service": {"appId": "app-1"}, "limits": {"perRegion": 1, "total": 1},
                                    "regions": {R: {"steps": {"table": STEPS}}}}))
    csv = tmp_path / "h.csv"
    write_history(history(2, evening()), csv)
    assert main(["advise", "--policy", str(bare), "--metrics", str(csv), "--json"]) == 1
    assert "give --provisioning-delay" in json.loads(capsys.readouterr().out)["error"]["message"]


def test_a_burst_the_replay_does_not_reward_is_dropped() -> None:
    # 75 % around the clock: every slot "recurs", so a burst is found (+1, firing 23:30), but the only
    # minutes short are the first 30 of the history, before any firing: no gain, so no proposal.
    advice = run(history(3, lambda at: 75.0))
    [region] = advice.regions
    assert region.verdict is Verdict.NO_GAIN and region.bursts == ()
    assert region.before.seconds_under_target == region.after.seconds_under_target == 30 * 60


def test_load_the_limits_forbid_serving_is_not_under_target() -> None:
    # maxDevices 2 and 2 Running: the function would order nothing for the peak, so nothing is late
    # and there is nothing to burst for.
    [region] = run(history(7, evening()), maxDevices=2).regions
    assert region.verdict is Verdict.NO_SHAPE
    assert region.before.seconds_under_target == 0


def test_advice_never_overwrites_a_profile_of_the_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    taken = tmp_path / "policy.yaml"
    taken.write_text(yaml.safe_dump({
        "service": {"appId": "app-1", "timeout": 1800}, "limits": {"perRegion": 4, "total": 8},
        "regions": {R: {"steps": {"metric": "CPUUtilization", "table": STEPS}}},
        "profiles": {"advise-daily-1730": {R: 1}}}))
    csv = tmp_path / "h.csv"
    write_history(history(7, evening()), csv)
    out = tmp_path / "advice"
    assert main(["advise", "--policy", str(taken), "--metrics", str(csv), "--load", "recorded", "--write", str(out),
                 "--json"]) == 1
    assert "already has profiles named advise-daily-1730" in json.loads(capsys.readouterr().out)["error"]["message"]
    assert not out.exists()


def test_adjacent_slots_are_one_window_even_with_nothing_to_merge_across() -> None:
    found = windows(history(7, evening()), lambda r: r.value > 70, "UTC", merge_seconds=0.0)
    assert [(w.start, w.end) for w in found] == [(1080, 1140)]


def test_without_a_provisioning_delay_nothing_is_late_so_nothing_is_proposed() -> None:
    [region] = run(history(7, evening()), delay=0.0).regions
    assert region.verdict is Verdict.NO_GAIN and region.before.seconds_under_target == 0


def test_a_cooldown_shorter_than_the_delay_lets_the_step_rules_starve_the_bursts() -> None:
    # 90 % (+2) from 18:00 to 19:50 every day; the burst (+2) fires at 17:30. With a 600 s cooldown the
    # step rules order +2 every 20 min through the peak (18:00 ... 19:20: 10, with the burst 12 = the
    # budget), so at 17:30 the next day yesterday's burst (exactly 24 h old) and steps fill budget24h
    # and the planner cuts the burst. A 1800 s cooldown counts the devices on the way: the steps order
    # at 18:00, 18:40 and 19:20 only, and every burst is granted.
    two_hours = history(7, lambda at: 90.0 if at.hour in (18, 19) else 30.0)
    short = run(two_hours)
    [region] = short.regions
    assert region.firings == 7 and region.cut > 0 and region.cut_by == (Reason.BUDGET_EXHAUSTED,)
    [note] = short.notes
    assert note.startswith("limits.cooldownSeconds (600 s) is shorter than the provisioning delay (1800 s)")
    shown = text({**as_dict(short), "files": []})
    assert f"{R}: the planner cut {region.cut} of 7 firings (BudgetExhausted)" in shown
    assert f"note: {note}" in shown
    covered = run(two_hours, cooldown=1800)
    [region] = covered.regions
    assert (region.firings, region.cut, covered.notes) == (7, 0, ())
    assert region.after.seconds_under_target == 0


def test_a_burst_is_timed_by_the_median_day_start_not_the_first_slot_that_recurs() -> None:
    # 90 % from 18:10 to 18:50 every day, and from 18:00 on Mon, Tue, Sat and Sun: the 18:00 slot recurs
    # on 4 of 7 days (no kind reaches 80 %), but it is where the median day starts asking, so the burst
    # fires at 17:30 and the devices are Running at 18:00 on those days too.
    early = {0, 1, 5, 6}
    advice = run(history(7, lambda at: 90.0 if at.hour == 18 and (at.minute >= 10 or at.weekday() in early)
                         else 30.0))
    [region] = advice.regions
    [burst] = region.bursts
    assert burst.window == (1080, 1140) and burst.schedule.cron == "CRON_TZ=UTC 0 30 17 * * *"
    # Without it: 18:00-18:30 short on the four early days, 18:10-18:40 on the three others.
    assert (region.before.seconds_under_target, region.after.seconds_under_target) == (7 * 1800, 0)


def test_no_proposed_burst_is_an_order_the_planners_guards_would_cut() -> None:
    # 99 % asks +3. With a 600 s cooldown the rules order +3 at 18:00, 18:10, 18:20 (the burst at 17:30 has
    # left the cooldown): 3 + 9 = 12, all of budget24h.perRegion, so the next day's burst, 24 h after the last
    # one, is cut. The first proof replay sees the cut; fitted to the least the planner granted (0), the burst
    # is gone rather than proposed for an order that would be cut.
    [region] = run(history(7, evening(lambda at: 99.0))).regions
    assert (region.firings, region.cut, region.cut_by) == (7, 3, (Reason.BUDGET_EXHAUSTED,))
    assert region.verdict is Verdict.CUT and region.bursts == ()
    # And wherever something is proposed, the planner grants every firing of it in full.
    for peak in (80.0, 90.0, 99.0):
        for cooldown in (600, 1800):
            advice = run(history(7, evening(lambda at, peak=peak: peak)), cooldown=cooldown)
            fired = [d for t in advice.proposed.ticks for d in t.plan.decisions
                     if d.rule and d.rule.startswith("profile:")]
            assert bool(fired) == bool(advice.bursts)
            assert all(d.final == d.raw for d in fired), (peak, cooldown)
