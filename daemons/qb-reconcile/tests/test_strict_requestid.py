#!/usr/bin/python3
"""qb-reconcile against the strict QuickBooks fake: the reference marks two behaviours of `requestid` as uncertain,
and the default fake takes the lenient reading of both (a repeat with another body is replayed; ids are kept
forever).  Here the fake takes the other reading (--strict-requestid: another request under a used requestid gets
400 code 600; --requestid-retention: ids are forgotten after a while), and the daemon must still push every invoice
exactly once:
  * every retry it makes under one requestid (after a 500 that created the invoice, a reset mid-body, a 401 and a
    refresh) sends the same request, so it is replayed and never refused;
  * an update after billing changed the invoice comes under a new requestid;
  * an answer lost for good, then retried after QuickBooks forgot the requestid, does not create the invoice twice:
    the DocNumber lookup before a create finds it.

The daemon's cases (StrictCases) run in both billing modes: StrictRequestidTest with billing in ops.db, and
D1StrictRequestidTest with billing in the fake D1 (qbd1env.py), which also checks that D1's rows say what QuickBooks
holds.  The check of the fake itself (test_the_fake_is_strict) runs once, in the local class: it does not involve
the daemon's billing at all."""

import json
import unittest
import urllib.error
import urllib.request

from qbd1env import D1Env, d1_mismatches
from qbenv import QBEnv, result

RETENTION = 600     # seconds of the fake's clock


FAKE_ARGS = ("--strict-requestid", "--requestid-retention", str(RETENTION))


class StrictCases:
    """The daemon's cases; a subclass gives new_env() (the billing mode) and edit_invoice_1() (billing's change)."""

    def setUp(self):
        self.env = self.new_env()
        self.env.customer(1, "Strict Test RTO Pty Ltd")
        self.addCleanup(self.env.cleanup)

    def run_ok(self, expected):
        rc, res = self.env.once()
        self.assertEqual((rc, res), (0, expected), self.env.daemon.read_log()[-4000:])

    def api_stats(self):
        return self.env.stats()["api"]

    def assert_once_each(self, docs):
        ledger = self.env.ledger()
        self.assertEqual(ledger["duplicates"], {})
        self.assertEqual({d: v["created"] for d, v in ledger["doc_numbers"].items()}, {d: 1 for d in docs})

    def test_retries_resend_the_same_request(self):
        env = self.env
        for i in range(1, 5):
            env.invoice(i, 1, "S-%d" % i)
        env.fault("invoice.create", "http500", 1, commit=True)      # created, then 500: the retry is replayed
        env.fault("invoice.create", "reset", 1)                     # created, answer cut: replayed
        env.fault("invoice.create", "auth_401", 1)                  # refresh, then the same request
        self.run_ok(result(synced=4))
        api = self.api_stats()
        self.assertGreaterEqual(api.get("replays", 0), 2, api)
        self.assertEqual(api.get("requestid_conflicts", 0), 0, "a retry changed its request under one requestid")
        self.assertEqual([f for f in env.fake.faults() if f["fired"] == 0], [])
        self.assert_once_each(["S-%d" % i for i in range(1, 5)])

    def test_an_update_comes_under_a_new_requestid(self):
        env = self.env
        env.invoice(1, 1, "S-U")
        self.run_ok(result(synced=1))
        self.edit_invoice_1()
        self.run_ok(result(synced=1))
        self.assertEqual(self.api_stats().get("requestid_conflicts", 0), 0)
        inv = [x for x in env.fake.get("/_fake/dump")["Invoice"] if x["Id"] == env.inv(1)["qb_id"]][0]
        self.assertEqual(inv["TotalAmt"], 200.0)
        self.assert_once_each(["S-U"])

    def test_a_lost_answer_retried_after_the_id_expired_creates_nothing_twice(self):
        env = self.env
        env.invoice(1, 1, "S-L")
        # Every answer to the create is lost (the invoice is created the first time): the run cannot know.
        env.fault("invoice.create", "lost_response", -1)
        rc, res = env.once()
        self.assertEqual(res["failed"], 1, (rc, res, env.daemon.read_log()[-3000:]))
        self.assertEqual(env.ledger()["doc_numbers"]["S-L"]["created"], 1)
        env.fake.post("/_fake/fault/clear")
        # QuickBooks forgets the requestid; the next attempt must find the invoice by its DocNumber.
        env.fake.post("/_fake/clock", {"advance": RETENTION + 60})
        self.run_ok(result(synced=1))
        self.assert_once_each(["S-L"])
        self.assertEqual(env.inv(1)["status"], "synced")


class StrictRequestidTest(StrictCases, unittest.TestCase):
    """billing_source = local."""

    def new_env(self):
        return QBEnv("qbstrict", fake_args=FAKE_ARGS)

    def edit_invoice_1(self):
        self.env.sql("UPDATE billing_invoice_lines SET quantity = 2, amount_cents = 20000 WHERE invoice_id = 1")
        self.env.sql("UPDATE billing_invoices SET total_cents = 20000, qb_sync_status = 'pending' WHERE id = 1")

    def test_the_fake_is_strict(self):
        """The variant itself: another body under a used requestid is refused (600), the same body replayed, and
        an expired id runs again (so the daemon tests above can fail)."""
        env = self.env
        with open(env.token_file) as f:
            token = json.load(f)["access_token"]
        realm = env.ledger()["realm_id"]

        def create(doc, rid):
            body = json.dumps({"DocNumber": doc, "CustomerRef": {"value": "1"},
                               "Line": [{"Amount": 100, "DetailType": "SalesItemLineDetail",
                                         "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]}).encode()
            req = urllib.request.Request("%s/v3/company/%s/invoice?minorversion=75&requestid=%s"
                                         % (env.fake.url, realm, rid), data=body, method="POST",
                                         headers={"Authorization": "Bearer " + token, "Accept": "application/json",
                                                  "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())
        status, first = create("RAW-1", "rid-1")
        self.assertEqual(status, 200, first)
        self.assertEqual(create("RAW-1", "rid-1"), (200, first))
        status, body = create("RAW-2", "rid-1")
        self.assertEqual((status, body["Fault"]["Error"][0]["code"]), (400, "600"), body)
        env.fake.post("/_fake/clock", {"advance": RETENTION + 60})
        status, body = create("RAW-2", "rid-1")
        self.assertEqual(status, 200, body)
        self.assertEqual(env.ledger()["doc_numbers"]["RAW-2"]["created"], 1)


class D1StrictRequestidTest(StrictCases, unittest.TestCase):
    """billing_source = d1: the same cases with billing in the fake D1 (the env's own)."""

    def new_env(self):
        return D1Env("qbstrictd1", fake_args=FAKE_ARGS)

    def edit_invoice_1(self):
        # Billing's edit in D1: the lines changed, pending again, a new updated_at.
        self.env.dedit(1, ((2, 10000, "essential"),), "2026-12-01T00:00:01Z")

    def assert_once_each(self, docs):
        super().assert_once_each(docs)
        self.assertEqual(d1_mismatches(self.env, docs), [], self.env.daemon.read_log()[-3000:])


if __name__ == "__main__":
    unittest.main(verbosity=2)
