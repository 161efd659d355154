#!/usr/bin/python3
"""The edition watch, driven by a controllable clock (RTOPACKS_CLOCK_FILE).

The run on the 1st (04:00 AEST = 18:00 UTC the day before) finds no new edition: recorded, mailed, watch armed.
Housekeeping re-checks daily; on the late day (the 10th) a re-check that still finds nothing sends
"[cricos-sync] edition late — no new CRICOS data since <date>" once (also across a restart); when the edition
appears, the next daily re-check syncs it and the watch stands down.
"""

import json
import os
import unittest

from env import share_upstreams
from cricoslib import Env, query, start_fake, stop_fake, summary
from harness import ctl, settle, wait_for

LATE = "[cricos-sync] edition late \u2014 no new CRICOS data since 2026-05-04"


class EditionWatchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        share_upstreams(cls, start_fake, stop_fake)

    def set_clock(self, iso):
        with open(self.clock + ".tmp", "w") as f:
            f.write(iso + "\n")
        os.replace(self.clock + ".tmp", self.clock)

    def nruns(self):
        return query(self.env.ops, "SELECT count(*) FROM sync_runs")[0][0]

    def wait_runs(self, n):
        wait_for(lambda: self.nruns() >= n and query(self.env.ops, "SELECT count(*) FROM sync_runs WHERE status = "
                                                                   "'running'")[0][0] == 0, timeout=30,
                 what="%d finished runs (have %d)" % (n, self.nruns()))
        r = query(self.env.ops, "SELECT run_id, status, trigger, requested_by FROM sync_runs ORDER BY started_at "
                                "DESC, run_id DESC LIMIT 1")[0]
        self.assertEqual(r[1], "complete", r)
        return r

    def job_state(self):
        return json.loads(query(self.env.ops, "SELECT job_state FROM cricos_sync_cursor")[0][0])

    def late_mails(self):
        return [m for m in self.smtp.received() if str(m["msg"]["Subject"]).startswith("[cricos-sync] edition late")]

    def completion_mail(self, since):
        return wait_for(lambda: [m for m in self.smtp.received()[since:] if "cycle complete" in
                                 str(m["msg"]["Subject"])], what="the completion mail")[0]

    def test_late_edition_is_picked_up_and_reported_late_once(self):
        self.fake.post("/_fake/mutate", {"action": "edition", "edition": 1})
        self.env = env = Env(self.fake, self.smtp, name="cricos-watch", watch_interval="1d", watch_late_day=10)
        self.clock = env.wd.file("clock")
        self.set_clock("2026-05-20T00:00:00Z")
        d = env.daemon
        d.env = {"RTOPACKS_CLOCK_FILE": self.clock}
        d.start()

        # The first sync (mid-May).
        self.assertTrue(ctl(d.socket_path(), "trigger")["ok"])
        self.wait_runs(1)
        self.assertNotIn("watch", self.job_state())

        # The timer on the 1st, 04:00 AEST: last month's data still, so no new edition; the watch is armed.
        self.set_clock("2026-05-31T18:00:00Z")
        sent = len(self.smtp.received())
        self.assertTrue(ctl(d.socket_path(), "trigger", {"trigger": "timer"})["ok"])
        r = self.wait_runs(2)
        s = summary(env.ops, r[0])
        self.assertFalse(s["new_edition"])
        self.assertEqual((s["watch"]["state"], s["watch"]["month"], s["watch"]["since"]), ("armed", "2026-06",
                                                                                          "2026-05-04"))
        w = self.job_state()["watch"]
        self.assertEqual((w["next_check"], w["late_at"], w["late_day"]),
                         ("2026-06-01T18:00:00Z", "2026-06-09T14:00:00Z", "2026-06-10"))
        mail = self.completion_mail(sent)
        self.assertEqual(str(mail["msg"]["Subject"]), "[cricos-sync] cycle complete \u2014 0 changes")
        text = mail["msg"].get_content()
        self.assertIn("No new CRICOS edition", text)
        self.assertIn("Edition watch: waiting for the 2026-06 edition", text)
        settle(d)     # housekeeping passes at this clock: any re-check or mail would have started
        self.assertEqual(self.nruns(), 2, "no re-check before the interval has passed")

        # A day later the watch re-checks by itself: still nothing, not yet late, and nothing to mail about.
        sent = len(self.smtp.received())
        self.set_clock("2026-06-01T18:00:00Z")
        r = self.wait_runs(3)
        self.assertEqual((r[2], r[3]), ("timer", "edition watch"))
        self.assertFalse(summary(env.ops, r[0])["new_edition"])
        self.assertEqual(self.job_state()["watch"]["checks"], 1)
        self.assertEqual(self.late_mails(), [])
        wait_for(lambda: query(env.ops, "SELECT status FROM sync_runs WHERE run_id = ?", (r[0],))[0][0] == "complete",
                 what="the re-check to finish")
        self.assertEqual(query(env.ops, "SELECT status, error FROM sync_steps WHERE run_id = ? AND step = 'notify'",
                               (r[0],))[0][0], "complete")
        settle(d)
        self.assertEqual(len(self.smtp.received()), sent, "a re-check that found nothing sent a mail")

        # A full re-sync reads everything again, changes nothing, and is not mistaken for the new edition.
        self.set_clock("2026-06-02T01:00:00Z")
        self.assertTrue(ctl(d.socket_path(), "trigger", {"full": True})["ok"])
        r = self.wait_runs(4)
        s = summary(env.ops, r[0])
        self.assertTrue(s["full"] and s["new_edition"])
        self.assertEqual(query(env.ops, "SELECT changes FROM sync_runs WHERE run_id = ?", (r[0],))[0][0], 0)
        self.assertEqual(self.job_state()["watch"]["month"], "2026-06")

        # The 10th (AEST): the re-check finds nothing, and the late mail goes out, once.
        self.set_clock("2026-06-09T18:30:00Z")
        self.wait_runs(5)
        late = wait_for(lambda: self.late_mails() or None, what="the late mail")
        self.assertEqual(str(late[0]["msg"]["Subject"]), LATE)
        self.assertIn("cricos-sync keeps checking", late[0]["msg"].get_content())
        self.set_clock("2026-06-09T20:00:00Z")
        settle(d)     # housekeeping passes at this clock: any re-check or mail would have started
        self.assertEqual(len(self.late_mails()), 1)
        # Also across a restart.
        self.assertEqual(d.stop(), 0)
        d.start()
        self.set_clock("2026-06-10T19:00:00Z")
        self.wait_runs(6)
        settle(d)     # housekeeping passes at this clock: any re-check or mail would have started
        self.assertEqual(len(self.late_mails()), 1)
        self.assertEqual(query(env.ops, "SELECT count(*) FROM sync_alerts WHERE kind = 'edition_late' AND "
                                        "alert_key = '2026-06'")[0][0], 1)

        # The edition appears (late); the next daily re-check syncs it.
        self.fake.post("/_fake/mutate", {"action": "edition", "edition": 2})
        sent = len(self.smtp.received())
        self.set_clock("2026-06-11T19:00:00Z")
        r = self.wait_runs(7)
        self.assertEqual((r[2], r[3]), ("timer", "edition watch"))
        s = summary(env.ops, r[0])
        self.assertTrue(s["new_edition"])
        self.assertEqual((s["watch"]["state"], s["watch"]["month"], s["watch"]["checks"]), ("picked_up", "2026-06", 4))
        self.assertNotIn("watch", self.job_state())
        mail = self.completion_mail(sent)
        self.assertIn("Edition watch: this is the 2026-06 edition", mail["msg"].get_content())
        self.assertGreater(query(env.ops, "SELECT changes FROM sync_runs WHERE run_id = ?", (r[0],))[0][0], 0)
        # The late alert is over (syncctl doctor stops reporting it).
        self.assertIsNotNone(query(env.ops, "SELECT cleared_at FROM sync_alerts WHERE kind = 'edition_late' AND "
                                            "alert_key = '2026-06'")[0][0])
        env.assert_matches(self, self.fake.get("/_fake/dump"))

        # Disarmed: no more re-checks.
        self.set_clock("2026-06-13T19:00:00Z")
        settle(d)     # housekeeping passes at this clock: any re-check or mail would have started
        self.assertEqual(self.nruns(), 7)
        # A manual run later in the month finds the month's edition already in: nothing to wait for.
        self.set_clock("2026-06-15T01:00:00Z")
        self.assertTrue(ctl(d.socket_path(), "trigger")["ok"])
        r = self.wait_runs(8)
        self.assertEqual(summary(env.ops, r[0])["watch"]["state"], "current")
        self.assertNotIn("watch", self.job_state())
        self.assertEqual(len(self.late_mails()), 1)
        st = ctl(d.socket_path(), "status")
        self.assertEqual(st["result"]["edition"]["courses"]["name"], "CRICOS Courses.csv")
        self.assertEqual(d.stop(), 0)
        env.wd.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
