#!/usr/bin/python3
"""Issue 11: a kill between the two databases' commits loses nothing, on the first cycle too (SOAP and REST).

Every cursor commit of tga-sync writes ops.db and rtopacks.db; ops.db commits first.  For the commits that matter
(the run's start, the first corpus commit of the first cycle and of a later cycle, a commit in the middle of
sync_training, the last corpus commit, write_snapshot, the mail's commit and the last commit) the daemon is killed
on both sides of the commit and exactly between the two files (tests/kit/crash.py), restarted as systemd
would, and must end with the state of uninterrupted cycles: every table by content (the torture's end state), one
complete run per cycle, the killed run stale and named by the next run's resumed_from, one completion mail.
"""

import unittest

import tgalib
import test_torture
from harness import Workdir
from crash import SplitCommitCases


class SplitCommitBase(SplitCommitCases):
    """A fake per class; the reference is one (and two) uninterrupted cycles of its register."""
    NAME = "tgasplit"
    sync_type = "tga_sync"

    @classmethod
    def make_env(cls, smtp):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        cls.fwd = Workdir(cls.NAME + "fake")
        cls.fake = cls.start_fake(cls.fwd)
        cls.state_fn = test_torture.Subject(cls.fake).state
        cls.references()

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()
        cls.fwd.cleanup()

    def points(self):
        c = self.counts
        self.assertGreaterEqual(c.get("sync_training", 0), 3, c)
        split = [("trigger", 1), ("init", 1), ("sync_training", 1), ("sync_training", 3),
                 ("sweep_deletions", c["sweep_deletions"]), ("write_snapshot", 1), ("notify", 1), ("notify", 2)]
        return [("split_commit@%s:%d" % p) for p in split] + [
            "before_commit@sync_training:1", "after_commit@sync_training:1",
            "before_commit@notify:1", "after_commit@notify:1"]

    def test_first_cycle(self):
        for point in self.points():
            with self.subTest(point=point):
                self.case(point)

    def test_later_cycle(self):
        # The first corpus commit of a second cycle (crash points count in the killed process, the second one): its
        # checkpoint must not lead back into the first cycle.
        for point in ("split_commit@trigger:1", "split_commit@sync_training:1"):
            with self.subTest(point=point):
                self.case(point, cycles=2)


class SoapSplitCommitTest(SplitCommitBase, unittest.TestCase):
    NAME = "tgasplit"

    @staticmethod
    def start_fake(wd):
        return tgalib.start_fake(wd)

    @classmethod
    def make_env(cls, smtp):
        return tgalib.Env(cls.fake, smtp, name=cls.NAME, page_size=20)


class RestSplitCommitTest(SplitCommitBase, unittest.TestCase):
    NAME = "tgarestsplit"

    @staticmethod
    def start_fake(wd):
        return tgalib.start_rest_fake(wd)

    @classmethod
    def make_env(cls, smtp):
        return tgalib.RestEnv(cls.fake, smtp, name=cls.NAME, rest_page_size=20)

    def points(self):
        # The REST crawl has the same commits; the SOAP test covers both sides of them, this one the split.
        return [p for p in super().points() if p.startswith("split_commit@")]


if __name__ == "__main__":
    unittest.main(verbosity=2)
