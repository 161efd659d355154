#!/usr/bin/python3
"""qb-reconcile: pending invoices pushed once each and marked synced, the result JSON, reconciliation (payment,
deletion, changed amount), the attention mail, `syncctl qb status` and `syncctl runs --json`.

The case (PushCases) runs in both billing modes: PushTest with billing in ops.db, D1PushTest with billing in the fake
D1 (qbd1env.py), which also checks that D1's rows say what QuickBooks holds after the push and after the
reconciliation."""

import json
import unittest

from qbd1env import D1Env, d1_mismatches
from qbenv import QBEnv, RESULT_KEYS, result
from harness import SmtpSink, query


class PushCases:
    """The case; a subclass gives new_env() (the billing mode) and may check more in check_billing()."""

    @classmethod
    def setUpClass(cls):
        cls.smtp = SmtpSink()
        try:
            cls.env = cls.new_env(smtp=cls.smtp, item_map="essential=3,pro=5")
        except BaseException:
            cls.smtp.stop()
            raise

    def check_billing(self, docs):
        """Local mode: the checks above are on the billing tables themselves."""

    @classmethod
    def tearDownClass(cls):
        cls.env.cleanup()
        cls.smtp.stop()

    def test_push_reconcile_and_report(self):
        env = self.env
        env.customer(1, "Acme Training Pty Ltd", email="accounts@acme.test")
        env.customer(2, "O'Brien College")       # an apostrophe: quoted in the query language
        env.customer(3, "Pye's Cakes")           # already in QuickBooks (a sandbox customer): found, not created
        lines = ((2, 12345, "essential"), (1, 2550, None), (3, 999, "pro"))
        for i in range(1, 7):
            env.invoice(i, 1 + i % 3, "INV-%04d" % i, lines)
        rc, res = env.once()
        self.assertEqual(rc, 0, env.daemon.read_log()[-3000:])
        self.assertEqual(list(res.keys()), RESULT_KEYS)
        self.assertEqual(res, result(synced=6))

        ledger = env.ledger()
        self.assertEqual(ledger["duplicates"], {})
        self.assertEqual(sorted(ledger["doc_numbers"]), ["INV-%04d" % i for i in range(1, 7)])
        for doc, v in ledger["doc_numbers"].items():
            self.assertEqual(v["created"], 1, doc)
        for i in range(1, 7):
            row = env.inv(i)
            self.assertEqual(row["status"], "synced")
            self.assertIsNotNone(row["qb_id"])
            self.assertEqual(row["qb_total"], 2 * 12345 + 2550 + 3 * 999)
        # Money exact, items mapped per plan, one requestid per write.
        dump = env.fake.get("/_fake/dump")
        inv1 = [x for x in dump["Invoice"] if x["DocNumber"] == "INV-0001"][0]
        self.assertEqual(inv1["TotalAmt"], 302.37)
        items = [ln["SalesItemLineDetail"]["ItemRef"]["value"] for ln in inv1["Line"]
                 if ln["DetailType"] == "SalesItemLineDetail"]
        self.assertEqual(items, ["3", "1", "5"])
        st = env.stats()
        self.assertEqual(st["writes_without_requestid"], {})
        self.assertEqual(st["throttled"], 0)
        self.assertEqual(st["by_op"].get("customer.create"), 2, st["by_op"])   # Pye's Cakes was found
        self.assertEqual(st["by_op"].get("invoice.create"), 6)
        self.assertEqual(st["token"].get("hard_expiry_header"), 1)
        self.assertNotIn("no_accept_json", st["api"])
        self.assertEqual(set(st["minorversion"]), {"75"})
        custs = dict(env.sql("SELECT id, qb_customer_id FROM billing_customers"))
        self.assertIsNotNone(custs[3])
        self.check_billing(["INV-%04d" % i for i in range(1, 7)])

        # A second cycle: nothing to push, nothing created again.
        rc, res = env.once()
        self.assertEqual((rc, res), (0, result(synced=0)))
        self.assertEqual(env.ledger()["total_created"], 6)

        # QuickBooks side changes: a payment, a deletion, an edited amount, a partial payment.
        env.mutate({"action": "payment", "doc_number": "INV-0002"})
        env.mutate({"action": "payment", "doc_number": "INV-0005", "amount": 10})
        env.mutate({"action": "delete_invoice", "doc_number": "INV-0003"})
        env.mutate({"action": "edit_invoice", "doc_number": "INV-0004", "amount": 99.5})
        sent = len(self.smtp.received())
        rc, res = env.once()
        self.assertEqual((rc, res), (0, result(synced=0)))
        paid = env.inv(2)
        self.assertEqual(paid["qb_state"], "paid")
        self.assertEqual(paid["balance"], 0)
        self.assertRegex(paid["paid_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(env.inv(5)["qb_state"], "partial")
        self.assertEqual(env.inv(5)["balance"], 2 * 12345 + 2550 + 3 * 999 - 1000)
        self.assertIsNone(env.inv(5)["paid_at"])
        self.assertEqual(env.inv(3)["qb_state"], "deleted")
        self.assertEqual(env.inv(4)["qb_total"], 9950)
        issues = sorted(env.sql("SELECT invoice_id, kind, our_cents, qb_cents FROM qb_reconcile_issues"
                                " WHERE resolved_at IS NULL"))
        self.assertEqual(issues, [(3, "deleted_in_qb", None, None), (4, "amount_differs", 30237, 9950)])
        self.check_billing(["INV-%04d" % i for i in range(1, 7)])
        # New issues need the operator: one mail, naming them.
        mails = self.smtp.wait(sent + 1)[sent:]
        self.assertEqual(len(mails), 1)
        subject = str(mails[0]["msg"]["Subject"])
        self.assertTrue(subject.startswith("[qb-reconcile] needs attention"), subject)
        body = mails[0]["msg"].get_content()
        self.assertIn("deleted_in_qb", body)
        self.assertIn("amount_differs", body)

        # A quiet cycle sends no mail: after it exited (--once delivers its mail before exiting) it queued none.
        queued = query(env.ops, "SELECT count(*) FROM mail_outbox")[0][0]
        rc, res = env.once()
        self.assertEqual(rc, 0)
        self.assertEqual(query(env.ops, "SELECT count(*) FROM mail_outbox")[0][0], queued)
        self.assertEqual(len(self.smtp.received()), sent + 1)

        # The result is on the run row and in syncctl.
        r = env.ctl("runs", "--sync-type", "qb_reconcile", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        runs = json.loads(r.stdout)
        self.assertEqual(runs[0]["summary"], result(synced=0))
        self.assertEqual(runs[-1]["summary"], result(synced=6))
        r = env.ctl("qb", "status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("QuickBooks connection: connected", r.stdout)
        self.assertIn("synced 6", r.stdout)
        self.assertIn('"heartbeat":true', r.stdout)
        r = env.ctl("qb", "status", "--json")
        st = json.loads(r.stdout)
        self.assertEqual(st["connection"]["state"], "connected")
        for col in ("realm_id", "refresh_expires_at", "refresh_hard_expires_at", "last_heartbeat_at",
                    "last_heartbeat_ok"):
            self.assertRegex(str(st["connection"][col]), r"^(\d+|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$", col)
        self.assertEqual(st["invoices"]["synced"], 6)
        self.assertEqual(env.leaked([m["raw"] for m in self.smtp.received()]), [])


class PushTest(PushCases, unittest.TestCase):
    """billing_source = local."""

    @classmethod
    def new_env(cls, **kw):
        return QBEnv("qbpush", **kw)


class D1PushTest(PushCases, unittest.TestCase):
    """billing_source = d1: the same case with billing in the fake D1 (the env's own)."""

    @classmethod
    def new_env(cls, **kw):
        return D1Env("qbpushd1", **kw)

    def check_billing(self, docs):
        """D1 says what QuickBooks holds (Id, SyncToken, TotalAmt, generation), and has the reconciliation's
        outcome (paid, partial, deleted, the amount QuickBooks has, the open issues)."""
        env = self.env
        self.assertEqual(d1_mismatches(env, docs), [], env.daemon.read_log()[-3000:])
        same = "SELECT id, qb_sync_status, qb_state, qb_balance_cents, paid_at, qb_total_cents, qb_updated_at" \
               " FROM billing_invoices ORDER BY id"
        self.assertEqual([tuple(r.values()) for r in env.drows(same)], env.sql(same))
        issues = "SELECT invoice_id, kind, our_cents, qb_cents FROM qb_reconcile_issues WHERE resolved_at IS NULL" \
                 " ORDER BY invoice_id, kind"
        self.assertEqual([tuple(r.values()) for r in env.drows(issues)], env.sql(issues))


if __name__ == "__main__":
    unittest.main(verbosity=2)
