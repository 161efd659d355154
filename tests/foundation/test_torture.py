#!/usr/bin/python3
"""Crash torture of the cycle engine (through the test daemon): SIGKILL at random times and at random crash points
during a cycle (between the two databases' commits too), restart each time, and compare the corpus with an
uninterrupted cycle; one completion mail per cycle.  Every env is a first cycle (torture.fresh_env_per_cycle), so
every kill must land inside one: the test asserts that exactly TORTURE_KILLS did, none hung.

TORTURE_KILLS sets the number of kills (default 8 here; scripts/reliability runs the long mode with 50 or more),
TORTURE_SEED the seed (printed, so a failure replays), TORTURE_AIM the aim (tests/kit/crash.py)."""

import os
import time
import unittest

from env import TestSyncEnv
from harness import Server, SmtpSink, dump_db, query, REPO
from crash import run_torture

ITEMS_SERVER = os.path.join(REPO, "tests", "kit", "items_server.py")
VOLATILE = ("run_id", "created_cycle", "changed_cycle")


class Env(TestSyncEnv):
    def __init__(self, items):
        # A mail sink per env: run ids are per second, so two envs can have the same cycle id.
        super().__init__(items, SmtpSink(), name="torture", page_size=5, step_backoff="50ms")


class Subject:
    # test-sync passes these crash points (and how often in one cycle of 60 items in pages of 5).
    crash_points = [("step_begin", 20), ("before_commit", 20), ("after_commit", 20), ("testd_page_written", 12)]
    fresh_env_per_cycle = True
    sync_type = "test_sync"

    def __init__(self, items):
        self.items = items
        self.split_commits = 0

    def new_env(self):
        return Env(self.items)

    def discard(self, env):
        env.smtp.stop()
        env.wd.cleanup()

    def state(self, env):
        return dump_db(env.corpus, exclude_tables=("sync_checkpoint",), exclude_columns=VOLATILE)

    def reference(self):
        env = self.new_env()
        t0 = time.monotonic()
        assert env.daemon.run_once() == 0
        seconds = time.monotonic() - t0
        # Every cursor commit writes both databases: split_commit:N aims between them.
        self.split_commits = query(env.ops, "SELECT seq FROM test_sync_cursor")[0][0]
        state = self.state(env)
        self.discard(env)
        return state, seconds

    def duplicates(self, env):
        keys = [m["msg"]["X-RTOpacks-Mail-Key"] for m in env.smtp.received()]
        return len(keys) - len(set(keys))


class TortureTest(unittest.TestCase):
    def test_random_kills(self):
        items = Server(ITEMS_SERVER, "--items", "60")
        # Slow pages spread the cycle over a couple of seconds, so random kills land inside it.
        items.fault("items", "slow", count=-1, delay=0.15)
        subject = Subject(items)
        res, env = run_torture(self, subject, "test-sync", default_kills=8)
        self.assertEqual(res.hangs, 0)
        items.stop()
        subject.discard(env)


if __name__ == "__main__":
    unittest.main(verbosity=2)
