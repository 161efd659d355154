#!/usr/bin/python3
"""Missed-run, overrun and stuck detection inside a daemon, with a controllable clock (RTOPACKS_CLOCK_FILE).

The engine's test daemon (test-sync) gets a schedule file from its test config ([paths] schedules_dir) and runs
against the items test server, with a real SMTP server (aiosmtpd).  The clock is moved through a week, a month and
both daylight-saving changes of Australia/Sydney; every missed scheduled run is mailed exactly once
("[test-sync] MISSED scheduled run — expected <local time>"), also across a restart, and a later run clears it.
The metrics file is checked as Prometheus text after every run.
"""

import os
import time
import unittest

import env as kitenv
from harness import Server, SmtpSink, ctl, query, settle, syncctl, wait_for, REPO
import promtext

ITEMS_SERVER = os.path.join(REPO, "tests", "kit", "items_server.py")
DASH = "\u2014"


def epoch(iso):
    import calendar
    return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))


class Env(kitenv.Env):
    """The test daemon with a schedule, a metrics folder and a clock file of its own."""

    binary = "test-sync"
    sync_type = "test_sync"

    def __init__(self, items, smtp, schedule, name="monitor", **test_sync):
        super().__init__(name, smtp)
        self.sched_dir = self.wd.file("schedules")
        self.metrics_dir = self.wd.file("metrics")
        os.makedirs(self.sched_dir)
        os.makedirs(self.metrics_dir)
        with open(os.path.join(self.sched_dir, "test-sync.schedule"), "w") as f:
            f.write(schedule)
        self.clock = self.wd.file("clock")
        self.items = items
        keys = {"url": items.url, "page_size": 10, "housekeeping_interval": "100ms", "missed_alert_delay": "0",
                "step_backoff": "50ms", "step_backoff_max": "200ms", "step_retries": 2}
        keys.update(test_sync)
        self.env = {"RTOPACKS_CLOCK_FILE": self.clock}
        self.configure(keys, extra={"paths": {"schedules_dir": self.sched_dir, "metrics_dir": self.metrics_dir}},
                       env=self.env)
        self.seen_mail = len(smtp.received())

    def set_clock(self, iso):
        tmp = self.clock + ".tmp"
        with open(tmp, "w") as f:
            f.write(iso + "\n")
        os.rename(tmp, self.clock)
        self.clock_now = iso

    def status(self):
        r = ctl(self.daemon.socket_path(), "status")
        assert r.get("ok"), r
        return r["result"]

    def wait_health(self, word, timeout=15):
        """Wait for a housekeeping pass at the current clock to report `word`."""
        return wait_for(lambda: self.status() if self.status().get("health") == word else None, timeout,
                        what="health %s at %s (have %s)" % (word, self.clock_now, self.status().get("health")))

    def settle(self):
        """Wait until housekeeping passes have run at the current clock (the daemon's status counts them), so that
        whatever they would do (a missed-run alert, its mail) has been done."""
        settle(self.daemon, passes=3)

    def alerts(self, word="MISSED"):
        return [m["msg"]["Subject"] for m in self.smtp.received()[self.seen_mail:] if word in m["msg"]["Subject"]]

    def run(self, trigger="timer"):
        p = syncctl(self.config, "trigger", "test-sync", "--wait", "--trigger", trigger, env=self.env)
        assert p.returncode == 0, p.stdout + p.stderr + self.daemon.read_log()[-3000:]

    def metrics(self):
        with open(os.path.join(self.metrics_dir, "rtopacks-sync-test-sync.prom")) as f:
            return promtext.parse(f.read())

    def close(self):
        self.daemon.stop()
        self.wd.cleanup()


class MissedRunTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.items = Server(ITEMS_SERVER, "--items", "12")
        cls.smtp = SmtpSink()

    @classmethod
    def tearDownClass(cls):
        cls.items.stop()
        cls.smtp.stop()
        cls.items.wd.cleanup()

    def env(self, schedule, **kw):
        e = Env(self.items, self.smtp, schedule, **kw)
        self.addCleanup(e.close)
        return e

    def test_week(self):
        e = self.env("on_calendar = Sun *-*-* 03:30:00 Australia/Brisbane\ngrace = 2h\nmax_runtime = 6h\n")
        e.set_clock("2026-12-02T00:00:00Z")                 # Wednesday: the monitor arms now
        e.daemon.start()
        st = e.wait_health("ok")
        self.assertEqual(st["schedule"]["next_local"], "Sun 2026-12-06 03:30 AEST")
        self.assertEqual(st["schedule"]["armed_at"], "2026-12-02T00:00:00Z")

        e.set_clock("2026-12-05T18:00:00Z")                 # Sunday 04:00 AEST: inside the grace
        e.wait_health("due")
        e.set_clock("2026-12-05T19:29:59Z")                 # one second before the grace ends
        e.settle()
        self.assertEqual(e.status()["health"], "due")
        self.assertEqual(e.alerts(), [])

        e.set_clock("2026-12-05T19:31:00Z")                 # grace over, no run: missed
        st = e.wait_health("missed")
        self.assertTrue(st["missed"])
        self.assertEqual(st["schedule"]["expected_at"], "2026-12-05T17:30:00Z")
        self.assertIn("MISSED: no run since the one scheduled for Sun 2026-12-06 03:30 AEST", st["notes"])
        subject = "[test-sync] MISSED scheduled run %s expected Sun 2026-12-06 03:30 AEST" % DASH
        wait_for(lambda: e.alerts(), what="the missed-run mail")
        e.settle()
        self.assertEqual(e.alerts(), [subject], "one mail, however many housekeeping passes")
        mail = [m for m in self.smtp.received() if m["msg"]["Subject"] == subject][0]["msg"]
        body = mail.get_body().get_content()
        self.assertIn("syncctl trigger test-sync --wait", body)
        self.assertIn("2026-12-05T17:30:00Z", body)
        self.assertEqual(promtext.value(e.metrics(), "rtopacks_sync_missed", daemon="test-sync"), 1)

        e.daemon.stop()                                     # a restart does not mail again
        e.daemon.start()
        e.wait_health("missed")
        e.settle()
        self.assertEqual(e.alerts(), [subject])
        self.assertEqual(query(e.ops, "SELECT kind, alert_key, cleared_at FROM sync_alerts"),
                         [("missed", "2026-12-05T17:30:00Z", None)])

        e.set_clock("2026-12-05T22:00:00Z")                 # a late manual run clears it
        e.run("manual")
        st = e.wait_health("ok")
        self.assertFalse(st["missed"])
        self.assertEqual(query(e.ops, "SELECT cleared_at FROM sync_alerts"), [("2026-12-05T22:00:00Z",)])
        m = e.metrics()
        self.assertEqual(promtext.value(m, "rtopacks_sync_missed", daemon="test-sync"), 0)
        self.assertEqual(promtext.value(m, "rtopacks_sync_last_run_start_timestamp_seconds", daemon="test-sync"),
                         epoch("2026-12-05T22:00:00Z"))
        self.assertEqual(promtext.value(m, "rtopacks_sync_last_run_success", daemon="test-sync"), 1)
        self.assertEqual(promtext.value(m, "rtopacks_sync_last_run_status", daemon="test-sync", status="complete"), 1)
        self.assertEqual(promtext.value(m, "rtopacks_sync_last_run_records", daemon="test-sync", direction="in"), 12)

        e.set_clock("2026-12-12T17:35:00Z")                 # next Sunday 03:35 AEST: the timer's run, on time
        e.run()
        e.set_clock("2026-12-12T19:31:00Z")
        e.settle()
        self.assertEqual(e.wait_health("ok")["schedule"]["expected_at"], "2026-12-12T17:30:00Z")
        m = e.metrics()
        self.assertEqual(promtext.value(m, "rtopacks_sync_last_run_start_timestamp_seconds", daemon="test-sync"),
                         epoch("2026-12-12T17:35:00Z"), "the metrics file follows each run")
        self.assertEqual(promtext.value(m, "rtopacks_sync_last_success_timestamp_seconds", daemon="test-sync"),
                         epoch("2026-12-12T17:35:00Z"))

        e.set_clock("2026-12-19T19:31:00Z")                 # the Sunday after: no run
        e.wait_health("missed")
        wait_for(lambda: len(e.alerts()) == 2, what="the second missed-run mail")
        self.assertEqual(e.alerts()[1], "[test-sync] MISSED scheduled run %s expected Sun 2026-12-20 03:30 AEST" % DASH)
        self.assertEqual(query(e.ops, "SELECT alert_key, cleared_at IS NULL FROM sync_alerts WHERE kind = 'missed'"
                               " ORDER BY alert_key"), [("2026-12-05T17:30:00Z", 0), ("2026-12-19T17:30:00Z", 1)])
        self.assertEqual(query(e.ops, "SELECT health, expected_at FROM sync_monitor"),
                         [("missed", "2026-12-19T17:30:00Z")])

    def test_month(self):
        e = self.env("on_calendar = *-*-01 04:00:00 Australia/Brisbane\ngrace = 2h\nmax_runtime = 3h\n")
        e.set_clock("2027-01-15T00:00:00Z")
        e.daemon.start()
        self.assertEqual(e.wait_health("ok")["schedule"]["next_local"], "Mon 2027-02-01 04:00 AEST")
        e.set_clock("2027-01-31T19:59:00Z")                 # Feb 1 05:59 AEST: still within the grace
        e.wait_health("due")
        e.set_clock("2027-01-31T20:01:00Z")
        e.wait_health("missed")
        wait_for(lambda: e.alerts(), what="the missed-run mail")
        e.set_clock("2027-02-14T00:00:00Z")                 # two weeks on: still the same miss, still one mail
        e.settle()
        self.assertEqual(e.status()["health"], "missed")
        self.assertEqual(e.alerts(), ["[test-sync] MISSED scheduled run %s expected Mon 2027-02-01 04:00 AEST" % DASH])

        e.set_clock("2027-02-28T18:05:00Z")                 # Mar 1 04:05 AEST: on time
        e.run()
        for t in ("2027-02-28T20:05:00Z", "2027-03-20T00:00:00Z"):
            e.set_clock(t)
            e.settle()
            self.assertEqual(e.wait_health("ok")["schedule"]["expected_at"], "2027-02-28T18:00:00Z")
        self.assertEqual(len(e.alerts()), 1)

    def test_daylight_saving(self):
        """Daily 03:30 Australia/Sydney across both clock changes: the expected time follows the zone's offset."""
        e = self.env("on_calendar = *-*-* 03:30:00 Australia/Sydney\ngrace = 1h\nmax_runtime = 2h\n")
        e.set_clock("2027-10-01T12:00:00Z")
        e.daemon.start()
        e.wait_health("ok")
        e.set_clock("2027-10-01T17:35:00Z")                 # Sat Oct 2 03:35 AEST
        e.run()
        # Clocks go forward on Sun Oct 3 (02:00 AEST -> 03:00 AEDT): 03:30 AEDT is 16:30 UTC, an hour earlier than
        # the day before.  At 17:31 UTC its grace is over; an evaluator stuck on AEST would still say "due".
        e.set_clock("2027-10-02T17:31:00Z")
        st = e.wait_health("missed")
        self.assertEqual(st["schedule"]["expected_at"], "2027-10-02T16:30:00Z")
        self.assertEqual(st["schedule"]["next_local"], "Mon 2027-10-04 03:30 AEDT")
        wait_for(lambda: e.alerts(), what="the missed-run mail")
        self.assertEqual(e.alerts(), ["[test-sync] MISSED scheduled run %s expected Sun 2027-10-03 03:30 AEDT" % DASH])

        # Six months on with no run since October: the daily runs were missed, the latest whose grace is over being
        # Fri Mar 31 03:30 AEDT, and that miss is mailed (once: it is a new miss).  Wait for it, or a housekeeping
        # pass between the clock's jump and the run below would mail it or not by chance.
        e.set_clock("2028-03-31T16:35:00Z")                 # Sat Apr 1 03:35 AEDT
        wait_for(lambda: len(e.alerts()) == 2, what="the mail about Friday's missed run")
        self.assertEqual(e.alerts()[1], "[test-sync] MISSED scheduled run %s expected Fri 2028-03-31 03:30 AEDT" % DASH)
        e.run()                                             # Saturday's run, on time
        e.settle()
        # Clocks go back on Sun Apr 2 (03:00 AEDT -> 02:00 AEST): 03:30 AEST is 17:30 UTC, an hour later.  At 17:45
        # UTC the run is due, not missed (an evaluator stuck on AEDT would have expected it at 16:30).
        e.set_clock("2028-04-01T17:45:00Z")
        st = e.wait_health("due")
        e.settle()
        self.assertEqual(e.status()["health"], "due")
        self.assertEqual(len(e.alerts()), 2, e.alerts())
        e.set_clock("2028-04-01T18:31:00Z")
        e.wait_health("missed")
        wait_for(lambda: len(e.alerts()) == 3, what="the third missed-run mail")
        self.assertEqual(e.alerts()[2], "[test-sync] MISSED scheduled run %s expected Sun 2028-04-02 03:30 AEST" % DASH)

    def test_overrun_and_stuck(self):
        e = self.env("on_calendar = *-*-* 05:00:00 Australia/Brisbane\ngrace = 1h\nmax_runtime = 1h\n",
                     step_retries=100, step_backoff="100ms", step_backoff_max="100ms", retries=0,
                     low_speed_time="1s", total_timeout="2s")
        e.set_clock("2026-12-02T19:05:00Z")                 # 05:05 AEST: the day's run starts now
        e.daemon.start()
        self.items.fault("meta", "hang", count=1000)
        self.addCleanup(lambda: self.items.post("/_fake/fault/clear"))
        r = ctl(e.daemon.socket_path(), "trigger", {"trigger": "timer"})
        self.assertTrue(r["ok"], r)
        run_id = r["result"]["run_id"]
        wait_for(lambda: e.status()["state"] == "running", what="the run to start")
        e.set_clock("2026-12-02T20:06:00Z")                 # running for 61 minutes: overrun
        st = e.wait_health("overrun")
        self.assertTrue(any(n.startswith("OVERRUN: %s" % run_id) for n in st["notes"]), st["notes"])
        wait_for(lambda: e.alerts("OVERRUNNING"), what="the overrun mail")
        e.settle()
        self.assertEqual(len(e.alerts("OVERRUNNING")), 1)
        self.assertIn(run_id, e.alerts("OVERRUNNING")[0])
        self.assertEqual(promtext.value(e.metrics(), "rtopacks_sync_overrun", daemon="test-sync"), 1)
        self.assertEqual(promtext.value(e.metrics(), "rtopacks_sync_running", daemon="test-sync"), 1)

        p = syncctl(e.config, "cancel", "test-sync", env=e.env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        wait_for(lambda: e.status()["state"] == "idle", timeout=20, what="the cancel")
        self.assertEqual(e.status()["cursor"]["cycle_phase"], "init", "the cycle is left where it stopped")
        e.set_clock("2026-12-02T22:00:00Z")                 # unfinished, untouched for > max_runtime: stuck
        st = e.wait_health("stuck")
        self.assertFalse(st["overrun"])
        self.assertTrue(any(n.startswith("STUCK: the cycle stopped at init") for n in st["notes"]), st["notes"])
        m = e.metrics()
        self.assertEqual(promtext.value(m, "rtopacks_sync_stuck", daemon="test-sync"), 1)
        self.assertEqual(promtext.value(m, "rtopacks_sync_last_run_status", daemon="test-sync", status="cancelled"), 1)
        self.assertEqual(query(e.ops, "SELECT cleared_at IS NOT NULL FROM sync_alerts WHERE kind = 'overrun'"),
                         [(1,)])
        self.assertEqual(e.alerts("STUCK"), [], "a stuck cycle is shown, not mailed (its cancel or failure was)")

        p = syncctl(e.config, "doctor", "test-sync", env=e.env)
        self.assertEqual(p.returncode, 9, p.stdout + p.stderr)
        self.assertIn("stuck: the cycle stopped at phase init", p.stdout)

    def test_no_schedule(self):
        """Without a schedule file the daemon still runs, and says missed-run detection is off."""
        e = self.env("on_calendar = daily Australia/Brisbane\ngrace = 1h\n")
        os.unlink(os.path.join(e.sched_dir, "test-sync.schedule"))
        e.set_clock("2026-12-02T00:00:00Z")
        e.daemon.start()
        st = e.wait_health("ok")
        self.assertIsNone(st["schedule"])
        self.assertIn("missed-run detection is off for test-sync", e.daemon.read_log())
        e.run("manual")
        self.assertIsNone(promtext.value(e.metrics(), "rtopacks_sync_missed", daemon="test-sync"))
        self.assertEqual(promtext.value(e.metrics(), "rtopacks_sync_last_run_success", daemon="test-sync"), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
