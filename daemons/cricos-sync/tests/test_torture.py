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
two databases' commits with TORTURE_AIM=split: see tests/kit/crash.py), TORTURE_SEED the seed (printed).
"""

import sys
import time
import unittest

import cricoslib
from harness import cursor, query
from endstate import MARK, json_marked, normalised, ops_state
from crash import MailSubject, engine_points, run_torture

KEYS = {"page_size": 20}
CYCLE_COLUMNS = ("added_cycle", "changed_cycle", "seen_cycle", "removed_cycle", "first_seen_at", "updated_at",
                 "deleted_at", "cricos_editions.cycle_id", "synced_at", "link_cycle")
# The job state's record of the last edition synced: when (our clock) and by which cycle.
JOB_TIMES = ("edition_synced_at", "edition_synced_cycle")


class Subject(MailSubject):
    sync_type = "cricos_sync"

    def make_env(self, smtp):
        return cricoslib.Env(self.fake, smtp, name="cricostort", **KEYS)

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
        self.crash_points = engine_points(commits)
        for t in cricoslib.TABLES:
            self.crash_points.append(("cricos_page_%s" % t, (pages["sync_" + t] + KEYS["page_size"] - 1)
                                      // KEYS["page_size"]))
        state = self.state(env)
        sys.stderr.write("reference cycle: %.1fs, %d commits, %d tables and %d rows compared\n" % (
            seconds, commits, len(state), sum(len(v[1]) for v in state.values())))
        self.discard(env)
        return state, seconds


class TortureTest(unittest.TestCase):
    def test_random_kills(self):
        fake = cricoslib.start_fake()
        self.addCleanup(cricoslib.stop_fake, fake)
        subject = Subject(fake)
        res, env = run_torture(self, subject, "cricos-sync")
        # The last env ended its cycle, with exactly the fake's edition.
        self.assertEqual(cursor(env.ops, "cricos_sync")["cycle_phase"], "done")
        env.assert_matches(self, fake.get("/_fake/dump"))
        subject.discard(env)


if __name__ == "__main__":
    unittest.main(verbosity=2)
