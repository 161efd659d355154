#!/usr/bin/python3
"""Crash torture of the cycle engine (through the test daemon): SIGKILL at random times and at random crash points
during a cycle, restart each time, and compare the corpus with an uninterrupted cycle; one completion mail per cycle.

TORTURE_KILLS sets the number of kills (default 8 here; scripts/reliability runs the long mode with 50 or more),
TORTURE_SEED the seed (printed, so a failure replays)."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import Daemon, Server, SmtpSink, Workdir, base_config, dump_db, write_config, REPO  # noqa: E402
from torture import torture  # noqa: E402

ITEMS_SERVER = os.path.join(REPO, "tests", "lib", "items_server.py")
VOLATILE = ("run_id", "created_cycle", "changed_cycle")


class Env:
    def __init__(self, items, smtp):
        self.wd = Workdir("torture")
        self.config = write_config(self.wd.file("sync.conf"), base_config(self.wd, smtp.port, {
            "test-sync": {"url": items.url, "page_size": 5, "step_backoff": "50ms"}}))
        self.daemon = Daemon("test-sync", self.config, self.wd)
        self.corpus = os.path.join(self.wd.state, "rtopacks.db")


class Subject:
    # test-sync passes these crash points (and how often in one cycle of 60 items in pages of 5).
    crash_points = [("step_begin", 20), ("before_commit", 20), ("after_commit", 20), ("testd_page_written", 12)]

    def __init__(self, items, smtp):
        self.items = items
        self.smtp = smtp

    def new_env(self):
        return Env(self.items, self.smtp)

    def state(self, env):
        return dump_db(env.corpus, exclude_tables=("sync_checkpoint",), exclude_columns=VOLATILE)

    def reference(self):
        env = self.new_env()
        t0 = time.monotonic()
        assert env.daemon.run_once() == 0
        return self.state(env), time.monotonic() - t0

    def duplicates(self, env):
        keys = [m["msg"]["X-RTOpacks-Mail-Key"] for m in self.smtp.received()]
        return len(keys) - len(set(keys))


class TortureTest(unittest.TestCase):
    def test_random_kills(self):
        items = Server(ITEMS_SERVER, "--items", "60")
        # Slow pages spread the cycle over a couple of seconds, so random kills land inside it.
        items.fault("items", "slow", count=-1, delay=0.15)
        smtp = SmtpSink()
        kills = int(os.environ.get("TORTURE_KILLS", "8"))
        seed = int(os.environ.get("TORTURE_SEED", str(int(time.time()))))
        res, env = torture(Subject(items, smtp), kills, seed)
        print("\n" + res.line("test-sync (seed %d)" % seed), file=sys.stderr)
        self.assertEqual(res.mismatches, [], "seed %d" % seed)
        self.assertEqual(res.duplicates, 0, "seed %d" % seed)
        self.assertGreater(res.kills, 0)
        items.stop()
        smtp.stop()
        env.wd.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
