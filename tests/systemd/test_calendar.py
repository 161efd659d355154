#!/usr/bin/python3
"""Schedules and the calendar evaluator against `systemd-analyze calendar`.

* Every schedule file parses (in C, as the daemons load it) and systemd-analyze accepts its expression.
* Across every daylight-saving change of the next years (in Australia/Sydney, the zone the operators live in, and
  in each schedule's own zone), with --base-time just before it: no scheduled run is skipped, and none falls in
  02:00-03:00 local time of a zone that has daylight saving.  The same check catches the known trap
  `*-*-01 02:30 Australia/Sydney` skipping October 2028, so it does test something.
* common/schedule.c (through build/bin/calendar-probe) gives exactly systemd's elapses for the schedules and for
  a set of expressions chosen around clock changes (gaps, repeated hours, 30-minute shifts, rules past 2037).
"""

import datetime
import functools
import json
import os
import re
import subprocess
import unittest
import zoneinfo

from harness import BIN, REPO, SCHEDULES

PROBE = os.path.join(BIN, "calendar-probe")
UTC = datetime.timezone.utc
# The coming years: the schedules must hold across every clock change in them.
YEARS = range(2026, 2031)


def schedules():
    out = {}
    for f in sorted(os.listdir(SCHEDULES)):
        if f.endswith(".schedule"):
            p = subprocess.run([PROBE, "--schedule", os.path.join(SCHEDULES, f)], capture_output=True, text=True)
            if p.returncode != 0:
                raise AssertionError("%s: %s" % (f, p.stderr))
            out[f[:-len(".schedule")]] = json.loads(p.stdout)
    return out


def systemd_elapses(expr, base, n):
    """UTC datetimes of the next n elapses after base, as systemd-analyze calendar gives them."""
    p = subprocess.run(["systemd-analyze", "calendar", "--base-time=" + base.strftime("%Y-%m-%d %H:%M:%S UTC"),
                        "--iterations=%d" % n, expr], capture_output=True, text=True, env=dict(os.environ, TZ="UTC"))
    if p.returncode != 0:
        raise AssertionError("systemd-analyze calendar %r: %s" % (expr, p.stderr))
    got = re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", p.stdout)
    return [datetime.datetime.strptime(x, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC) for x in got]


