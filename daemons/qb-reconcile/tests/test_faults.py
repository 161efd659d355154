#!/usr/bin/python3
"""qb-reconcile against QuickBooks' faults: 6140 adoption, 5010 re-read and retry, 401 then refresh, 429 with a wait,
500, XML error bodies; invalid local invoices, an is_test invoice in production, abandonment after the configured
attempts and `syncctl qb retry`."""

import email
import email.policy
import json
import time
import unittest

from qbenv import QBEnv, exit_code, result


class FaultTest(unittest.TestCase):
    keys = {}

    def setUp(self):
        self.env = QBEnv("qbfault", **self.keys)
        self.env.customer(1, "Fault Test RTO Pty Ltd")

    def tearDown(self):
        leaks = self.env.leaked()
        self.env.cleanup()
        self.assertEqual(leaks, [])

    def run_ok(self, expected):
        rc, res = self.env.once()
        self.assertEqual((rc, res), (exit_code(expected), expected), self.env.daemon.read_log()[-4000:])
        # The run row says the same as the result: a degraded cycle is not a success.
        status, error = self.env.sql("SELECT status, error FROM sync_runs ORDER BY started_at DESC, rowid DESC"
                                     " LIMIT 1")[0]
        if expected["status"] == "ok":
            self.assertEqual((status, error), ("complete", None))
        else:
            self.assertEqual(status, "degraded")
            self.assertRegex(error, r"\d+ invoices? failed and \d+ abandoned in this cycle")

    def created(self, doc):
        return self.env.ledger()["doc_numbers"].get(doc, {}).get("created", 0)

    def test_6140_adopts_the_invoice_it_names(self):
        env = self.env
        env.invoice(1, 1, "D-1")
        env.fault("invoice.create", "dup_6140", 1)
        self.run_ok(result(synced=1))
        ledger = env.ledger()
        self.assertEqual(ledger["duplicates"], {})
        row = [x for x in ledger["invoices"] if x["DocNumber"] == "D-1"][0]
        self.assertEqual(row["origin"], "fault:dup_6140")
        self.assertEqual(env.inv(1)["qb_id"], row["Id"])
        self.assertEqual(env.stats()["by_op"]["invoice.read"], 1)

    def test_6240_inactive_customer_says_what_to_do(self):
        env = self.env
        # QuickBooks has our customer's name on an inactive customer: the create is 6240, and a lookup of active
        # customers finds nobody.
        made = env.mutate({"action": "create_customer", "display_name": "Fault Test RTO Pty Ltd"})
        qb_id = made["Customer"]["Id"]
        env.mutate({"action": "deactivate_customer", "customer_id": qb_id, "keep_name": True})
        env.invoice(1, 1, "C-1")
        with open(env.config) as f:
            conf = f.read()
        with open(env.config, "w") as f:
            f.write(conf.replace("[qb-reconcile]\n", "[qb-reconcile]\ndigest = yes\n"))
        self.run_ok(result("degraded", failed=1))
        err = env.inv(1)["error"]
        self.assertIn("QuickBooks customer Fault Test RTO Pty Ltd (Id %s) is inactive" % qb_id, err)
        self.assertIn("reactivate it in QuickBooks", err)
        self.assertIn("map our customer 1 to another QuickBooks customer (billing_customers.qb_customer_id)", err)
        self.assertEqual(env.ledger()["total_created"], 0)
        # The operator sees it in `syncctl qb status` and in the mail.
        r = env.ctl("qb", "status")
        self.assertIn("1  C-1  failed, attempts 1", r.stdout)
        self.assertIn(err, r.stdout)
        self.assertIn("Last run: qb_reconcile-", r.stdout)
        self.assertIn("degraded: 1 invoice failed", r.stdout)
        problems = json.loads(env.ctl("qb", "status", "--json").stdout)["problems"]
        self.assertEqual([(p["id"], p["error"]) for p in problems], [(1, err)])
        mail = email.message_from_string(env.sql("SELECT message FROM mail_outbox")[0][0],
                                         policy=email.policy.default)
        self.assertIn("reactivate it in QuickBooks", mail.get_content().replace("\n      ", " "))
        # Reactivated in QuickBooks: the next run finds it and the invoice goes out.
        env.mutate({"action": "edit_customer", "customer_id": qb_id, "fields": {"Active": True}})
        self.run_ok(result(synced=1))
        self.assertEqual(env.inv(1)["status"], "synced")

    def test_5010_rereads_and_updates_once(self):
        env = self.env
        env.invoice(1, 1, "U-1")
        self.run_ok(result(synced=1))
        qb_id = env.inv(1)["qb_id"]
        # Billing changes the invoice; meanwhile someone touched it in QuickBooks (SyncToken moved on).
        env.sql("UPDATE billing_invoice_lines SET quantity = 3, amount_cents = 30000 WHERE invoice_id = 1")
        env.sql("UPDATE billing_invoices SET total_cents = 30000, qb_sync_status = 'pending' WHERE id = 1")
        env.fault("invoice.update", "stale_5010", 1)
        self.run_ok(result(synced=1))
        inv = [x for x in env.fake.get("/_fake/dump")["Invoice"] if x["Id"] == qb_id][0]
        self.assertEqual(inv["TotalAmt"], 300.0)
        self.assertEqual(self.created("U-1"), 1)
        self.assertEqual(env.stats()["by_op"]["invoice.update"], 2)
        # Generations: 0 the create, 1 the update refused with 5010 (remembered under that requestid), 2 the
        # update after the re-read; the next write will use 3.
        self.assertEqual(env.inv(1)["gen"], 3)
        rids = env.fake.get("/_fake/stats")
        self.assertEqual(rids["api"].get("replays", 0), 0)
        # A second 5010 in a row is not retried again: failed, for the next run.
        env.sql("UPDATE billing_invoices SET qb_sync_status = 'pending' WHERE id = 1")
        env.fault("invoice.update", "stale_5010", 2)
        self.run_ok(result("degraded", failed=1))
        self.assertIn("5010", env.inv(1)["error"])

    def test_401_refreshes_once_and_sends_the_same_request(self):
        env = self.env
        env.invoice(1, 1, "A-1")
        env.fault("invoice.create", "auth_401", 1)              # the lower-case JSON fault
        self.run_ok(result(synced=1))
        st = env.stats()
        self.assertEqual(st["refreshes"], 2)                    # heartbeat + the 401
        self.assertEqual(st["by_op"]["invoice.create"], 2)
        self.assertEqual(self.created("A-1"), 1)
        rid = [x for x in env.ledger()["invoices"] if x["DocNumber"] == "A-1"][0]["requestid"]
        self.assertRegex(rid, r"^qbr-[0-9a-f]{12}-1-g0$")
        # The XML form of an authentication fault (code 100), also on a query.
        env.invoice(2, 1, "A-2")
        env.fault("query", "xml_error", 1, code="100")
        self.run_ok(result(synced=1))
        self.assertEqual(env.stats()["refreshes"], 4)
        self.assertEqual(self.created("A-2"), 1)

    def test_429_waits_then_succeeds(self):
        env = self.env
        env.invoice(1, 1, "T-1")
        env.fault("invoice.create", "http429", 1, retry_after=2)
        t0 = time.monotonic()
        self.run_ok(result(synced=1))
        self.assertGreaterEqual(time.monotonic() - t0, 2.0)
        self.assertIn("HTTP 429 with Retry-After", env.daemon.read_log())
        # Without Retry-After: throttle_wait (1 s here, 60 s by default); and the old 403 ThrottleExceeded form.
        env.invoice(2, 1, "T-2")
        env.fault("invoice.create", "throttle", 1)
        env.invoice(3, 1, "T-3")
        env.fault("query", "throttle", 1, status=403)
        t0 = time.monotonic()
        self.run_ok(result(synced=2))
        self.assertGreaterEqual(time.monotonic() - t0, 1.0)
        self.assertIn("throttled (HTTP 403)", env.daemon.read_log())
        st = env.stats()
        self.assertEqual(st["throttled_by"], {"fault": 3})       # only ours: the pacing itself never hit a limit
        self.assertEqual(env.ledger()["duplicates"], {})

    def test_500(self):
        env = self.env
        env.invoice(1, 1, "S-1")
        env.fault("invoice.create", "http500", 1)               # resubmitted once, succeeds
        env.invoice(2, 1, "S-2")
        env.fault("invoice.create", "http500", 1, commit=True, skip=1)   # created, then 500: replayed
        self.run_ok(result(synced=2))
        self.assertEqual(self.created("S-1"), 1)
        self.assertEqual(self.created("S-2"), 1)
        # QuickBooks down for this run: failed with its error, same requestid next time, then synced.
        env.invoice(3, 1, "S-3")
        env.fault("invoice.create", "http500", -1)
        self.run_ok(result("degraded", failed=1))
        row = env.inv(3)
        self.assertEqual((row["status"], row["attempts"], row["gen"]), ("failed", 1, 0))
        self.assertIn("HTTP 500", row["error"])
        env.fake.post("/_fake/fault/clear")
        self.run_ok(result(synced=1))
        self.assertEqual(self.created("S-3"), 1)

    def test_xml_error_body(self):
        env = self.env
        env.invoice(1, 1, "X-1")
        env.fault("invoice.create", "xml_error", 1, code="6000", status=400,
                  message="A business validation error has occurred", detail="Business Validation Error: XML")
        self.run_ok(result("degraded", failed=1))
        row = env.inv(1)
        self.assertIn("fault 6000", row["error"])
        self.assertIn("Business Validation Error: XML", row["error"])
        self.assertEqual(row["gen"], 1)     # a refusal: the next attempt uses a new requestid
        self.run_ok(result(synced=1))

    def test_invalid_local_invoices_are_never_sent(self):
        env = self.env
        env.invoice(1, 1, "V-OK")
        env.sql("INSERT INTO billing_invoices (id, customer_id, doc_number, txn_date, currency, total_cents,"
                " created_at, updated_at) VALUES (2, 1, 'V-NOLINES', '2026-11-01', 'AUD', 0, 'x', 'x')")
        env.invoice(3, 1, "V-MISMATCH", total=12345)
        env.invoice(4, 1, "V-1234567890123456789X")             # 22 characters
        env.invoice(5, 1, "V-NEG", lines=((1, -500, None),), total=-500)
        env.invoice(6, 1, "V-USD", currency="USD")
        env.invoice(7, 1, "V-QTY", lines=((2, 5000, None),), total=10000)
        env.sql("UPDATE billing_invoice_lines SET amount_cents = 9999 WHERE invoice_id = 7")
        self.run_ok(result("degraded", synced=1, failed=6))
        errors = {i: env.inv(i)["error"] for i in range(2, 8)}
        self.assertIn("no invoice lines", errors[2])
        self.assertIn("does not match the lines' sum", errors[3])
        self.assertIn("22 characters long", errors[4])
        self.assertIn("negative total", errors[5])
        self.assertIn("currency USD", errors[6])
        self.assertIn("is not quantity 2 x unit price 5000", errors[7])
        for e in errors.values():
            self.assertTrue(e.startswith("invalid invoice, not sent: "), e)
        self.assertEqual(sorted(env.ledger()["doc_numbers"]), ["V-OK"])
        self.assertEqual(env.stats()["by_op"]["invoice.create"], 1)

    def test_abandoned_after_max_attempts_then_retry(self):
        env = self.env
        with open(env.config) as f:
            conf = f.read()
        with open(env.config, "w") as f:
            f.write(conf.replace("[qb-reconcile]\n", "[qb-reconcile]\nmax_attempts = 2\nitem_map = broken=999\n"))
        env.invoice(1, 1, "B-1", lines=((1, 10000, "broken"),))   # Item 999 does not exist: 2500
        self.run_ok(result("degraded", failed=1))
        self.assertEqual((env.inv(1)["status"], env.inv(1)["attempts"]), ("failed", 1))
        self.assertIn("2500", env.inv(1)["error"])
        self.run_ok(result("degraded", abandoned=1))
        row = env.inv(1)
        self.assertEqual((row["status"], row["attempts"]), ("abandoned", 2))
        self.assertIn("abandoned after 2 attempts; last error:", row["error"])
        self.assertIn("Invalid Reference Id", row["error"])
        self.run_ok(result())                       # abandoned: left alone
        self.assertEqual(env.stats()["by_op"]["invoice.create"], 2)
        # The operator fixes the line and retries: pushed at once, the outcome printed.
        env.sql("UPDATE billing_invoice_lines SET item = 'essential' WHERE invoice_id = 1")
        env.daemon.start()
        r = env.ctl("qb", "retry", "1")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + env.daemon.read_log()[-3000:])
        self.assertIn("invoice 1 (B-1): synced (QuickBooks invoice", r.stdout)
        r = env.ctl("qb", "retry", "1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("already synced", r.stderr)
        r = env.ctl("qb", "retry", "99")
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(env.daemon.stop(), 0)
        self.assertEqual(env.inv(1)["status"], "synced")
        self.assertEqual(env.ledger()["doc_numbers"]["B-1"]["created"], 1)


class ProductionTest(FaultTest):
    """The same env in production mode: is_test invoices (or a test customer's) are never sent."""
    keys = {"environment": "production"}

    def test_is_test_invoice_never_sent_to_production(self):
        env = self.env
        env.customer(2, "Test Client (is_test)", is_test=1)
        env.invoice(1, 1, "P-REAL")
        env.invoice(2, 1, "P-TEST", is_test=1)
        env.invoice(3, 2, "P-TESTCUST")
        self.run_ok(result(synced=1))
        self.run_ok(result())
        self.assertEqual(sorted(env.ledger()["doc_numbers"]), ["P-REAL"])
        for i in (2, 3):
            row = env.inv(i)
            self.assertEqual(row["status"], "pending")
            self.assertIn("never sent to a production QuickBooks company", row["error"])
        self.assertEqual(env.stats()["by_op"].get("customer.create"), 1)    # nor the test customer
        r = env.ctl("qb", "status", "--json")
        self.assertEqual(json.loads(r.stdout)["connection"]["environment"], "production")


def load_tests(loader, tests, pattern):
    suite = unittest.TestSuite()
    suite.addTests(loader.loadTestsFromTestCase(FaultTest))
    # The production class inherits the fault tests; it runs only its own.
    suite.addTest(ProductionTest("test_is_test_invoice_never_sent_to_production"))
    return suite


if __name__ == "__main__":
    unittest.main(verbosity=2)
