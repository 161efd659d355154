#!/usr/bin/python3
"""cricos-sync when data.gov.au misbehaves: each fault gives a clear error or a count, and nothing half-written.

CKAN success:false (403 Authorization Error, 409 "Search took too long", 500 Internal Server Error), an nginx 500
page, a 25 s slow page that succeeds (the one slow test), a hung request that times out, malformed JSON (a page cut
short), a truncated body, an HTML maintenance page, and a record with unparseable money.
"""

import time
import unittest

from env import share_upstreams
from cricoslib import Env, expected, last_run, query, start_fake, stop_fake, step_detail, summary
from harness import cursor, syncctl, wait_for

COURSES = "48cacf69-2082-415e-9595-f17d0c3a4af0"
ZIP = "b5a6bd4d-6a2f-4d36-9fb1-b2a8c9d0e1f2"      # CRICOS Datasets.zip: a file, not a DataStore table
INSTITUTIONS = "7f6941f3-5327-4db7-b556-5f16d77f63c1"


class CricosFaultTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        share_upstreams(cls, start_fake, stop_fake)
        cls.dump = cls.fake.get("/_fake/dump")

    def setUp(self):
        self.fake.post("/_fake/fault/clear")
        self.fake.post("/_fake/mutate", {"action": "edition", "edition": 1})
        self.fake.post("/_fake/stats/reset")

    def env(self, name, **keys):
        # Fail fast: no HTTP retries, one step retry, short timeouts (the hang test relies on them).
        keys.setdefault("retries", 0)
        keys.setdefault("step_retries", 1)
        return Env(self.fake, self.smtp, name=name, **keys)

    def courses_written(self, env):
        return query(env.corpus, "SELECT count(*) FROM cricos_courses")[0][0]

    def failure_mail(self, before, run_id):
        key = "cricos_sync/failed/%s" % run_id
        return wait_for(lambda: [m for m in self.smtp.received()[before:]
                                 if str(m["msg"]["X-RTOpacks-Mail-Key"]) == key] or None,
                        what="the failure mail")[0]

    def finish_and_check(self, env):
        """After the fault is gone, the next run resumes and ends with exactly the fake's content."""
        self.fake.post("/_fake/fault/clear")
        self.assertEqual(env.daemon.run_once(), 0, env.daemon.read_log())
        r = last_run(env.ops)
        self.assertEqual((r["status"], r["trigger"]), ("complete", "resume"), r)
        env.assert_matches(self, self.dump)
        env.wd.cleanup()

    def test_ckan_authorization_error_fails_at_once_with_ckan_message(self):
        env = self.env("cricos-403")
        sent = len(self.smtp.received())
        self.fake.fault("datastore_search", "ckan_error", variant="auth", count=1, resource_id=COURSES, skip=1)
        self.assertEqual(env.daemon.run_once(), 1, env.daemon.read_log())
        r = last_run(env.ops)
        self.assertEqual(r["status"], "failed")
        self.assertIn("sync_courses: datastore_search CRICOS Courses.csv offset 100: HTTP 403 Authorization Error: "
                      "Access denied", r["error"])
        # Retrying cannot help: no step retry was spent on it.
        self.assertEqual(query(env.ops, "SELECT attempts FROM sync_steps WHERE run_id = ? AND step = "
                                        "'sync_courses'", (r["run_id"],))[0][0], 1)
        self.assertEqual(cursor(env.ops, "cricos_sync")["phase_cursor"], "offset=100")
        self.assertEqual(self.courses_written(env), 100)
        m = self.failure_mail(sent, r["run_id"])
        self.assertTrue(str(m["msg"]["Subject"]).startswith("[cricos-sync] cycle FAILED \u2014 sync_courses: "))
        self.finish_and_check(env)

    def test_ckan_statement_timeout_is_retried(self):
        env = self.env("cricos-409")
        self.fake.fault("datastore_search", "ckan_error", variant="timeout", count=1, resource_id=COURSES)
        self.assertEqual(env.daemon.run_once(), 0, env.daemon.read_log())
        r = last_run(env.ops)
        row = query(env.ops, "SELECT status, attempts FROM sync_steps WHERE run_id = ? AND step = 'sync_courses'",
                    (r["run_id"],))[0]
        self.assertEqual(row, ("complete", 1))
        self.assertIn("HTTP 409 Validation Error: query: Search took too long", env.daemon.read_log())
        env.assert_matches(self, self.dump)
        env.wd.cleanup()

    def test_ckan_internal_error_500_fails_after_retries_nothing_half_written(self):
        env = self.env("cricos-500", retries=1)
        self.fake.fault("datastore_search", "ckan_error", variant="internal", count=-1, resource_id=COURSES)
        self.assertEqual(env.daemon.run_once(), 1, env.daemon.read_log())
        r = last_run(env.ops)
        self.assertIn("HTTP 500 Internal Server Error: Internal Server Error", r["error"])
        self.assertIn("gave up after 2 attempts", r["error"])
        self.assertEqual(cursor(env.ops, "cricos_sync")["cycle_phase"], "sync_courses")
        self.assertEqual(self.courses_written(env), 0)
        # 1 try + 1 HTTP retry, twice (one step retry).
        self.assertEqual(self.fake.get("/_fake/stats")["faults"]["ckan_error"], 4)
        self.finish_and_check(env)

    def test_nginx_500_page_is_retried_by_http(self):
        env = self.env("cricos-nginx", retries=2)
        self.fake.fault("datastore_search", "http500", count=2, resource_id=INSTITUTIONS)
        self.assertEqual(env.daemon.run_once(), 0, env.daemon.read_log())
        r = last_run(env.ops)
        self.assertEqual(query(env.ops, "SELECT attempts FROM sync_steps WHERE run_id = ? AND step = "
                                        "'sync_institutions'", (r["run_id"],))[0][0], 0)
        self.assertEqual(self.fake.get("/_fake/stats")["by_status"].get("500"), 2)
        env.assert_matches(self, self.dump)
        env.wd.cleanup()

    def test_slow_page_of_25_seconds_succeeds(self):
        # data.gov.au takes 10-25 s per page: the low-speed window must outlast a silent 25 s.
        env = self.env("cricos-slow", low_speed_time="30s", total_timeout="60s")
        self.fake.fault("datastore_search", "slow", delay=25, count=1, resource_id=COURSES)
        t0 = time.monotonic()
        self.assertEqual(env.daemon.run_once(timeout=120), 0, env.daemon.read_log())
        self.assertGreaterEqual(time.monotonic() - t0, 25)
        r = last_run(env.ops)
        self.assertEqual(query(env.ops, "SELECT status, attempts FROM sync_steps WHERE run_id = ? AND step = "
                                        "'sync_courses'", (r["run_id"],))[0], ("complete", 0))
        env.assert_matches(self, self.dump)
        env.wd.cleanup()

    def test_hung_request_times_out(self):
        env = self.env("cricos-hang", step_retries=0, low_speed_time="2s", total_timeout="10s")
        self.fake.fault("datastore_search", "hang", hold=60, count=1, resource_id=COURSES)
        t0 = time.monotonic()
        self.assertEqual(env.daemon.run_once(), 1, env.daemon.read_log())
        self.assertLess(time.monotonic() - t0, 15)
        r = last_run(env.ops)
        self.assertIn("timed out", r["error"])
        self.assertIn("sync_courses", r["error"])
        self.assertEqual(self.courses_written(env), 0)
        self.finish_and_check(env)

    def test_malformed_json_writes_nothing_of_the_page(self):
        env = self.env("cricos-malformed", step_retries=0)
        self.fake.fault("datastore_search", "malformed", count=1, skip=1, resource_id=COURSES)
        self.assertEqual(env.daemon.run_once(), 1, env.daemon.read_log())
        r = last_run(env.ops)
        self.assertRegex(r["error"], r"datastore_search CRICOS Courses.csv offset 100: malformed JSON at byte \d+")
        # The first page is committed, the broken second one left no row behind.
        self.assertEqual(self.courses_written(env), 100)
        self.assertEqual(cursor(env.ops, "cricos_sync")["phase_cursor"], "offset=100")
        self.finish_and_check(env)

    def test_truncated_body_and_html_page_are_retried(self):
        env = self.env("cricos-trunc", retries=1, step_retries=2)
        self.fake.fault("datastore_search", "truncate", count=1, resource_id=COURSES)
        self.fake.fault("datastore_search", "html", count=1, resource_id=INSTITUTIONS)
        self.assertEqual(env.daemon.run_once(), 0, env.daemon.read_log())
        log = env.daemon.read_log()
        self.assertIn("an HTML page", log)
        env.assert_matches(self, self.dump)
        env.wd.cleanup()

    def test_bad_configuration_is_refused_with_its_line(self):
        env = self.env("cricos-badconf", timezone_offset="AEST")
        self.assertEqual(env.daemon.run_once(), 5)
        self.assertRegex(env.daemon.read_log(), r"sync\.conf:\d+: \[cricos-sync\] timezone_offset: 'AEST' is not a UTC "
                                                 r"offset like \+10:00")
        env.wd.cleanup()

    def test_unknown_resource_id_fails_init_clearly(self):
        gone = "00000000-0000-4000-8000-000000000000"
        env = self.env("cricos-badid", resource_locations=gone)
        sent = len(self.smtp.received())
        self.assertEqual(env.daemon.run_once(), 1, env.daemon.read_log())
        r = last_run(env.ops)
        # The run row names the resource (config key, file, id) and what to change.
        named = "resource_locations: CRICOS Locations.csv (id %s) is not in package cricos" % gone
        self.assertIn("init: " + named, r["error"])
        self.assertIn("HTTP 404 Not Found Error", r["error"])
        self.assertIn("set [cricos-sync] resource_locations to the id of the current CRICOS Locations.csv", r["error"])
        self.assertIn("is not in package cricos; asking resource_show", env.daemon.read_log())
        self.assertEqual(self.fake.get("/_fake/stats")["by_op"], {"package_show": 1, "resource_show": 1})
        self.assertEqual(query(env.corpus, "SELECT count(*) FROM cricos_institutions")[0][0], 0)
        # ... and so do the failure mail and syncctl.
        body = self.failure_mail(sent, r["run_id"])["msg"].get_content()
        self.assertIn(named, body)
        self.assertIn("set [cricos-sync] resource_locations", body)
        out = syncctl(env.config, "steps", r["run_id"]).stdout
        self.assertIn("resource_locations: CRICOS Locations.csv (id %s)" % gone, out)
        env.wd.cleanup()

    def test_a_resource_that_is_not_in_the_datastore_fails_at_once(self):
        # The ZIP configured by mistake: it has no DataStore table and never will.
        env = self.env("cricos-zip", resource_courses=ZIP, step_retries=3)
        self.assertEqual(env.daemon.run_once(), 1, env.daemon.read_log())
        r = last_run(env.ops)
        self.assertIn("init: resource_courses: CRICOS Datasets.zip (id %s, format ZIP) is not a DataStore resource"
                      % ZIP, r["error"])
        self.assertIn("set [cricos-sync] resource_courses to the id of the CRICOS Courses.csv resource", r["error"])
        self.assertNotIn("gave up after", r["error"])
        # Retrying cannot help: no step retry was spent on it.
        self.assertEqual(query(env.ops, "SELECT attempts FROM sync_steps WHERE run_id = ? AND step = 'init'",
                               (r["run_id"],))[0][0], 1)
        self.assertEqual(self.fake.get("/_fake/stats")["by_op"], {"package_show": 1})
        env.wd.cleanup()

    def test_rejected_record_is_named_by_datastore_id_and_code(self):
        env = self.env("cricos-reject")
        sent = len(self.smtp.received())
        page = self.dump["tables"]["courses"][:100]
        rec = page[5]
        # The 6th record of the first courses page gets a course code that is not one (6 digits, no check letter).
        self.fake.fault("datastore_search", "bad_money", field="CRICOS Course Code", value="12345", record=5,
                        resource_id=COURSES)
        self.assertEqual(env.daemon.run_once(), 3, env.daemon.read_log())
        r = last_run(env.ops)
        self.assertEqual(r["status"], "partial")
        self.assertIn("sync_courses: rejected 1 record: courses _id %d (CRICOS Course Code 12345): courses record "
                      "with an invalid CRICOS Course Code '12345'" % rec["_id"], env.daemon.read_log())
        self.assertEqual(summary(env.ops)["rejected"], [{"table": "courses", "_id": rec["_id"], "code": "12345",
                                                         "why": "courses record with an invalid CRICOS Course "
                                                                "Code '12345'"}])
        mails = self.smtp.wait(sent + 1)[sent:]
        body = mails[-1]["msg"].get_content()
        self.assertIn("Rejected records (table, DataStore _id, code: why):", body)
        self.assertRegex(body, r"  courses +_id %d +12345: courses record with an invalid CRICOS Course Code "
                               r"'12345'" % rec["_id"])
        env.wd.cleanup()

    def test_unparseable_money_is_null_and_counted(self):
        env = self.env("cricos-money")
        _, stats = expected(self.dump)
        base = stats["unparseable"].get(("courses", "Tuition Fee"), 0)
        # The 4th record of the first courses page gets "$12,34.00" (a wrong thousands group).
        self.fake.fault("datastore_search", "bad_money", field="Tuition Fee", value="$12,34.00", record=3,
                        resource_id=COURSES)
        self.assertEqual(env.daemon.run_once(), 0, env.daemon.read_log())
        r = last_run(env.ops)
        self.assertEqual(r["status"], "complete", "an unparseable value is not a rejected record")
        self.assertEqual(step_detail(env.ops, r["run_id"], "sync_courses")["unparseable.Tuition Fee"], base + 1)
        self.assertEqual(summary(env.ops)["unparseable"]["courses.Tuition Fee"], base + 1)
        code = self.dump["tables"]["courses"][3]["CRICOS Course Code"]
        row = query(env.corpus, "SELECT tuition_fee_cents, non_tuition_fee_cents, course_name FROM cricos_courses "
                                "WHERE course_code = ?", (code,))[0]
        self.assertIsNone(row[0], "stored as NULL, never guessed")
        self.assertIsNotNone(row[2])
        self.assertIn("'$12,34.00' cannot be read: stored as NULL", env.daemon.read_log())
        env.wd.cleanup()

    def test_unparseable_value_with_a_hostile_id_logs_no_made_up_id(self):
        # An _id far beyond any integer: the log says -1 ("none usable"), not what a float-to-integer overflow
        # (undefined behaviour) happened to give (-9223372036854775808 on x86-64).
        env = self.env("cricos-hugeid")
        self.fake.fault("datastore_search", "bad_money", field="Tuition Fee", value="$12,34.00", record=3,
                        resource_id=COURSES, also={"_id": 1e300})
        self.assertEqual(env.daemon.run_once(), 0, env.daemon.read_log())
        log = env.daemon.read_log()
        self.assertIn("sync_courses: record _id -1: Tuition Fee '$12,34.00' cannot be read: stored as NULL", log)
        self.assertNotIn("9223372036854775", log)
        env.wd.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
