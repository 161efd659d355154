#!/usr/bin/python3
"""source = rest: SIGKILL in the middle of the crawl (inside a page's write in sync_training and in sync_orgs, at
commit boundaries, at random moments), then a restart.  The cycle resumes at its page: the resumed run searches
only the pages the killed one had not committed (the fake counts them), and ends with the same database, the same
change summary and one completion mail as an uninterrupted cycle.
"""

import os
import re
import sys
import unittest

import tgalib
from crash import assert_resumed, crash_at
from endstate import without
from harness import SmtpSink, cursor

# Small pages, so that both phases span several steps at the small scale.
KEYS = {"rest_page_size": 20}
CURSOR_RE = r"^t=[A-Za-z]+ a=[A-Z0-9]* o=\d+ s=\d+ g=\d+ l=[A-Z0-9]*$"


class RestCrashTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tgalib.share_fake(cls, "tgarestcrashfake", start=tgalib.start_rest_fake)
        ref = tgalib.RestEnv(cls.fake, cls.smtp, name="tgarestref", **KEYS)
        cls.fake.post("/_fake/stats/reset")
        assert ref.daemon.run_once("-v") == 0, ref.daemon.read_log()[-4000:]
        cls.searches = tgalib.rest_stats(cls.fake)["by_op"]
        cls.reference = tgalib.corpus_dump(ref)
        cls.ref_summary = without(tgalib.summary(ref.ops)[0], "window")
        log = ref.daemon.read_log()
        cls.pages = {p: len(re.findall(r"debug: %s: .* written in" % p, log)) for p in ("sync_training", "sync_orgs")}
        assert tgalib.compare_rest(ref.corpus, tgalib.fake_dump(cls.fake)) == {}
        cls.ref = ref
        sys.stderr.write("reference cycle: %s pages, %s\n" % (cls.pages, cls.searches))

    @classmethod
    def tearDownClass(cls):
        cls.ref.cleanup()

    def check_resumed(self, env, first_phase, smtp):
        self.assertEqual(tgalib.corpus_dump(env), self.reference)
        self.assertEqual(without(tgalib.summary(env.ops)[0], "window"), self.ref_summary)
        assert_resumed(self, env, first_phase, smtp, resumed_from=False)

    def crash_and_resume(self, point, n, phase, committed):
        """Kill at crash point `point`:n; `committed` pages of `phase` are in the database then."""
        smtp = SmtpSink()
        env = tgalib.RestEnv(self.fake, smtp, name="tgarestcrash", **KEYS)
        crash_at(self, env, point, n)
        cur = cursor(env.ops, "tga_sync")
        self.assertEqual(cur["cycle_phase"], phase, cur)
        if committed > 0:
            self.assertRegex(cur["phase_cursor"], CURSOR_RE)
        self.fake.post("/_fake/stats/reset")
        self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-3000:])
        # Resumed at its page: only the pages not committed are searched again (the one in flight included).
        by_op = tgalib.rest_stats(self.fake)["by_op"]
        op = "search_training" if phase == "sync_training" else "search_organisation"
        self.assertEqual(by_op.get(op, 0), self.searches[op] - committed, (point, n, by_op))
        if phase == "sync_orgs":
            self.assertNotIn("search_training", by_op)
        self.check_resumed(env, phase, smtp)
        smtp.stop()
        env.cleanup()

    def test_kill_inside_a_training_page(self):
        self.assertGreaterEqual(self.pages["sync_training"], 10)
        for n in (1, self.pages["sync_training"] // 2 + 1, self.pages["sync_training"]):
            with self.subTest(page=n):
                self.crash_and_resume("tga_training_written", n, "sync_training", n - 1)

    def test_kill_inside_an_orgs_page(self):
        self.assertGreaterEqual(self.pages["sync_orgs"], 3)
        for n in (2, self.pages["sync_orgs"]):
            with self.subTest(page=n):
                self.crash_and_resume("tga_orgs_written", n, "sync_orgs", n - 1)

    def test_kill_at_commit_boundaries(self):
        # Commit 1 is init; then the sync_training pages, then the sync_orgs pages.
        t = self.pages["sync_training"]
        for point, n, phase, committed in (("before_commit", 4, "sync_training", 2),
                                           ("after_commit", 4, "sync_training", 3),
                                           ("before_commit", 1 + t + 2, "sync_orgs", 1)):
            with self.subTest(point=point, n=n):
                self.crash_and_resume(point, n, phase, committed)

    def test_kill_at_random_moments(self):
        # Spaced requests stretch the cycle to a few seconds, so that the kill lands inside it.
        tgalib.kill_at_random_moments(
            self, lambda: tgalib.RestEnv(self.fake, self.smtp, name="tgarestrandom", rest_min_interval="3ms", **KEYS),
            int(os.environ.get("TGA_CRASH_SEED", "5")), rounds=2, window=(0.2, 2.0), at_least=1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
