#!/usr/bin/python3
"""`syncctl doctor`: its exit code and advice for each condition, read from ops.db with the daemons down.

ops.db is made by the real migrations (one --once run of test-sync, which fails fast against a closed port), then
given rows for the three product jobs: a healthy week, and one condition at a time on top of it.  The schedules
are the real files in schedules/.  The clock is RTOPACKS_CLOCK_FILE.

Exit codes: 0 healthy, 8 attention soon (warnings), 9 action now (problems), 1 cannot check, 2 usage.
"""

import json
import os
import shutil
import sqlite3
import unittest

from harness import Daemon, Workdir, base_config, syncctl, write_config, refused_port, REPO, SCHEDULES

NOW = "2026-12-09T00:00:00Z"        # Wednesday 10:00 AEST
OK, ATTENTION, PROBLEM, FAILED, USAGE = 0, 8, 9, 1, 2


def healthy(con):
    """A week in which every job ran on time (times in UTC; the schedules are in Australia/Brisbane)."""
    runs = [
        # tga-sync: Sunday 03:30 AEST = Saturday 17:30 UTC
        ("tga_sync-2026-11-28T17:31:00Z", "tga_sync", "2026-11-28T17:31:00Z", "2026-11-28T17:50:00Z"),
        ("tga_sync-2026-12-05T17:31:00Z", "tga_sync", "2026-12-05T17:31:00Z", "2026-12-05T17:49:00Z"),
        # cricos-sync: the 1st at 04:00 AEST = the last day of the month 18:00 UTC
        ("cricos_sync-2026-11-30T18:02:00Z", "cricos_sync", "2026-11-30T18:02:00Z", "2026-11-30T18:06:00Z"),
        # qb-reconcile: daily 05:00 AEST = 19:00 UTC
        ("qb_reconcile-2026-12-07T19:03:00Z", "qb_reconcile", "2026-12-07T19:03:00Z", "2026-12-07T19:04:00Z"),
        ("qb_reconcile-2026-12-08T19:03:00Z", "qb_reconcile", "2026-12-08T19:03:00Z", "2026-12-08T19:04:00Z"),
    ]
    for run_id, t, start, end in runs:
        con.execute("INSERT INTO sync_runs (run_id, sync_type, cycle_id, trigger, status, started_at, finished_at,"
                    " records_in, records_out, host, pid, version) VALUES (?, ?, ?, 'timer', 'complete', ?, ?, 10, 10,"
                    " 'test', 1, '0')", (run_id, t, run_id, start, end))
    for t in ("tga_sync", "cricos_sync", "qb_reconcile"):
        cal = {"tga_sync": "Sun *-*-* 03:30:00 Australia/Brisbane", "cricos_sync": "*-*-01 04:00:00 Australia/Brisbane",
               "qb_reconcile": "*-*-* 05:00:00 Australia/Brisbane"}[t]
        con.execute("INSERT INTO sync_monitor (sync_type, on_calendar, armed_at, updated_at) VALUES (?, ?,"
                    " '2026-11-01T00:00:00Z', '2026-11-01T00:00:00Z')", (t, cal))
        con.execute('INSERT OR REPLACE INTO "%s_cursor" (id, cycle_phase, updated_at) VALUES (1, \'done\', ?)' % t,
                    ("2026-12-08T19:04:00Z",))
    con.execute("UPDATE qb_connection SET state = 'connected', refresh_expires_at = '2027-03-18T19:03:00Z',"
                " refresh_hard_expires_at = '2031-06-01T00:00:00Z', last_heartbeat_at = '2026-12-08T19:03:00Z',"
                " last_heartbeat_ok = '2026-12-08T19:03:00Z' WHERE id = 1")


class DoctorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wd = Workdir("doctor")
        cls.template = cls.wd.file("template.db")
        cfg = base_config(cls.wd, None, {"test-sync": {"url": "http://127.0.0.1:%d/" % refused_port(), "step_retries": 0,
                                                       "retries": 0}})
        conf = write_config(cls.wd.file("make.conf"), cfg)
        Daemon("test-sync", conf, cls.wd).run_once()
        shutil.copy(os.path.join(cls.wd.state, "ops.db"), cls.template)
        con = sqlite3.connect(cls.template)
        healthy(con)
        con.commit()
        con.close()

    @classmethod
    def tearDownClass(cls):
        cls.wd.cleanup()

    def setUp(self):
        self.dir = self.wd.file(self.id().split(".")[-1])
        os.makedirs(self.dir)
        self.ops = os.path.join(self.dir, "ops.db")
        shutil.copy(self.template, self.ops)
        self.clock = os.path.join(self.dir, "clock")
        self.set_clock(NOW)
        self.config = write_config(os.path.join(self.dir, "sync.conf"), {
            "paths": {"state_dir": self.dir, "ops_db": self.ops, "schedules_dir": SCHEDULES},
            "control": {"socket_dir": self.dir}})

    def set_clock(self, iso):
        with open(self.clock, "w") as f:
            f.write(iso + "\n")

    def sql(self, statement, *params):
        con = sqlite3.connect(self.ops)
        con.execute(statement, params)
        con.commit()
        con.close()

    def doctor(self, *args):
        return syncctl(self.config, "doctor", *args, env={"RTOPACKS_CLOCK_FILE": self.clock})

    def expect(self, code, daemon=None, check=None, level=None, contains=None):
        p = self.doctor()
        self.assertEqual(p.returncode, code, p.stdout + p.stderr)
        j = json.loads(self.doctor("--json").stdout)
        self.assertEqual(j["exit"], code)
        if daemon is not None:
            job = [x for x in j["jobs"] if x["daemon"] == daemon][0]
            found = [f for f in job["findings"] if f["check"] == check]
            self.assertTrue(found, "%s: no %s finding in %s" % (daemon, check, job["findings"]))
            self.assertEqual(found[0]["level"], level)
            self.assertTrue(found[0]["action"], "every finding says what to do")
            if contains:
                self.assertIn(contains, found[0]["message"])
            self.assertIn("-> ", p.stdout)
        return p

    def test_healthy(self):
        p = self.expect(OK)
        self.assertIn("All 3 jobs healthy.", p.stdout)
        self.assertIn("next Sun 2026-12-13 03:30 AEST", p.stdout)

    def test_missed_run(self):
        self.sql("DELETE FROM sync_runs WHERE run_id = 'tga_sync-2026-12-05T17:31:00Z'")
        p = self.expect(PROBLEM, "tga-sync", "missed", "problem",
                        "no run since the one scheduled for Sun 2026-12-06 03:30 AEST")
        self.assertIn("systemctl status tga-sync-run.timer", p.stdout)

    def test_missed_run_within_grace_is_not_yet_missed(self):
        self.sql("DELETE FROM sync_runs WHERE sync_type = 'qb_reconcile' AND started_at > '2026-12-08'")
        self.set_clock("2026-12-08T19:30:00Z")      # 05:30 AEST: inside the 1h grace
        self.expect(OK)
        self.set_clock("2026-12-08T20:00:01Z")
        self.expect(PROBLEM, "qb-reconcile", "missed", "problem", "Wed 2026-12-09 05:00 AEST")

    def test_overrun(self):
        self.sql("INSERT INTO sync_runs (run_id, sync_type, cycle_id, trigger, status, started_at, host, pid, version)"
                 " VALUES ('tga_sync-2026-12-08T10:00:00Z', 'tga_sync', 'x', 'manual', 'running',"
                 " '2026-12-08T10:00:00Z', 'test', 1, '0')")
        self.expect(PROBLEM, "tga-sync", "overrun", "problem", "has been running since")

    def test_stuck(self):
        self.sql("UPDATE tga_sync_cursor SET cycle_phase = 'sync_orgs', run_id = 'tga_sync-2026-12-05T17:31:00Z',"
                 " updated_at = '2026-12-05T17:40:00Z'")
        p = self.expect(PROBLEM, "tga-sync", "stuck", "problem", "stopped at phase sync_orgs")
        self.assertIn("syncctl trigger tga-sync", p.stdout)

    def test_quickbooks_rolling_token_near_expiry(self):
        self.sql("UPDATE qb_connection SET refresh_expires_at = '2026-12-19T00:00:00Z'")
        self.expect(ATTENTION, "qb-reconcile", "quickbooks", "warning", "expires in 10 days")

    def test_quickbooks_hard_expiry_near(self):
        self.sql("UPDATE qb_connection SET refresh_hard_expires_at = '2026-12-29T00:00:00Z'")
        self.expect(ATTENTION, "qb-reconcile", "quickbooks", "warning", "hard (5-year) expiry in 20 days")
        p = self.doctor("--token-warn", "7")
        self.assertEqual(p.returncode, OK, p.stdout)

    def test_quickbooks_token_expired(self):
        self.sql("UPDATE qb_connection SET refresh_expires_at = '2026-12-01T00:00:00Z'")
        self.expect(PROBLEM, "qb-reconcile", "quickbooks", "problem", "expired")

    def test_quickbooks_reconnect_required(self):
        self.sql("UPDATE qb_connection SET state = 'reconnect_required'")
        p = self.expect(PROBLEM, "qb-reconcile", "quickbooks", "problem", "reconnect_required")
        self.assertIn("syncctl qb connect", p.stdout)

    def test_quickbooks_heartbeat_failed(self):
        self.sql("UPDATE qb_connection SET last_heartbeat_at = '2026-12-08T19:03:00Z',"
                 " last_heartbeat_ok = '2026-12-07T19:03:00Z'")
        self.expect(ATTENTION, "qb-reconcile", "quickbooks", "warning", "did not refresh the token")

    def test_quickbooks_table_absent(self):
        self.sql("DROP TABLE qb_connection")
        self.expect(OK)

    def test_late_cricos_edition(self):
        self.sql("INSERT INTO sync_alerts (sync_type, kind, alert_key, created_at, detail) VALUES ('cricos_sync',"
                 " 'edition_late', '2026-12', '2026-12-09T00:00:00Z',"
                 " '[cricos-sync] edition late \u2014 no new CRICOS data since 2026-11-01')")
        p = self.expect(ATTENTION, "cricos-sync", "edition", "warning", "no new CRICOS data since 2026-11-01")
        self.assertIn("re-checks data.gov.au daily", p.stdout)
        self.sql("UPDATE sync_alerts SET cleared_at = '2026-12-10T00:00:00Z'")
        self.expect(OK)

    def test_never_started(self):
        self.sql("DELETE FROM sync_runs WHERE sync_type = 'cricos_sync'")
        self.sql("DELETE FROM sync_monitor WHERE sync_type = 'cricos_sync'")
        p = self.expect(ATTENTION, "cricos-sync", "started", "warning", "has never started")
        self.assertIn("systemctl enable --now cricos-sync.service cricos-sync-run.timer", p.stdout)

    def test_worst_wins_and_one_job(self):
        self.sql("UPDATE qb_connection SET refresh_expires_at = '2026-12-19T00:00:00Z'")      # warning
        self.sql("DELETE FROM sync_runs WHERE run_id = 'tga_sync-2026-12-05T17:31:00Z'")      # problem
        self.assertEqual(self.doctor().returncode, PROBLEM)
        self.assertEqual(self.doctor("qb-reconcile").returncode, ATTENTION)
        self.assertEqual(self.doctor("cricos-sync").returncode, OK)

    def test_cannot_check(self):
        os.unlink(self.ops)
        p = self.doctor()
        self.assertEqual(p.returncode, FAILED, p.stdout + p.stderr)
        self.assertEqual(self.doctor("no-such-daemon").returncode, USAGE)
        self.assertEqual(self.doctor("--token-warn", "soon").returncode, USAGE)


if __name__ == "__main__":
    unittest.main(verbosity=2)
