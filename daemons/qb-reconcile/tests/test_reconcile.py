#!/usr/bin/python3
"""qb-reconcile reconciliation paths: the first cycle reads synced invoices with paged queries, later cycles use
CDC; a CDC answer at the object cap is continued from the newest time it held (and falls back to paged queries
when it cannot progress); --full reads everything again and finds invoices missing in QuickBooks."""

import unittest

from qbenv import QBEnv, result


class ReconcileTest(unittest.TestCase):
    def setUp(self):
        # A cap of 3 objects per CDC answer (QuickBooks: 1,000) so a handful of changes overflows it.
        self.env = QBEnv("qbrec", fake_args=("--cdc-max-objects", "3"), cdc_max_objects=3, query_batch=4)
        self.env.customer(1, "Reconcile RTO")
        for i in range(1, 9):
            self.env.invoice(i, 1, "C-%d" % i, ((1, 1000 * i, None),))

    def tearDown(self):
        self.env.cleanup()

    def test_paged_then_cdc_continued_past_the_cap(self):
        env = self.env
        rc, res = env.once()
        self.assertEqual((rc, res), (0, result(synced=8)))
        self.assertEqual(env.stats()["by_op"].get("cdc", 0), 0)      # first reconcile: paged (8 / 4 = 2 queries)
        # Payments at different times, more changes than one CDC answer holds.
        for i in range(1, 9):
            env.fake.post("/_fake/clock", {"advance": 10})
            env.mutate({"action": "payment", "doc_number": "C-%d" % i})
        env.fake.post("/_fake/stats/reset")
        rc, res = env.once()
        self.assertEqual((rc, res), (0, result()))
        st = env.stats()
        self.assertGreaterEqual(st["by_op"]["cdc"], 3, st["by_op"])   # continued, not cut short
        self.assertGreaterEqual(st["cdc_truncated"], 2)
        self.assertEqual([env.inv(i)["qb_state"] for i in range(1, 9)], ["paid"] * 8)
        self.assertTrue(all(env.inv(i)["paid_at"] for i in range(1, 9)))

    def test_cdc_without_progress_falls_back_and_full_finds_missing(self):
        env = self.env
        rc, res = env.once()
        self.assertEqual(res, result(synced=8))
        # Eight changes in the same second: a capped answer cannot move the window on.
        env.fake.post("/_fake/clock", {"freeze": True})
        for i in range(1, 9):
            env.mutate({"action": "payment", "doc_number": "C-%d" % i, "amount": 1})
        env.fake.post("/_fake/clock", {"freeze": False})
        env.fake.post("/_fake/stats/reset")
        rc, res = env.once()
        self.assertEqual(res, result())
        self.assertIn("paged queries instead", env.daemon.read_log())
        self.assertEqual([env.inv(i)["qb_state"] for i in range(1, 9)], ["partial"] * 8)
        # Deleted in QuickBooks: a --full cycle reads every synced invoice and reports the missing one.
        env.mutate({"action": "delete_invoice", "doc_number": "C-8"})
        env.fake.post("/_fake/stats/reset")
        rc, res = env.once()
        # (The 1 h margin still holds the eight same-second changes, so this cycle pages again: the deletion is
        # seen as a missing invoice rather than a CDC tombstone.)
        self.assertIn(env.inv(8)["qb_state"], ("deleted", "missing"))
        self.assertEqual(len(env.sql("SELECT kind FROM qb_reconcile_issues WHERE invoice_id = 8")), 1)
        from harness import ctl
        d = env.daemon.start()
        self.assertTrue(ctl(d.socket_path(), "trigger", {"full": True})["ok"])
        from qbenv import wait_for
        wait_for(lambda: env.sql("SELECT count(*) FROM sync_runs WHERE status = 'running'")[0][0] == 0 and
                 env.sql("SELECT count(*) FROM sync_runs WHERE full = 1 AND status = 'complete'")[0][0] == 1,
                 timeout=30, what="the full cycle")
        self.assertEqual(d.stop(), 0)
        self.assertEqual(env.inv(8)["qb_state"], "missing")
        kinds = [k for (k,) in env.sql("SELECT kind FROM qb_reconcile_issues WHERE invoice_id = 8")]
        self.assertIn("missing_in_qb", kinds)
        self.assertEqual(env.inv(7)["qb_state"], "partial")


if __name__ == "__main__":
    unittest.main(verbosity=2)
