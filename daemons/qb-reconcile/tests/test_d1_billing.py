#!/usr/bin/python3
"""qb-reconcile with billing_source = d1 (issue 16; daemons/qb-reconcile/d1billing.c): the billing tables live in the
ops database of the fake D1 (tests/fakes/fake_d1.py); each cycle pulls the invoices to push into ops.db (the journal
of every QuickBooks request), pushes them exactly as in local mode (against tests/fakes/fake_qbo.py), and writes
every outcome back to D1 through qb_d1_writeback, compare-and-set on updated_at so a newer billing edit is never
overwritten.  Checked: invoices inserted in D1 are pushed once each and D1 matches the QuickBooks ledger; an edit in
D1 during the cycle ends as ONE QuickBooks invoice with the newest lines; SIGKILL during the write-back; D1 faults
(429 block, 504 after commit, an outage at the pull and mid-cycle); `syncctl qb retry` resets the invoice in D1;
`syncctl qb status` and `syncctl doctor` show write-backs that wait.

The exactly-once cases shared with local mode (SIGKILL before the push's commit, a lost answer, a kill with the
create in flight, SIGTERM during a hung push, the random-kill torture) are not here: test_crash.py (D1CrashTest) and
test_torture.py (D1TortureTest) run them in both modes.  D1Env and the fake D1 are in qbd1env.py."""

import json
import os
import signal
import subprocess
import time
import unittest

from qbd1env import D1_TOKEN, D1Env, FakeD1
from qbenv import QBEnv, result
from harness import wait_for


