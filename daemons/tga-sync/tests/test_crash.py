#!/usr/bin/python3
"""SIGKILL during sync_training and during sync_orgs (inside a page's write, at commit boundaries, and at random
moments), then a restart: the cycle resumes at its phase and window and ends with the same database, the same
change summary and one completion mail, as an uninterrupted cycle.
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
KEYS = {"page_size": 20}


class CrashTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tgalib.share_fake(cls, "tgacrashfake")
        ref = tgalib.Env(cls.fake, cls.smtp, name="tgaref", **KEYS)
        assert ref.daemon.run_once("-v") == 0, ref.daemon.read_log()[-4000:]
        cls.reference = tgalib.corpus_dump(ref)
        cls.ref_summary = without(tgalib.summary(ref.ops)[0], "window")
        log = ref.daemon.read_log()
        # Pages written per phase: the crash points inside a page's write are counted from these.
        cls.pages = {p: len(re.findall(r"debug: %s: .* written in" % p, log)) for p in ("sync_training", "sync_orgs")}
        assert tgalib.compare(ref.corpus, tgalib.fake_dump(cls.fake)) == {}
        cls.ref = ref
        sys.stderr.write("reference cycle: %s pages\n" % cls.pages)

    @classmethod
    def tearDownClass(cls):
        cls.ref.cleanup()

    def check_resumed(self, env, first_phase, smtp):
        self.assertEqual(tgalib.corpus_dump(env), self.reference)
        self.assertEqual(without(tgalib.summary(env.ops)[0], "window"), self.ref_summary)
        assert_resumed(self, env, first_phase, smtp)

    def crash_and_resume(self, point, n, phase):
        # A sink of its own: run ids are per second, and envs started in the same second share them.
        smtp = SmtpSink()
        env = tgalib.Env(self.fake, smtp, name="tgacrash", **KEYS)
        crash_at(self, env, point, n)
        cur = cursor(env.ops, "tga_sync")
        self.assertEqual(cur["cycle_phase"], phase, cur)
        if n > 1 and point.endswith("_written"):
            # Mid-phase: the cursor names a window and a page.
            self.assertRegex(cur["phase_cursor"], r"^w=\d{4}-\d\d-\d\dT[0-9:.]+Z\+\d+ p=\d+ n=-?\d+$")
        self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-3000:])
        self.check_resumed(env, phase, smtp)
        smtp.stop()
        env.cleanup()

    def test_kill_inside_a_training_page(self):
        self.assertGreaterEqual(self.pages["sync_training"], 3)
        for n in (1, 2, self.pages["sync_training"] // 2 + 1):
            with self.subTest(page=n):
                self.crash_and_resume("tga_training_written", n, "sync_training")

    def test_kill_inside_an_orgs_page(self):
        self.assertGreaterEqual(self.pages["sync_orgs"], 3)
        for n in (1, self.pages["sync_orgs"] - 1):
            with self.subTest(page=n):
                self.crash_and_resume("tga_orgs_written", n, "sync_orgs")

    def test_kill_at_commit_boundaries(self):
        # Commit 1 is init; then the sync_training pages, then the sync_orgs pages.
        t = self.pages["sync_training"]
        for point, n, phase in (("before_commit", 3, "sync_training"), ("after_commit", 3, "sync_training"),
                                ("before_commit", 1 + t + 2, "sync_orgs"), ("after_commit", 1 + t + 1, "sync_orgs")):
            with self.subTest(point=point, n=n):
                self.crash_and_resume(point, n, phase)

    def test_kill_at_random_moments(self):
        # Spaced requests stretch the cycle to a few seconds, so that the kill lands inside it.
        tgalib.kill_at_random_moments(
            self, lambda: tgalib.Env(self.fake, self.smtp, name="tgarandom", min_interval="4ms", **KEYS),
            int(os.environ.get("TGA_CRASH_SEED", "3")), rounds=3, window=(0.0, 1.2), at_least=2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