def probe_elapses(expr, base, n):
    p = subprocess.run([PROBE, "--base-time", base.strftime("%Y-%m-%dT%H:%M:%SZ"), "--iterations", str(n), expr],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError("calendar-probe %r: %s" % (expr, p.stderr))
    return [datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            for line in p.stdout.splitlines() if line != "never"]


@functools.lru_cache(maxsize=None)
def transitions(zone, years):
    """UTC instants at which zone's UTC offset changes, found hour by hour then narrowed to the minute."""
    tz = zoneinfo.ZoneInfo(zone)
    out = []
    t = datetime.datetime(years.start, 1, 1, tzinfo=UTC)
    end = datetime.datetime(years.stop, 1, 1, tzinfo=UTC)
    step = datetime.timedelta(hours=1)
    prev = t.astimezone(tz).utcoffset()
    while t < end:
        nxt = t + step
        off = nxt.astimezone(tz).utcoffset()
        if off != prev:
            lo = t
            while nxt - lo > datetime.timedelta(minutes=1):
                mid = lo + (nxt - lo) / 2
                if mid.astimezone(tz).utcoffset() == prev:
                    lo = mid
                else:
                    nxt = mid
            out.append(nxt.replace(second=0, microsecond=0))
            prev = off
        t += step
    return out


def cadence(expr):
    """'daily', 'weekly' or 'monthly' for the shapes of expression the schedules use."""
    words = expr.split()
    date = next((w for w in words if "-" in w and ":" not in w and not w[0].isalpha()), "*-*-*")
    if re.match(r"^[A-Za-z]", words[0]):
        return "weekly"
    if date.split("-")[-1] != "*":
        return "monthly"
    return "daily"


def skips(elapses, zone, kind):
    """The gaps in a run of elapses: local dates where a run of this cadence should have been and was not."""
    tz = zoneinfo.ZoneInfo(zone)
    local = [e.astimezone(tz) for e in elapses]
    gaps = []
    for a, b in zip(local, local[1:]):
        if kind == "daily" and (b.date() - a.date()).days != 1:
            gaps.append((a, b))
        elif kind == "weekly" and (b.date() - a.date()).days != 7:
            gaps.append((a, b))
        elif kind == "monthly" and (b.year * 12 + b.month) - (a.year * 12 + a.month) != 1:
            gaps.append((a, b))
    return gaps


def has_dst(zone, years):
    return bool(transitions(zone, years))


class CalendarTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.schedules = schedules()

    def test_systemd_accepts_every_schedule(self):
        self.assertEqual(sorted(self.schedules), ["cricos-sync", "qb-reconcile", "tga-sync"])
        for name, s in self.schedules.items():
            p = subprocess.run(["systemd-analyze", "calendar", s["on_calendar"]], capture_output=True, text=True,
                               env=dict(os.environ, TZ="UTC"))
            self.assertEqual(p.returncode, 0, "%s: %s" % (name, p.stderr))
            self.assertIn("Normalized form:", p.stdout)
            self.assertNotEqual(s["zone"], "localtime", "%s names its zone" % name)
            self.assertGreater(s["grace"], s["randomized_delay"] + s["accuracy"], name)

    def test_the_required_cadences(self):
        s = self.schedules
        tga = systemd_elapses(s["tga-sync"]["on_calendar"], datetime.datetime(2026, 12, 1, tzinfo=UTC), 3)
        for e in tga:
            local = e.astimezone(zoneinfo.ZoneInfo("Australia/Brisbane"))
            self.assertEqual(local.strftime("%a"), "Sun")
            self.assertLess(local.hour, 7, "Sunday early morning Australian time")
        cricos = systemd_elapses(s["cricos-sync"]["on_calendar"], datetime.datetime(2026, 12, 1, tzinfo=UTC), 3)
        for e in cricos:
            local = e.astimezone(zoneinfo.ZoneInfo("Australia/Brisbane"))
            self.assertEqual((local.day, local.hour, local.minute, local.utcoffset()),
                             (1, 4, 0, datetime.timedelta(hours=10)), "the 1st at 04:00 AEST")
        qb = systemd_elapses(s["qb-reconcile"]["on_calendar"], datetime.datetime(2026, 12, 1, tzinfo=UTC), 3)
        self.assertEqual([(b - a).days for a, b in zip(qb, qb[1:])], [1, 1], "daily")

    def check_across_dst(self, expr, zone, kind, check_zones=("Australia/Sydney",)):
        """Every clock change of YEARS in the given zones: systemd's elapses around it have no gap, and equal ours."""
        problems = []
        margin = {"daily": 3, "weekly": 15, "monthly": 62}[kind]
        n = {"daily": 6, "weekly": 4, "monthly": 4}[kind]
        for z in sorted(set(check_zones) | {zone}):
            for t in transitions(z, YEARS):
                base = t - datetime.timedelta(days=margin)
                sd = systemd_elapses(expr, base, n)
                self.assertEqual(probe_elapses(expr, base, n), sd, "evaluator vs systemd: %r from %s" % (expr, base))
                for a, b in skips(sd, zone, kind):
                    problems.append("%s: around the %s change of %s, no run between %s and %s" % (
                        expr, z, t.date(), a.strftime("%Y-%m-%d %H:%M %Z"), b.strftime("%Y-%m-%d %H:%M %Z")))
                if has_dst(zone, YEARS):
                    for e in sd:
                        local = e.astimezone(zoneinfo.ZoneInfo(zone))
                        if local.hour == 2:
                            problems.append("%s: runs at %s, inside 02:00-03:00 of a zone with daylight saving" % (
                                expr, local.strftime("%Y-%m-%d %H:%M %Z")))
        return problems

    def test_no_schedule_skips_across_daylight_saving(self):
        for name, s in self.schedules.items():
            problems = self.check_across_dst(s["on_calendar"], s["zone"], cadence(s["on_calendar"]))
            self.assertEqual(problems, [], name)

    def test_the_check_catches_the_known_trap(self):
        """`*-*-01 02:30 Australia/Sydney` skips October 2028 (2028-10-01 is the DST-start Sunday)."""
        problems = self.check_across_dst("*-*-01 02:30 Australia/Sydney", "Australia/Sydney", "monthly")
        self.assertTrue(any("2028-09-01" in p and "2028-11-01" in p for p in problems), problems)
        self.assertTrue(any("inside 02:00-03:00" in p for p in problems), problems)
        daily = self.check_across_dst("*-*-* 02:30 Australia/Sydney", "Australia/Sydney", "daily")
        self.assertTrue(any("2027-10-02" in p and "2027-10-04" in p for p in daily), daily)

    def test_evaluator_matches_systemd(self):
        exprs = [
            "*-*-01 02:30 Australia/Sydney", "*-*-* 02:30 Australia/Sydney", "*-*-* 02:00:00 Australia/Sydney",
            "Sun *-*-* 03:00:00 Australia/Sydney", "*-*-* *:30:00 Australia/Sydney", "*-*-* 02/3:15:00 Australia/Lord_Howe",
            "Mon..Fri *-*-* 09:00 Europe/London", "*-*-* 01:30 America/New_York", "Sat,Sun *-*-* 00:00 UTC",
            "*-02-29 12:00 UTC", "*-*-31 23:59:59 Pacific/Auckland", "2040-*-* 02:30 Australia/Sydney",
            "weekly Australia/Sydney", "*-01,04,07,10-01 06:00 Australia/Adelaide", "*-*-1..7 04:00 Australia/Hobart",
            "*-*-* 02:30 Europe/Berlin", "*-*-* 01:30 Europe/Dublin",
        ] + [s["on_calendar"] for s in self.schedules.values()]
        bases = [datetime.datetime(2026, 11, 28, tzinfo=UTC), datetime.datetime(2028, 3, 28, 12, tzinfo=UTC),
                 datetime.datetime(2028, 9, 15, tzinfo=UTC), datetime.datetime(2039, 9, 20, tzinfo=UTC)]
        for e in exprs:
            for b in bases:
                self.assertEqual(probe_elapses(e, b, 10), systemd_elapses(e, b, 10), "%r from %s" % (e, b))

    def test_previous_elapse(self):
        """calendar-probe --prev (what missed-run detection uses) is the last elapse at or before the time."""
        for expr in ["*-*-01 02:30 Australia/Sydney"] + [s["on_calendar"] for s in self.schedules.values()]:
            base = datetime.datetime(2028, 7, 1, tzinfo=UTC)
            el = systemd_elapses(expr, base, 8)
            for a, b in zip(el, el[1:]):
                for at in (a, a + datetime.timedelta(seconds=1), b - datetime.timedelta(seconds=1)):
                    p = subprocess.run([PROBE, "--prev", "--base-time", at.strftime("%Y-%m-%dT%H:%M:%SZ"), expr],
                                       capture_output=True, text=True)
                    self.assertEqual(p.stdout.split()[0], a.strftime("%Y-%m-%dT%H:%M:%SZ"), "%r at %s" % (expr, at))

    def test_bad_expressions_are_rejected(self):
        for e in ["*-*-31~ 02:00 UTC", "*-*-* 25:00", "Sun Mars/Olympus", "*-*-* 03:30:00.5 UTC", "26-01-01 UTC",
                  "Fri..Mon *-*-* 03:00 UTC"]:
            p = subprocess.run([PROBE, e], capture_output=True, text=True)
            self.assertEqual(p.returncode, 1, "%r was accepted: %s" % (e, p.stdout))
            self.assertTrue(p.stderr.strip(), e)


if __name__ == "__main__":
    unittest.main(verbosity=2)
