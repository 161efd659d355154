#!/usr/bin/python3
"""The cycle engine: crash and resume at every step boundary and inside steps, stale runs, retries, failure.

Every test runs the engine's test daemon (tests/testd) against the items test server (tests/kit/items_server.py)
and a real SMTP server (aiosmtpd).
"""

import os
import signal
import time
import unittest

from env import TestSyncEnv
from harness import Server, SmtpSink, cursor, dump_db, query, runs, settled_mails, wait_for, ctl, REPO

ITEMS_SERVER = os.path.join(REPO, "tests", "kit", "items_server.py")
# Columns that name a run, a cycle or a time differ between any two runs by design.
VOLATILE = ("run_id", "created_cycle", "changed_cycle", "updated_at", "seq")


class Env(TestSyncEnv):
    """A workdir, the test daemon's config and its upstream."""

    def __init__(self, items, smtp, **test_sync):
        keys = {"page_size": 10, "step_backoff": "50ms", "step_backoff_max": "200ms", "step_retries": 2}
        keys.update(test_sync)
        super().__init__(items, smtp, name="cycle", **keys)

    def corpus_dump(self):
        return dump_db(self.corpus, exclude_tables=("sync_checkpoint",), exclude_columns=VOLATILE)


class CycleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.items = Server(ITEMS_SERVER, "--items", "45")
        cls.smtp = SmtpSink()
        ref = Env(cls.items, cls.smtp)
        assert ref.daemon.run_once() == 0, ref.daemon.read_log()
        cls.reference = ref.corpus_dump()
        # How many step commits one uninterrupted cycle makes: the crash points are enumerated from it.
        cls.commits = query(ref.ops, "SELECT seq FROM test_sync_cursor")[0][0] - 1
        cls.ref_env = ref

    @classmethod
    def tearDownClass(cls):
        cls.items.stop()
        cls.smtp.stop()
        cls.ref_env.wd.cleanup()

    def test_reference_run(self):
        self.assertEqual(self.commits, 10, "init 1 + 5 pages + aggregate 1 + snapshot 1 + notify 2")
        cols, rows = self.reference["test_items"]
        self.assertEqual(len(rows), 45)
        r = runs(self.ref_env.ops)
        self.assertEqual([x["status"] for x in r], ["complete"])
        self.assertEqual(cursor(self.ref_env.ops, "test_sync")["cycle_phase"], "done")

    def crash_and_resume(self, point, n):
        env = Env(self.items, self.smtp)
        sent_before = len(self.smtp.received())
        rc = env.daemon.run_once(env={"RTOPACKS_CRASH_AT": "%s:%d" % (point, n)})
        self.assertEqual(rc, -signal.SIGKILL, "crash point %s:%d was not reached:\n%s" % (point, n,
                                                                                          env.daemon.read_log()))
        rc = env.daemon.run_once()
        self.assertEqual(rc, 0, env.daemon.read_log())
        self.assertEqual(env.corpus_dump(), self.reference, "after a kill at %s:%d" % (point, n))
        r = runs(env.ops)
        if point == "after_commit" and n == self.commits:
            # The last commit finishes the cycle: a kill after it interrupts nothing, the next run is a new cycle.
            self.assertEqual([x["status"] for x in r], ["complete", "complete"], r)
            self.assertEqual(r[1]["trigger"], "manual")
            env.wd.cleanup()
            return
        self.assertEqual(len(r), 2, r)
        self.assertEqual(r[0]["status"], "stale", r)
        self.assertIn("stopped during phase", r[0]["error"])
        self.assertEqual(r[1]["status"], "complete", r)
        self.assertEqual(r[1]["trigger"], "resume")
        self.assertEqual(r[1]["resumed_from"], r[0]["run_id"])
        self.assertEqual(r[1]["cycle_id"], r[0]["run_id"])
        self.assertEqual(cursor(env.ops, "test_sync")["cycle_phase"], "done")
        # Exactly one completion mail for the cycle, however the kill fell.
        mails = settled_mails(self.smtp, "test_sync/complete/%s" % r[0]["run_id"], env.ops, sent_before)
        self.assertEqual(len(mails), 1, "completion mails after a kill at %s:%d" % (point, n))
        env.wd.cleanup()

    def test_kill_at_every_step_boundary(self):
        for n in range(1, self.commits + 1):
            for point in ("before_commit", "after_commit", "step_begin"):
                with self.subTest(point=point, n=n):
                    self.crash_and_resume(point, n)

    def test_kill_inside_steps(self):
        # After a page's rows are written but before its commit: the whole page must roll back.
        for n in range(1, 6):
            with self.subTest(page=n):
                self.crash_and_resume("testd_page_written", n)

    def test_kill_while_a_request_is_in_flight_and_daemon_resumes_on_start(self):
        env = Env(self.items, self.smtp)
        self.items.fault("items", "slow", count=3, delay=1.0)
        d = env.daemon.start()
        self.assertTrue(ctl(d.socket_path(), "trigger")["ok"])
        # Kill while page 1 (or a later one) is being fetched: some pages may be committed, some not.
        wait_for(lambda: query(env.ops, "SELECT count(*) FROM sync_steps WHERE step = 'fetch_items'")[0][0] > 0,
                 what="fetch_items to start")
        # Kill once a slowed page request is in flight (the fault fired: the fake is holding it).
        wait_for(lambda: any(f["fired"] for f in self.items.faults()), what="a page request in flight")
        d.kill()
        self.items.post("/_fake/fault/clear")
        self.assertNotEqual(cursor(env.ops, "test_sync")["cycle_phase"], "done")
        # A daemon that starts with an unfinished cycle resumes it by itself.
        d.start()
        wait_for(lambda: cursor(env.ops, "test_sync")["cycle_phase"] == "done", timeout=30, what="the resumed cycle")
        wait_for(lambda: runs(env.ops)[-1]["status"] == "complete", what="the run row")
        self.assertEqual(d.stop(), 0)
        r = runs(env.ops)
        self.assertEqual([x["status"] for x in r], ["stale", "complete"])
        self.assertEqual(r[1]["trigger"], "resume")
        self.assertEqual(query(env.ops, "SELECT requested_by FROM sync_runs WHERE run_id = ?", (r[1]["run_id"],)),
                         [("startup",)])
        self.assertEqual(env.corpus_dump(), self.reference)
        env.wd.cleanup()

    def test_sigterm_finishes_the_step_and_exits_0(self):
        env = Env(self.items, self.smtp)
        self.items.fault("items", "slow", count=1, delay=1.0)
        d = env.daemon.start()
        self.assertTrue(ctl(d.socket_path(), "trigger")["ok"])
        wait_for(lambda: query(env.ops, "SELECT count(*) FROM sync_steps WHERE step = 'fetch_items'")[0][0] > 0,
                 what="fetch_items to start")
        self.assertEqual(d.stop(), 0, d.read_log())
        self.items.post("/_fake/fault/clear")
        r = runs(env.ops)
        self.assertEqual(r[-1]["status"], "cancelled")
        self.assertIn("stopped", r[-1]["error"])
        # The slow page was finished and committed, not thrown away.
        self.assertEqual(cursor(env.ops, "test_sync")["phase_cursor"], "page=2")
        self.assertEqual(env.daemon.run_once(), 0)
        self.assertEqual(env.corpus_dump(), self.reference)
        env.wd.cleanup()

    def test_sigterm_rolls_back_a_step_that_overruns_the_grace(self):
        env = Env(self.items, self.smtp, stop_grace="300ms")
        self.items.fault("items", "hang", count=1, hold=30)
        d = env.daemon.start()
        self.assertTrue(ctl(d.socket_path(), "trigger")["ok"])
        wait_for(lambda: query(env.ops, "SELECT count(*) FROM sync_steps WHERE step = 'fetch_items'")[0][0] > 0,
                 what="fetch_items to start")
        t0 = time.monotonic()
        self.assertEqual(d.stop(), 0, d.read_log())
        self.assertLess(time.monotonic() - t0, 5)
        self.items.post("/_fake/fault/clear")
        self.assertEqual(cursor(env.ops, "test_sync")["cycle_phase"], "fetch_items")
        self.assertEqual(cursor(env.ops, "test_sync")["phase_cursor"], "")
        self.assertEqual(runs(env.ops)[-1]["status"], "cancelled")
        env.wd.cleanup()

    def test_failing_step_is_retried_then_the_run_fails_and_the_next_trigger_resumes(self):
        env = Env(self.items, self.smtp, retries=0)
        sent_before = len(self.smtp.received())
        self.items.fault("items", "http500", count=3)   # 1 try + 2 step retries, no http retries
        rc = env.daemon.run_once()
        self.assertEqual(rc, 1, env.daemon.read_log())
        r = runs(env.ops)
        self.assertEqual(r[-1]["status"], "failed")
        self.assertIn("fetch_items:", r[-1]["error"])
        self.assertIn("HTTP 500", r[-1]["error"])
        steps = query(env.ops, "SELECT status, attempts, error FROM sync_steps WHERE step = 'fetch_items'")
        self.assertEqual(steps[0][0], "failed")
        self.assertEqual(steps[0][1], 3)
        self.assertIn("HTTP 500", steps[0][2])
        self.assertEqual(cursor(env.ops, "test_sync")["cycle_phase"], "fetch_items")
        mails = self.smtp.wait(sent_before + 1)[sent_before:]
        subject = str(mails[0]["msg"]["Subject"])
        self.assertTrue(subject.startswith("[test-sync] cycle FAILED \u2014 fetch_items: "), subject)
        self.assertIn("HTTP 500", subject)
        # The next trigger resumes where it failed.
        self.items.post("/_fake/fault/clear")
        self.assertEqual(env.daemon.run_once(), 0)
        r = runs(env.ops)
        self.assertEqual(r[-1]["trigger"], "resume")
        self.assertEqual(r[-1]["resumed_from"], r[0]["run_id"])
        self.assertEqual(env.corpus_dump(), self.reference)
        env.wd.cleanup()

    def test_rejected_record_makes_the_run_partial(self):
        items = Server(ITEMS_SERVER, "--items", "12")
        items.post("/_fake/mutate", {"action": "bad_item"})
        env = Env(items, self.smtp)
        self.assertEqual(env.daemon.run_once(), 3, env.daemon.read_log())
        self.assertEqual(runs(env.ops)[-1]["status"], "partial")
        self.assertEqual(query(env.ops, "SELECT rejected, status FROM sync_steps WHERE step = 'fetch_items'"),
                         [(1, "partial")])
        items.stop()
        env.wd.cleanup()

    def test_files_that_do_not_belong_together_are_refused(self):
        """ops.db commits first, so a crash leaves it at most one commit ahead of rtopacks.db, never behind and never
        two ahead (issue 11).  Anything else is two files from different moments (a restore of one of them): the
        daemon refuses to start, names both files, and changes nothing."""
        import sqlite3
        for name, sql in (("rtopacks.db ahead", "UPDATE test_sync_cursor SET seq = seq - 1"),
                          ("ops.db two ahead", "UPDATE test_sync_cursor SET seq = seq + 2")):
            with self.subTest(name):
                env = Env(self.items, self.smtp)
                rc = env.daemon.run_once(env={"RTOPACKS_CRASH_AT": "after_commit:4"})
                self.assertEqual(rc, -signal.SIGKILL)
                con = sqlite3.connect(env.ops)
                con.execute(sql)
                con.commit()
                before = dump_db(env.ops), dump_db(env.corpus)
                con.close()
                self.assertEqual(env.daemon.run_once(), 5, env.daemon.read_log()[-2000:])
                log = env.daemon.read_log()
                self.assertIn("do not belong together", log)
                self.assertIn(env.ops, log)
                self.assertIn(env.corpus, log)
                self.assertEqual((dump_db(env.ops), dump_db(env.corpus)), before)
                env.wd.cleanup()

    def test_split_commit_with_ops_ahead(self):
        """ops.db is the main database and commits first, so a kill between the two files' commits leaves ops.db
        one commit ahead (made for real: split_commit, tests/kit/crash.py).  The lost commit is undone: the
        cursor goes back to the checkpoint, and the step rows lose the lost commit's counts too (found by
        cricos-sync's torture: its completion mail counted `link` twice).  The lost commit is a resumed run's first
        of a phase, or its first in the middle of one."""
        ref_table = mail_table(self.ref_env.ops)
        for n, phase in ((6, "aggregate"), (3, "fetch_items")):
            with self.subTest(lost_commit_of=phase):
                env = Env(self.items, self.smtp)
                self.assertEqual(env.daemon.run_once(env={"RTOPACKS_CRASH_AT": "after_commit:%d" % n}), -signal.SIGKILL)
                self.assertEqual(env.daemon.run_once(env={"RTOPACKS_CRASH_AT": "split_commit@%s:1" % phase}),
                                 -signal.SIGKILL)
                lost_run = runs(env.ops)[-1]["run_id"]

                self.assertEqual(env.daemon.run_once(), 0, env.daemon.read_log())
                self.assertIn("a crash split commit", env.daemon.read_log())
                self.assertEqual(env.corpus_dump(), self.reference)
                # The run whose commit was lost: that step stale, counting nothing, as rtopacks.db holds nothing of it.
                self.assertEqual(query(env.ops, "SELECT status, records_in, records_out FROM sync_steps"
                                                " WHERE run_id = ? AND step = ?", (lost_run, phase)), [("stale", 0, 0)])
                # Every phase counted once over the cycle's runs, as in the uninterrupted cycle, and so in its mail.
                self.assertEqual(mail_table(env.ops), ref_table)
                # The next run resumed from the run that died.
                self.assertEqual(runs(env.ops)[-1]["resumed_from"], lost_run)
                env.wd.cleanup()


def mail_table(ops):
    """The completion mail's table of phases (status, records in, records out)."""
    body = query(ops, "SELECT message FROM mail_outbox WHERE mail_key LIKE 'test_sync/complete/%'")[0][0]
    body = body.replace("\r\n", "\n").split("\n\n", 1)[1]
    return body[body.index("Phase "):].split("\n\n", 1)[0]


if __name__ == "__main__":
    unittest.main(verbosity=2)
