#!/usr/bin/python3
"""qb-reconcile exactly-once: a SIGKILL after QuickBooks created the invoices but before our commit, a lost answer,
and a kill while the create is in flight; after the restart the ledger has each DocNumber once.

The cases (CrashCases) run in both billing modes: CrashTest with the billing tables in ops.db (local), D1CrashTest
with them in the fake D1 (billing_source = d1, qbd1env.py), where every check of the ledger also checks that D1's
billing rows say what QuickBooks holds (synced, its Id and SyncToken, the journal's generation) once the write-backs
drained."""

import signal
import subprocess
import unittest

from qbd1env import D1Env, d1_mismatches
from qbenv import QBEnv, result, slow_factor, wait_for


class CrashCases:
    """The cases; a subclass gives new_env() (the mode) and may check more in assert_once_each()."""

    def setUp(self):
        self.env = self.new_env("qbcrash")
        self.env.customer(1, "Crash Test RTO Pty Ltd")

    def tearDown(self):
        self.env.cleanup()

    def assert_once_each(self, docs):
        ledger = self.env.ledger()
        self.assertEqual(ledger["duplicates"], {})
        for d in docs:
            self.assertEqual(ledger["doc_numbers"][d]["created"], 1, d)

    def assert_pending(self, ids):
        """After the kill (or the rollback): nothing was recorded as pushed."""
        self.assertEqual([self.env.inv(i)["status"] for i in ids], ["pending"] * len(ids))

    def test_kill_before_commit_then_restart(self):
        env = self.env
        for i in range(1, 5):
            env.invoice(i, 1, "K-%d" % i)
        rc, res = env.once(env={"RTOPACKS_CRASH_AT": "qbr_push_before_commit:1"})
        self.assertEqual(rc, -signal.SIGKILL, env.daemon.read_log()[-2000:])
        # QuickBooks has them all; our database does not know yet.
        self.assertEqual(env.ledger()["total_created"], 4)
        self.assert_pending(range(1, 5))
        rc, res = env.once()
        self.assertEqual((rc, res), (0, result(synced=4)), env.daemon.read_log()[-3000:])
        self.assert_once_each(["K-%d" % i for i in range(1, 5)])
        self.assertEqual(env.stats()["by_op"].get("invoice.create"), 4)    # the restart created nothing
        self.assertIn("adopted", env.daemon.read_log())
        runs = env.sql("SELECT status, trigger FROM sync_runs ORDER BY started_at, run_id")
        self.assertEqual([r[0] for r in runs], ["stale", "complete"])
        self.assertEqual(runs[1][1], "resume")

    def test_lost_answer_is_replayed_or_adopted(self):
        env = self.env
        env.invoice(1, 1, "L-1")
        # Retried in the same run with the same requestid: QuickBooks replays its answer.
        env.fault("invoice.create", "lost_response", 1)
        rc, res = env.once()
        self.assertEqual((rc, res), (0, result(synced=1)), env.daemon.read_log()[-3000:])
        self.assertGreaterEqual(env.stats()["api"].get("replays", 0), 1)
        self.assert_once_each(["L-1"])
        # The answer cut short (the invoice was created) and no retry in the run (retries = 0): failed; the next
        # run finds it by DocNumber and adopts it.
        env.invoice(2, 1, "L-2")
        with open(env.config) as f:
            conf = f.read()
        with open(env.config, "w") as f:
            f.write(conf.replace("[qb-reconcile]\n", "[qb-reconcile]\nretries = 0\n"))
        env.fault("invoice.create", "truncate", 1)
        rc, res = env.once()
        self.assertEqual((rc, res), (10, result("degraded", failed=1)))
        self.assertEqual(env.inv(2)["status"], "failed")
        self.assertEqual(env.inv(2)["gen"], 0)      # no answer: the same requestid next time
        rc, res = env.once()
        self.assertEqual((rc, res), (0, result(synced=1)))
        self.assert_once_each(["L-1", "L-2"])

    def test_kill_while_the_create_is_in_flight(self):
        env = self.env
        env.invoice(1, 1, "F-1")
        # QuickBooks creates the invoice, then is slow to answer: we die waiting.
        env.fault("invoice.create", "slow", 1, delay=30)
        p = subprocess.Popen(env.daemon.command([], once=True), stdout=subprocess.DEVNULL,
                             stderr=open(env.daemon.log_path, "ab"))
        wait_for(lambda: env.ledger()["total_created"] == 1, timeout=30 * slow_factor(), what="the create")
        p.send_signal(signal.SIGKILL)
        p.wait()
        env.fake.post("/_fake/fault/clear")
        rc, res = env.once()
        self.assertEqual((rc, res), (0, result(synced=1)), env.daemon.read_log()[-3000:])
        self.assert_once_each(["F-1"])
        self.assertEqual(env.inv(1)["status"], "synced")

    def test_sigterm_during_a_hung_push_rolls_back_and_resumes(self):
        env = self.env
        with open(env.config) as f:
            conf = f.read()
        with open(env.config, "w") as f:
            f.write(conf.replace("[qb-reconcile]\n", "[qb-reconcile]\nstop_grace = 300ms\n"))
        for i in range(1, 4):
            env.invoice(i, 1, "H-%d" % i)
        env.fault("invoice.create", "hang", -1)
        d = env.daemon.start()
        from harness import ctl
        self.assertTrue(ctl(d.socket_path(), "trigger")["ok"])
        wait_for(lambda: env.stats()["by_op"].get("invoice.create", 0) >= 1, timeout=20 * slow_factor(),
                 what="a create in flight")
        self.assertEqual(d.stop(), 0, d.read_log()[-3000:])     # the step is cut off after stop_grace
        self.assertIn("rolling it back", d.read_log())
        env.fake.post("/_fake/fault/clear")
        self.assert_pending(range(1, 4))
        rc, res = env.once()
        self.assertEqual((rc, res), (0, result(synced=3)), env.daemon.read_log()[-3000:])
        self.assert_once_each(["H-1", "H-2", "H-3"])


class CrashTest(CrashCases, unittest.TestCase):
    """billing_source = local (the billing tables in ops.db)."""

    def new_env(self, name):
        return QBEnv(name)


class D1CrashTest(CrashCases, unittest.TestCase):
    """billing_source = d1: the same cases with billing in the fake D1 (the env's own)."""

    def new_env(self, name):
        return D1Env(name + "d1")

    def assert_once_each(self, docs):
        super().assert_once_each(docs)
        self.assertEqual(d1_mismatches(self.env, docs), [], self.env.daemon.read_log()[-3000:])

    def assert_pending(self, ids):
        super().assert_pending(ids)
        self.assertEqual([self.env.dinv(i)["qb_sync_status"] for i in ids], ["pending"] * len(ids))


if __name__ == "__main__":
    unittest.main(verbosity=2)
