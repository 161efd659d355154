#!/usr/bin/python3
"""Crash torture of cricos-sync (issue 7, item 1): SIGKILL at random moments and at random crash points of a first
edition's cycle against the fake data.gov.au (half each), a restart after every kill, and at the end every table of
rtopacks.db and the cycle's outcome in ops.db compared, by content, with an uninterrupted cycle of the same
edition; no completion mail twice.

Each tortured env is a fresh one (a first edition: every row is new); a second cycle of the same edition would only
find "no new edition", so when a cycle ends before the next kill falls, its end state is checked then and the next
kills go to a fresh env (torture.fresh_env_per_cycle).  Small pages (20 records) spread the cycle over a few
seconds and about 56 page commits, so the random kills land inside it.

What is not compared, and why (everything else is, row by row):
  * the row stamps added_cycle, changed_cycle, seen_cycle, removed_cycle, link_cycle name the cycle, and first_seen_at,
    updated_at, deleted_at, cricos_editions.cycle_id/synced_at read our clock: other ids and times in every env.
    They are replaced by a marker, so NULL against set still counts (a replayed page that stamped changed_cycle on
    an unchanged row is a difference).
  * sync_checkpoint: `seq`, `corpus_seq` and the step counters count commits and the current run's step row (a replayed page
    commits again); run and cycle ids and times are marked.
  * ops.db: the final run's status, phase, changes and summary, every earlier run stale, the cursor (the job
    state's edition_synced_at and edition_synced_cycle are our clock and cycle id: marked), the completion mail's
    subject, status and body (minus the lines naming runs and times).  sync_steps are per run: not compared.

TORTURE_KILLS sets the number of kills (default 6; scripts/reliability runs 50 mixed, then 200 aimed between the
two databases' commits with TORTURE_AIM=split: see tests/lib/torture.py), TORTURE_SEED the seed (printed).
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cricoslib  # noqa: E402
from harness import SmtpSink, cursor, query  # noqa: E402
from endstate import MARK, json_marked, normalised, ops_state, short  # noqa: E402
from torture import torture  # noqa: E402

KEYS = {"page_size": 20}
CYCLE_COLUMNS = ("added_cycle", "changed_cycle", "seen_cycle", "removed_cycle", "first_seen_at", "updated_at",
                 "deleted_at", "cricos_editions.cycle_id", "synced_at", "link_cycle")
# The job state's record of the last edition synced: when (our clock) and by which cycle.
JOB_TIMES = ("edition_synced_at", "edition_synced_cycle")


class Env(cricoslib.Env):
    def __init__(self, fake):
        # A mail sink per env: run ids are per second, so two envs can have the same cycle id.
        self.smtp = SmtpSink()
        super().__init__(fake, self.smtp, name="cricostort", **KEYS)


class Subject:
    fresh_env_per_cycle = True
    sync_type = "cricos_sync"

    def __init__(self, fake):
        self.fake = fake
        self.crash_points = []
        self.split_commits = 0

    def new_env(self):
        return Env(self.fake)

    def discard(self, env):
        env.smtp.stop()
        env.wd.cleanup()

    def state(self, env):
        s = normalised(env.corpus,
                       mark=CYCLE_COLUMNS + ("sync_checkpoint.run_id", "sync_checkpoint.cycle_id"),
                       drop=("sync_checkpoint.seq", "sync_checkpoint.corpus_seq", "step_records_in",
                             "step_records_out", "step_rejected"),
                       translate={"sync_checkpoint.job_state": json_marked(*JOB_TIMES)})
        s.update(ops_state(env.ops, "cricos_sync",
                           job_state_fn=lambda j: {k: (MARK if k in JOB_TIMES else v) for k, v in j.items()}))
        return s

    def reference(self):
        env = self.new_env()
        t0 = time.monotonic()
        assert env.daemon.run_once("-v") == 0, env.daemon.read_log()[-3000:]
        seconds = time.monotonic() - t0
        commits = query(env.ops, "SELECT seq FROM cricos_sync_cursor")[0][0]
        pages = dict(query(env.ops, "SELECT step, records_in FROM sync_steps WHERE step LIKE 'sync_%'"))
        # How often each crash point is passed in one cycle: the engine's at every step and commit, cricos-sync's
        # own after a page's rows are written, before its commit (one per page of each table).
        # Every cursor commit writes both databases (the run's start included): split_commit:N aims between them.
        self.split_commits = commits
        self.crash_points = [("step_begin", commits), ("before_commit", commits), ("after_commit", commits)]
        for t in cricoslib.TABLES:
            self.crash_points.append(("cricos_page_%s" % t, (pages["sync_" + t] + KEYS["page_size"] - 1)
                                      // KEYS["page_size"]))
        state = self.state(env)
        sys.stderr.write("reference cycle: %.1fs, %d commits, %d tables and %d rows compared\n" % (
            seconds, commits, len(state), sum(len(v[1]) for v in state.values())))
        self.discard(env)
        return state, seconds

    def duplicates(self, env):
        time.sleep(0.2)
        keys = [str(m["msg"]["X-RTOpacks-Mail-Key"]) for m in env.smtp.received()]
        return len(keys) - len(set(keys))


class TortureTest(unittest.TestCase):
    def test_random_kills(self):
        fake = cricoslib.start_fake()
        self.addCleanup(cricoslib.stop_fake, fake)
        kills = int(os.environ.get("TORTURE_KILLS", "6"))
        seed = int(os.environ.get("TORTURE_SEED", str(int(time.time()))))
        subject = Subject(fake)
        res, env = torture(subject, kills, seed)
        print("\n" + res.line("cricos-sync (seed %d)" % seed), file=sys.stderr)
        sys.stderr.write("(%d cycles ended between kills and were checked on their own)\n" %
                         res.cycles_completed_early)
        self.assertEqual(short(res.mismatches), [], "seed %d" % seed)
        self.assertEqual(res.duplicates, 0, "seed %d" % seed)
        self.assertEqual(res.kills, kills, "seed %d" % seed)
        # The last env ended its cycle, with exactly the fake's edition.
        self.assertEqual(cursor(env.ops, "cricos_sync")["cycle_phase"], "done")
        env.assert_matches(self, fake.get("/_fake/dump"))
        subject.discard(env)


if __name__ == "__main__":
    unittest.main(verbosity=2)