class D1Billing(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d1 = FakeD1()      # one for the class (qbd1env.py), its billing tables made again for each test

    @classmethod
    def tearDownClass(cls):
        cls.d1.stop()

    def setUp(self):
        self.d1.reset()
        self.envs = []

    def tearDown(self):
        for e in self.envs:
            e.cleanup()

    def env(self, name, **kw):
        e = D1Env(name, d1=self.d1, **kw)
        self.envs.append(e)
        return e

    def assert_consistent(self, env, ids, docs):
        """Every DocNumber once in QuickBooks, and D1 says what QuickBooks has."""
        ledger = env.ledger()
        self.assertEqual(ledger["duplicates"], {})
        for d in docs:
            self.assertEqual(ledger["doc_numbers"][d]["created"], 1, d)
        for iid in ids:
            row = env.dinv(iid)
            self.assertEqual(row["qb_sync_status"], "synced", (iid, row))
            self.assertIsNotNone(row["qb_invoice_id"])
            local = env.inv(iid)
            self.assertEqual(row["qb_invoice_id"], local["qb_id"])
            self.assertEqual(row["qb_total_cents"], row["total_cents"])
            self.assertEqual(row["qb_request_gen"], local["gen"])
            self.assertEqual(ledger["doc_numbers"][row["doc_number"]]["ids"], [row["qb_invoice_id"]])
            qi = [i for i in ledger["invoices"] if i["Id"] == row["qb_invoice_id"]][0]
            self.assertEqual(round(float(qi["TotalAmt"]) * 100), row["total_cents"])
            self.assertEqual(qi["SyncToken"], row["qb_sync_token"])
        self.assertEqual(env.waiting(), 0)

    # --- the round trip ----------------------------------------------------------------------------------------

    def test_pushed_once_and_d1_matches_the_ledger(self):
        env = self.env("qbd1-basic")
        env.dcustomer(1, "D1 Test RTO Pty Ltd")
        for i in range(1, 6):
            env.dinvoice(i, 1, "D-%d" % i, lines=((1, 10000 + i, "essential"), (2, 500, "addon")))
        self.d1.post("/_fake/stats/reset")
        rc, res = env.once()
        self.assertEqual((rc, res), (0, result(synced=5)), env.daemon.read_log()[-3000:])
        self.assert_consistent(env, range(1, 6), ["D-%d" % i for i in range(1, 6)])
        self.assertEqual(env.stats()["by_op"].get("invoice.create"), 5)
        # the customer's QuickBooks id, the connection went back too
        self.assertIsNotNone(env.drows("SELECT qb_customer_id FROM billing_customers WHERE id = 1")[0]
                             ["qb_customer_id"])
        conn = env.drows("SELECT * FROM qb_connection")
        self.assertEqual(conn[0]["state"], "connected")
        self.assertIsNone(conn[0]["pending_state"])
        # a second run pushes nothing and creates nothing
        rc, res = env.once()
        self.assertEqual((rc, res), (0, result(synced=0)), env.daemon.read_log()[-3000:])
        self.assertEqual(env.stats()["by_op"].get("invoice.create"), 5)
        d1_requests = self.d1.get("/_fake/stats")["requests"]
        self.assertLess(d1_requests, 30, d1_requests)
        p = env.ctl("qb", "status")
        self.assertIn("Billing in D1: every write-back delivered", p.stdout)
        self.assertNotIn(D1_TOKEN, env.daemon.read_log())

    def test_local_mode_is_unchanged(self):
        """billing_source = local (the default) queues no write-back and leaves D1 alone."""
        env = QBEnv("qbd1-local")
        self.envs.append(env)
        env.customer(1, "Local RTO")
        env.invoice(1, 1, "L-1")
        rc, res = env.once()
        self.assertEqual((rc, res), (0, result(synced=1)), env.daemon.read_log()[-3000:])
        self.assertEqual(env.sql("SELECT count(*) FROM qb_d1_writeback")[0][0], 0)
        self.assertEqual(env.sql("SELECT mode FROM qb_d1_state")[0][0], "local")

    def test_check_needs_d1(self):
        env = self.env("qbd1-check")
        with open(env.config) as f:
            conf = f.read()
        with open(env.config, "w") as f:
            f.write(conf[:conf.index("[d1]")])
        p = subprocess.run(env.daemon.command(["-n"]), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("billing_source = d1 needs [d1]", p.stdout.decode())

    # --- concurrent edits -----------------------------------------------------------------------------------------

    def test_edit_during_the_cycle_ends_as_one_invoice_with_the_newest_lines(self):
        env = self.env("qbd1-edit")
        env.dcustomer(1, "Edit RTO")
        env.dinvoice(1, 1, "E-1")
        env.dinvoice(2, 1, "E-2")
        # the creates are slow: billing edits invoice 1 while the cycle pushes the old lines
        env.fault("invoice.create", "slow", 2, delay=3)
        env.daemon.start()
        try:
            env.ctl("trigger", "qb-reconcile")
            wait_for(lambda: env.sql("SELECT count(*) FROM qb_d1_base")[0][0] == 2, timeout=60, what="the pull")
            env.dedit(1, ((3, 2000, "professional"),), "2026-12-01T00:00:01Z")
            # and the admin resets nothing; wait for the run to end
            wait_for(lambda: env.sql("SELECT count(*) FROM sync_runs WHERE status != 'running'")[0][0] >= 1,
                     timeout=120, what="the run")
            wait_for(lambda: env.waiting() == 0, timeout=30, what="the write-backs")
        finally:
            env.daemon.stop()
        row = env.dinv(1)
        # billing's edit stands (pending, its total); the QuickBooks id went back
        self.assertEqual(row["qb_sync_status"], "pending")
        self.assertEqual(row["total_cents"], 6000)
        self.assertIsNotNone(row["qb_invoice_id"])
        self.assertEqual(env.dinv(2)["qb_sync_status"], "synced")
        self.assertIn("was changed in D1 since it was pulled", env.daemon.read_log())
        # the next run sends the edit as an update of the same QuickBooks invoice
        rc, res = env.once()
        self.assertEqual((rc, res), (0, result(synced=1)), env.daemon.read_log()[-3000:])
        self.assert_consistent(env, (1, 2), ("E-1", "E-2"))
        self.assertEqual(env.stats()["by_op"].get("invoice.create"), 2)
        self.assertEqual(env.dinv(1)["qb_total_cents"], 6000)
        self.assertEqual(env.stats()["by_op"].get("invoice.update"), 1)

    def test_admin_retry_during_the_cycle_is_not_overwritten(self):
        env = self.env("qbd1-retry", max_attempts=5)
        env.dcustomer(1, "Retry RTO")
        env.dinvoice(1, 1, "R-1")
        env.fault("invoice.create", "xml_error", 1, code="6000")
        rc, res = env.once()
        self.assertEqual(res["failed"], 1, env.daemon.read_log()[-3000:])
        row = env.dinv(1)
        self.assertEqual(row["qb_sync_status"], "failed")
        self.assertEqual(row["qb_attempts"], 1)
        self.assertIsNotNone(row["qb_last_error"])
        gen = env.inv(1)["gen"]
        # syncctl qb retry resets it in D1, as the admin's Retry does
        env.daemon.start()
        try:
            p = env.ctl("qb", "retry", "1")
        finally:
            env.daemon.stop()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("reset in D1", p.stdout)
        row = env.dinv(1)
        self.assertEqual((row["qb_sync_status"], row["qb_attempts"], row["qb_last_error"]), ("pending", 0, None))
        rc, res = env.once()
        self.assertEqual((rc, res), (0, result(synced=1)), env.daemon.read_log()[-3000:])
        self.assertGreater(env.inv(1)["gen"], gen)       # a Retry starts a new requestid generation
        self.assert_consistent(env, (1,), ("R-1",))

    # --- SIGKILL -----------------------------------------------------------------------------------------------

    def test_kill_during_write_back_then_restart(self):
        env = self.env("qbd1-killwb")
        env.dcustomer(1, "Kill WB RTO")
        for i in range(1, 4):
            env.dinvoice(i, 1, "W-%d" % i)
        # D1 takes the write-back slowly: the daemon dies while it is in flight (committed in D1 or not)
        self.d1.post("/_fake/fault", {"op": "query", "kind": "slow", "delay": 3, "count": -1})
        env.daemon.start()
        try:
            env.ctl("trigger", "qb-reconcile")
            wait_for(lambda: env.waiting() > 0 and env.inv(1)["status"] == "synced", timeout=90,
                     what="outcomes queued for D1")
            time.sleep(0.5)
            os.kill(env.daemon.proc.pid, signal.SIGKILL)
            env.daemon.proc.wait()
        finally:
            self.d1.post("/_fake/fault/clear")
        self.assertEqual(env.ledger()["total_created"], 3)
        rc, res = env.once()
        self.assertIn(rc, (0, 10), env.daemon.read_log()[-3000:])
        rc, res = env.once()
        self.assertEqual((rc, res), (0, result(synced=0)), env.daemon.read_log()[-3000:])
        self.assert_consistent(env, range(1, 4), ["W-%d" % i for i in range(1, 4)])
        self.assertEqual(env.stats()["by_op"].get("invoice.create"), 3)

    # --- D1 faults ---------------------------------------------------------------------------------------------

    def test_429_block_is_waited_out(self):
        env = self.env("qbd1-429")
        env.dcustomer(1, "Rate RTO")
        env.dinvoice(1, 1, "Q-1")
        self.d1.post("/_fake/fault", {"op": "query", "kind": "http429", "block": 2, "skip": 1})
        t = time.time()
        rc, res = env.once()
        self.assertEqual((rc, res), (0, result(synced=1)), env.daemon.read_log()[-3000:])
        self.assertGreaterEqual(time.time() - t, 1.5)
        self.assert_consistent(env, (1,), ("Q-1",))

    def test_504_after_commit_is_replayed_harmlessly(self):
        env = self.env("qbd1-504", d1_keys={"retries": "4"})
        env.dcustomer(1, "Timeout RTO")
        env.dinvoice(1, 1, "T-1")
        env.dinvoice(2, 1, "T-2")
        # a 504 after D1 committed, at the pull (the first requests) ...
        self.d1.post("/_fake/fault", {"op": "query", "kind": "timeout_504", "count": 2})
        env.fault("invoice.create", "slow", 2, delay=1)
        env.daemon.start()
        try:
            env.ctl("trigger", "qb-reconcile")
            wait_for(lambda: env.sql("SELECT count(*) FROM qb_d1_base")[0][0] == 2, timeout=60, what="the pull")
            # ... and at the outcomes' write-back: replayed, and the compare-and-set accepts its own write
            self.d1.post("/_fake/fault", {"op": "query", "kind": "timeout_504", "count": 3})
            wait_for(lambda: env.sql("SELECT count(*) FROM sync_runs WHERE status != 'running'")[0][0] >= 1,
                     timeout=120, what="the run")
        finally:
            env.daemon.stop()
        status, summary = env.sql("SELECT status, summary FROM sync_runs ORDER BY started_at DESC LIMIT 1")[0]
        self.assertEqual((status, json.loads(summary)), ("complete", result(synced=2)),
                         env.daemon.read_log()[-3000:])
        self.assertIn("write-back: HTTP 504", env.daemon.read_log())
        self.assertNotIn("was changed in D1 since it was pulled", env.daemon.read_log())
        self.assert_consistent(env, (1, 2), ("T-1", "T-2"))

    def test_outage_at_the_pull_pushes_nothing(self):
        env = self.env("qbd1-outage")
        env.dcustomer(1, "Outage RTO")
        env.dinvoice(1, 1, "O-1")
        self.d1.post("/_fake/outage", {"mode": "reset", "seconds": 600})
        try:
            rc, res = env.once()
        finally:
            self.d1.post("/_fake/outage", {"mode": "off"})
        self.assertEqual(rc, 10, env.daemon.read_log()[-3000:])
        self.assertEqual(res, result(status="degraded"))
        self.assertEqual(env.stats()["by_op"].get("invoice.create"), None)
        err = env.sql("SELECT error FROM sync_runs ORDER BY started_at DESC LIMIT 1")[0][0]
        self.assertIn("billing in D1 could not be read", err)
        self.assertIn("nothing is pushed", err)
        rc, res = env.once()
        self.assertEqual((rc, res), (0, result(synced=1)), env.daemon.read_log()[-3000:])
        self.assert_consistent(env, (1,), ("O-1",))

    def test_outage_mid_cycle_keeps_the_write_backs_for_later(self):
        env = self.env("qbd1-mid")
        env.dcustomer(1, "Mid RTO")
        env.dinvoice(1, 1, "M-1")
        env.dinvoice(2, 1, "M-2")
        # the pull works, then D1 goes away while the (slow) creates run
        env.fault("invoice.create", "slow", 2, delay=2)
        env.daemon.start()
        try:
            env.ctl("trigger", "qb-reconcile")
            wait_for(lambda: env.sql("SELECT count(*) FROM qb_d1_base")[0][0] == 2, timeout=60, what="the pull")
            self.d1.post("/_fake/fault", {"op": "query", "kind": "http503", "count": -1})
            wait_for(lambda: env.sql("SELECT count(*) FROM sync_runs WHERE status != 'running'")[0][0] >= 1,
                     timeout=120, what="the run")
        finally:
            env.daemon.stop()
        status, summary = env.sql("SELECT status, summary FROM sync_runs ORDER BY started_at DESC LIMIT 1")[0]
        self.assertEqual(status, "degraded", env.daemon.read_log()[-3000:])
        self.assertEqual(json.loads(summary), result(status="degraded", synced=2))
        self.assertGreater(env.waiting(), 0)
        self.assertEqual(env.ledger()["total_created"], 2)
        self.assertEqual(env.dinv(1)["qb_sync_status"], "pending")
        err = env.sql("SELECT error FROM sync_runs ORDER BY started_at DESC LIMIT 1")[0][0]
        self.assertIn("not delivered", err)
        p = env.ctl("qb", "status")
        self.assertIn("not yet delivered, waiting since", p.stdout)
        p = env.ctl("qb", "status", "--json")
        wb = json.loads(p.stdout)["d1_writeback"]
        self.assertGreater(wb["waiting"], 0)
        self.assertIn("last_error", wb)
        p = env.ctl("doctor", "qb-reconcile")
        self.assertIn("not yet written back to the billing tables in D1", p.stdout)
        self.d1.post("/_fake/fault/clear")
        # the next run delivers them first, and pushes nothing again
        rc, res = env.once()
        self.assertEqual((rc, res), (0, result(synced=0)), env.daemon.read_log()[-3000:])
        self.assert_consistent(env, (1, 2), ("M-1", "M-2"))
        self.assertEqual(env.stats()["by_op"].get("invoice.create"), 2)


if __name__ == "__main__":
    unittest.main()
