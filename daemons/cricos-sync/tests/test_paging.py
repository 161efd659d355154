#!/usr/bin/python3
"""cricos-sync's paging safety (docs/cricos-sync.md, "Paging"), each against the fake data.gov.au:
  * CKAN clamps `limit` to its rows_max without saying so: the echoed limit is used from then on, and the next offset
    is the current one plus the records received, so nothing is skipped;
  * `total` changes in the middle of a table (the table replaced while it is read): the table is read again from
    offset 0, at most 3 times per cycle, then the run fails saying the table keeps changing;
  * `total_was_estimated`: the total (too small or too large) does not end the table, an empty page does.
Every completed case must end with exactly the fake's content (nothing skipped, nothing extra)."""

import math
import unittest

from env import share_upstreams
from cricoslib import Env, last_run, start_fake, stop_fake, step_detail

COURSES = "48cacf69-2082-415e-9595-f17d0c3a4af0"


class CricosPagingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        share_upstreams(cls, start_fake, stop_fake)
        cls.dump = cls.fake.get("/_fake/dump")
        cls.courses = cls.dump["resources"]["courses"]["total"]
        assert cls.courses > 300, "the test needs several pages of courses (%d)" % cls.courses

    def setUp(self):
        self.fake.post("/_fake/fault/clear")
        self.fake.post("/_fake/mutate", {"action": "edition", "edition": 1})
        self.fake.post("/_fake/mutate", {"action": "rows_max", "value": 32000})
        self.fake.post("/_fake/stats/reset")

    def env(self, name, **keys):
        env = Env(self.fake, self.smtp, name=name, **keys)
        self.addCleanup(env.wd.cleanup)
        return env

    def fired(self, kind):
        return sum(f["fired"] for f in self.fake.faults() if f["kind"] == kind)

    def test_limit_clamped_by_ckan_skips_nothing(self):
        # page_size 100, but this CKAN serves at most 37 records a page and echoes limit 37.
        self.fake.post("/_fake/mutate", {"action": "rows_max", "value": 37})
        env = self.env("cricos-clamp")
        self.assertEqual(env.daemon.run_once(), 0, env.daemon.read_log()[-3000:])
        self.assertEqual(last_run(env.ops)["status"], "complete")
        self.assertIn("sync_courses: CKAN clamped the page size to 37 records (asked 100); paging by 37",
                      env.daemon.read_log())
        env.assert_matches(self, self.dump)
        # Paged by 37 throughout: no page was asked for twice, none skipped.
        pages = self.fake.get("/_fake/stats")["datastore_pages"]
        self.assertEqual(pages["courses"], math.ceil(self.courses / 37), pages)

    def test_total_changing_mid_table_reads_the_table_again(self):
        env = self.env("cricos-total")
        # The third page of courses says the table grew by 7: it was replaced while read.
        self.fake.fault("datastore_search", "total_change", count=1, resource_id=COURSES, skip=2, delta=7)
        self.assertEqual(env.daemon.run_once(), 0, env.daemon.read_log()[-3000:])
        r = last_run(env.ops)
        self.assertEqual(r["status"], "complete", r)
        self.assertEqual(self.fired("total_change"), 1)
        self.assertIn("sync_courses: the table changed while it was read (total was %d, now %d): reading it again "
                      "from the start" % (self.courses, self.courses + 7), env.daemon.read_log())
        self.assertEqual(step_detail(env.ops, r["run_id"], "sync_courses").get("table_restarts"), 1)
        env.assert_matches(self, self.dump)

    def test_total_that_keeps_changing_fails_after_three_restarts(self):
        env = self.env("cricos-total-always", step_retries=0)
        # Every page after the first reports another total: the table never holds still.
        self.fake.fault("datastore_search", "total_change", count=-1, resource_id=COURSES, skip=1, delta=5,
                        cumulative=True)
        self.assertEqual(env.daemon.run_once(), 1, env.daemon.read_log()[-3000:])
        r = last_run(env.ops)
        self.assertEqual(r["status"], "failed")
        self.assertIn("the table keeps changing while it is read", r["error"])
        self.assertIn("3 restarts", r["error"])

    def test_estimated_total_ends_the_table_at_an_empty_page(self):
        for factor in (0.5, 1.5):
            with self.subTest(factor=factor):
                self.fake.post("/_fake/fault/clear")
                env = self.env("cricos-est")
                # Too small, the total would end the table early; too large, it would make the last page look
                # short.  Only an empty page ends an estimated table.
                self.fake.fault("datastore_search", "total_estimated", count=-1, resource_id=COURSES,
                                factor=factor)
                self.assertEqual(env.daemon.run_once(), 0, env.daemon.read_log()[-3000:])
                self.assertEqual(last_run(env.ops)["status"], "complete")
                self.assertGreater(self.fired("total_estimated"), 1)
                env.assert_matches(self, self.dump)


if __name__ == "__main__":
    unittest.main(verbosity=2)
