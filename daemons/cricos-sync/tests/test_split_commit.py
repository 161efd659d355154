#!/usr/bin/python3
"""Issue 11: a kill between the two databases' commits loses nothing, on the first cycle too (cricos-sync).

Every cursor commit of cricos-sync writes ops.db and rtopacks.db; ops.db commits first.  For the run's start, init,
the first corpus commit of the first edition's cycle and of the next edition's, a commit in the middle of the
longest table, the last corpus commit (write_snapshot), the mail's commit and the last commit, the daemon is killed
on both sides of the commit and exactly between the two files (tests/kit/crash.py), restarted as systemd
would, and must end with the state of uninterrupted cycles: every table by content (the torture's end state), one
complete run per cycle, the killed run stale and named by the next run's resumed_from, one completion mail.
"""

import unittest

import cricoslib
import test_torture
from crash import SplitCommitCases

KEYS = {"page_size": 50}


class SplitCommitTest(SplitCommitCases, unittest.TestCase):
    sync_type = "cricos_sync"

    @classmethod
    def setUpClass(cls):
        cls.fake = cricoslib.start_fake()
        cls.state_fn = test_torture.Subject(cls.fake).state
        cls.references()

    @classmethod
    def tearDownClass(cls):
        cricoslib.stop_fake(cls.fake)

    @classmethod
    def make_env(cls, smtp):
        return cricoslib.Env(cls.fake, smtp, name="cricossplit", **KEYS)

    @classmethod
    def run_cycle(cls, env, i, crash, *args):
        # Cycle i syncs edition i + 1 (the fake serves the edition it is told to).
        cls.fake.post("/_fake/mutate", {"action": "edition", "edition": i + 1})
        return env.daemon.run_once(*args, env=crash)

    def test_first_cycle(self):
        c = self.counts
        longest = max((n, label) for label, n in c.items() if label.startswith("sync_"))
        self.assertGreaterEqual(longest[0], 3, c)
        split = [("trigger", 1), ("init", 1), ("sync_institutions", 1), (longest[1], longest[0] // 2 + 1),
                 ("write_snapshot", c["write_snapshot"]), ("notify", 1), ("notify", 2)]
        points = [("split_commit@%s:%d" % p) for p in split] + [
            "before_commit@sync_institutions:1", "after_commit@sync_institutions:1",
            "before_commit@notify:1", "after_commit@notify:1"]
        for point in points:
            with self.subTest(point=point):
                self.case(point)

    def test_later_cycle(self):
        # The first corpus commit of the next edition's cycle (crash points count in the killed process): its
        # checkpoint must not lead back into the first cycle.
        for point in ("split_commit@trigger:1", "split_commit@sync_institutions:1"):
            with self.subTest(point=point):
                self.case(point, cycles=2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
