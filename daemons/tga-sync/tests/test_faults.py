#!/usr/bin/python3
"""tga-sync when TGA misbehaves: wrong credentials, a SOAP fault, HTTP 500, 429 with Retry-After, a hung connection,
a truncated body, a malformed body, records without their key.  Each test starts from a copy of one synced
database, changes the register a little (so that the cycle has GetDetails to make), arms a fault on the fake TGA
server, and checks the run, its step rows and messages, and the data.
"""

import glob
import os
import re
import shutil
import time
import unittest

import tgalib
from harness import SmtpSink, dump_db, query, runs

WRONG = "wrong-password-7Qx!"


class FaultTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tgalib.share_fake(cls, "tgafaultfake")
        base = tgalib.Env(cls.fake, cls.smtp, name="tgabase")
        assert base.run_once() == 0, base.daemon.read_log()[-4000:]
        cls.base = base
        comps = tgalib.fake_dump(cls.fake)["TrainingComponents"]
        cls.quals = sorted(c["Code"] for c in comps if c["ComponentType"] == "Qualification")
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        cls.base.cleanup()

    def setUp(self):
        self.fake.post("/_fake/fault/clear")

    def tearDown(self):
        self.fake.post("/_fake/fault/clear")

    def fresh(self, **keys):
        """An env holding a copy of the synced databases."""
        env = tgalib.Env(self.fake, self.smtp, name="tgafault", **keys)
        for f in glob.glob(os.path.join(self.base.wd.state, "*.db*")):
            shutil.copy(f, env.wd.state)
        return env

    def change_a_qualification(self):
        type(self).n += 1
        code = self.quals[self.n]
        self.fake.post("/_fake/mutate", {"action": "update", "kind": "qualification", "code": code})
        return code

    def last_run(self, env):
        return runs(env.ops, "tga_sync")[-1]

    def step(self, env, run_id, name):
        r = query(env.ops, "SELECT status, records_in, records_out, rejected, attempts, error FROM sync_steps"
                  " WHERE run_id = ? AND step = ?", (run_id, name))
        return dict(zip(("status", "records_in", "records_out", "rejected", "attempts", "error"), r[0])) if r else None

    def tga_tables(self, env):
        return tgalib.corpus_dump(env)

    def assert_synced(self, env):
        self.assertEqual(tgalib.compare(env.corpus, tgalib.fake_dump(self.fake)), {})

    # --- credentials ---------------------------------------------------------------------------------------

    def test_wrong_credentials_fail_the_run_and_change_nothing(self):
        smtp = SmtpSink()
        env = tgalib.Env(self.fake, smtp, name="tgacreds", password=WRONG)
        self.fake.post("/_fake/stats/reset")
        self.assertEqual(env.run_once(), 1, env.daemon.read_log()[-3000:])
        r = self.last_run(env)
        self.assertEqual(r["status"], "failed")
        self.assertEqual(r["phase"], "init")
        self.assertIn("init: TGA rejected the credentials: An error occurred when verifying security for the "
                      "message.", r["error"])
        self.assertEqual(self.step(env, r["run_id"], "init")["status"], "failed")
        # Fatal at once: one request, no HTTP retry of the fault, no step retry.
        stats = self.fake.get("/_fake/stats")
        self.assertEqual(stats["soap_faults"], {"InvalidSecurity": 1})
        self.assertEqual(stats["requests"], 1)
        # No data: not a row in any TGA table.
        for t, (cols, rows) in dump_db(env.corpus).items():
            if t.startswith("tga_"):
                self.assertEqual(rows, [], t)
        mail = smtp.wait(1)[0]
        self.assertTrue(str(mail["msg"]["Subject"]).startswith(
            "[tga-sync] cycle FAILED \u2014 init: TGA rejected the credentials"), mail["msg"]["Subject"])
        # The secret is nowhere: not in the log, the databases or the mail.
        self.assertNotIn(WRONG, env.daemon.read_log())
        for db in (env.ops, env.corpus):
            with open(db, "rb") as f:
                self.assertNotIn(WRONG.encode(), f.read())
        self.assertNotIn(WRONG.encode(), mail["raw"])
        smtp.stop()
        env.cleanup()

    def test_credentials_rejected_mid_cycle_roll_back_the_page(self):
        env = self.fresh()
        before = self.tga_tables(env)
        self.change_a_qualification()
        self.fake.fault("GetDetails", "auth", count=1)
        self.assertEqual(env.run_once(), 1)
        r = self.last_run(env)
        self.assertEqual(r["status"], "failed")
        self.assertIn("sync_training: TGA rejected the credentials: An error occurred when verifying security",
                      r["error"])
        self.assertEqual(self.tga_tables(env), before, "a failed page must leave no trace")
        self.fake.post("/_fake/fault/clear")
        self.assertEqual(env.run_once(), 0)
        self.assertEqual(self.last_run(env)["trigger"], "resume")
        self.assert_synced(env)
        env.cleanup()

    # --- SOAP fault, HTTP 500 ------------------------------------------------------------------------------

    def test_soap_fault_is_reported_with_its_text_and_not_retried(self):
        env = self.fresh()
        before = self.tga_tables(env)
        self.change_a_qualification()
        self.fake.post("/_fake/stats/reset")
        self.fake.fault("GetDetails", "soap_fault", count=1, text="Component code failed validation.",
                        code="TestFault", target="Code")
        self.assertEqual(env.run_once(), 1)
        r = self.last_run(env)
        self.assertEqual(r["status"], "failed")
        self.assertRegex(r["error"], r"sync_training: TGA TrainingComponentService\.GetDetails \S+: SOAP fault "
                         r"s:Client \(HTTP 500\): Component code failed validation\. \[ValidationFault: TestFault: "
                         r"Component code failed validation\.\]")
        stats = self.fake.get("/_fake/stats")
        # One fault, not retried (the page's other GetDetails went through).
        self.assertEqual(stats["by_status"].get("500"), 1, stats)
        self.assertEqual(stats["soap_faults"], {"Client": 1})
        st = self.step(env, r["run_id"], "sync_training")
        self.assertEqual((st["status"], st["attempts"]), ("failed", 1))
        self.assertEqual(self.tga_tables(env), before)
        self.fake.post("/_fake/fault/clear")
        self.assertEqual(env.run_once(), 0)
        self.assert_synced(env)
        env.cleanup()

    def test_http_500_is_retried(self):
        env = self.fresh()
        self.change_a_qualification()
        self.fake.post("/_fake/stats/reset")
        self.fake.fault("GetDetails", "http500", count=1)
        self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-3000:])
        self.assertEqual(self.fake.get("/_fake/stats")["by_status"].get("500"), 1)
        self.assertRegex(env.daemon.read_log(), r"TGA TrainingComponentService\.GetDetails \S+: HTTP 500; retry 1")
        self.assert_synced(env)
        env.cleanup()

    def test_persistent_http_500_fails_the_step_naming_the_operation(self):
        env = self.fresh()
        self.change_a_qualification()
        self.fake.fault("SearchByModifiedDate", "http500", count=-1, service="Training")
        self.assertEqual(env.run_once(), 1)
        r = self.last_run(env)
        self.assertRegex(r["error"], r"^sync_training: TGA TrainingComponentService\.SearchByModifiedDate .*HTTP 500 "
                         r"with an HTML error page \(after 3 attempts\) \(gave up after 2 attempts\)$")
        self.assertEqual(self.step(env, r["run_id"], "sync_training")["attempts"], 2)
        self.fake.post("/_fake/fault/clear")
        self.assertEqual(env.run_once(), 0)
        self.assert_synced(env)
        env.cleanup()

    # --- throttling, hangs ---------------------------------------------------------------------------------

    def test_429_waits_for_retry_after(self):
        env = self.fresh()
        self.change_a_qualification()
        self.fake.post("/_fake/stats/reset")
        self.fake.fault("GetDetails", "http429", count=1, retry_after=2)
        t0 = time.monotonic()
        self.assertEqual(env.run_once(), 0)
        self.assertGreaterEqual(time.monotonic() - t0, 2.0)
        self.assertEqual(self.fake.get("/_fake/stats")["by_status"].get("429"), 1)
        self.assertRegex(env.daemon.read_log(), r"GetDetails \S+: HTTP 429 with Retry-After; retry 1 of \d+ in 2\.0s")
        self.assert_synced(env)
        env.cleanup()

    def test_hung_connection_times_out_and_is_retried(self):
        env = self.fresh()
        self.change_a_qualification()
        self.fake.fault("GetDetails", "hang", count=1)
        t0 = time.monotonic()
        self.assertEqual(env.run_once(timeout=60), 0)
        self.assertLess(time.monotonic() - t0, 20)
        self.assertRegex(env.daemon.read_log(), r"GetDetails \S+: timed out: .*; retry 1")
        self.assert_synced(env)
        env.cleanup()

    # --- truncated and malformed bodies --------------------------------------------------------------------

    def test_truncated_body_is_retried(self):
        env = self.fresh()
        self.change_a_qualification()
        self.fake.fault("GetDetails", "truncate", count=1)
        self.assertEqual(env.run_once(), 0)
        self.assertRegex(env.daemon.read_log(), r"GetDetails \S+: truncated response: .*; retry 1")
        self.assert_synced(env)
        env.cleanup()

    def test_persistent_truncation_fails_naming_the_operation(self):
        env = self.fresh()
        before = self.tga_tables(env)
        self.change_a_qualification()
        self.fake.fault("GetDetails", "truncate", count=-1)
        self.assertEqual(env.run_once(), 1)
        r = self.last_run(env)
        self.assertRegex(r["error"], r"^sync_training: TGA TrainingComponentService\.GetDetails \S+: .*truncated "
                         r"response: .*\(after 3 attempts\) \(gave up after 2 attempts\)$")
        self.assertEqual(self.tga_tables(env), before)
        env.cleanup()

    def test_malformed_body_is_requested_again(self):
        env = self.fresh()
        self.change_a_qualification()
        self.fake.fault("GetDetails", "malformed", count=1)
        self.assertEqual(env.run_once(), 0)
        self.assertRegex(env.daemon.read_log(), r"TGA TrainingComponentService\.GetDetails \S+: the response does "
                         r"not parse \(not well-formed XML: .*\); requesting it again \(1 of 2\)")
        self.assert_synced(env)
        env.cleanup()

    def test_persistent_malformed_body_fails_naming_the_operation(self):
        env = self.fresh()
        before = self.tga_tables(env)
        self.change_a_qualification()
        self.fake.fault("GetDetails", "malformed", count=-1)
        self.assertEqual(env.run_once(), 1)
        r = self.last_run(env)
        self.assertRegex(r["error"], r"^sync_training: TGA TrainingComponentService\.GetDetails \S+: malformed "
                         r"response: not well-formed XML: .* \(after 3 attempts\) \(gave up after 2 attempts\)$")
        self.assertEqual(self.tga_tables(env), before, "nothing half-written")
        self.fake.post("/_fake/fault/clear")
        self.assertEqual(env.run_once(), 0)
        self.assert_synced(env)
        env.cleanup()

    # --- records without their key -------------------------------------------------------------------------

    def test_search_result_without_code_is_rejected_and_counted(self):
        env = self.fresh()
        self.change_a_qualification()
        self.fake.fault("SearchByModifiedDate", "missing_code", count=1, service="Training")
        self.assertEqual(env.run_once(), 3, "partial")
        r = self.last_run(env)
        self.assertEqual(r["status"], "partial")
        st = self.step(env, r["run_id"], "sync_training")
        self.assertEqual((st["status"], st["rejected"]), ("partial", 1))
        self.assertRegex(env.daemon.read_log(), r"sync_training: rejected 1 record: TrainingComponentSummary #1 of "
                         r"the page has no Code \(Title '.+', UpdatedDate \d{4}-")
        # The record is found again by the next cycle (its change is inside the overlap).
        self.assertEqual(env.run_once(), 0)
        self.assert_synced(env)
        env.cleanup()

    def test_component_without_code_is_rejected_logged_and_fetched_again(self):
        env = self.fresh()
        code = self.change_a_qualification()
        self.fake.fault("GetDetails", "missing_code", count=1, service="Training")
        self.assertEqual(env.run_once(), 3)
        r = self.last_run(env)
        st = self.step(env, r["run_id"], "sync_training")
        self.assertEqual((st["status"], st["rejected"]), ("partial", 1))
        m = re.search(r"rejected 1 record: TrainingComponentService\.GetDetails (\S+): the component has no Code; "
                      r"skipped", env.daemon.read_log())
        self.assertIsNotNone(m, env.daemon.read_log()[-3000:])
        self.assertIn(m.group(1), query(env.ops, "SELECT job_state FROM tga_sync_cursor")[0][0])
        self.assertEqual(env.run_once(), 0)
        self.assertIn("fetching 1 record again", env.daemon.read_log())
        self.assert_synced(env)
        self.assertIsNotNone(code)
        env.cleanup()

    def test_scope_row_without_code_is_rejected_and_nothing_is_removed(self):
        env = self.fresh()
        dump = tgalib.fake_dump(self.fake)
        rto = max(dump["Organisations"], key=lambda o: len(o["Scopes"]))["Code"]
        self.fake.post("/_fake/mutate", {"action": "update", "kind": "rto", "code": rto})
        self.fake.fault("GetDetails", "missing_code", count=1, service="Organisation")
        self.assertEqual(env.run_once(), 3)
        r = self.last_run(env)
        st = self.step(env, r["run_id"], "sync_orgs")
        self.assertEqual((st["status"], st["rejected"]), ("partial", 1))
        self.assertRegex(env.daemon.read_log(), r"rejected 1 record: RTO %s: a scope row with no NrtCode" % rto)
        # The row we could not read is not a row that went away.
        self.assertEqual(query(env.corpus, "SELECT count(*) FROM tga_rto_scope WHERE rto_code = ? AND removed_in"
                               " IS NOT NULL", (rto,)), [(0,)])
        self.assertEqual(env.run_once(), 0)
        self.assert_synced(env)
        env.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
