#!/usr/bin/python3
"""Crash torture of tga-sync (issue 7, item 1): SIGKILL at random moments and at random crash points of a first
cycle against the fake TGA server (half each), a restart after every kill, and at the end every table of
rtopacks.db and the cycle's outcome in ops.db compared, by content, with an uninterrupted cycle of the same
register; no completion mail twice.

Each tortured env is a fresh one (a first cycle, the heaviest: every component and RTO is new); when a cycle ends
before the next kill falls, its end state is checked then and the next kills go to a fresh env
(torture.fresh_env_per_cycle).  Requests are spaced (min_interval) so that the cycle lasts a few seconds and the
random kills land inside it.

What is not compared, and why (everything else is, row by row):
  * rtopacks.db `run` (tga_runs.n of the run that last wrote a row) and `updated_at` (our clock): a resumed cycle
    is several runs, at other times.  They are replaced by a marker, so NULL against set still counts.
  * tga_runs has one row per run: compared as the set of cycle numbers the rows belong to (one cycle).
  * sync_checkpoint: `seq`, `corpus_seq` and the step counters count commits and the current run's step row (a
    replayed page commits again); run and cycle ids, times, cycle_state (it holds the fake's running server time) and
    run_summary (its window is that clock too) are marked, and in job_state the same keys as in the cursor's.
  * ops.db: the final run's status, phase, changes and summary (minus its `window`, the fake's running clock), every
    earlier run stale, the cursor (its high-water marks are the fake's clock: marked), the completion mail's
    subject, status and body (minus the lines naming runs and times).  sync_steps are per run: not compared.

TORTURE_KILLS sets the number of kills (default 6; scripts/reliability runs 50 mixed, then 200 aimed between the
two databases' commits with TORTURE_AIM=split: see tests/kit/crash.py), TORTURE_SEED the seed (printed).
"""

import re
import sys
import time
import unittest

import tgalib
from harness import Workdir, cursor, query
from endstate import MARK, json_marked, normalised, ops_state, without
from crash import MailSubject, engine_points, run_torture

KEYS = {"page_size": 20, "min_interval": "4ms"}
# The job state's high-water marks (the fake's running clock) and the last cycle's id (our clock).
JOB_CLOCK = ("hwm", "del_hwm", "last_cycle")


class Subject(MailSubject):
    sync_type = "tga_sync"

    def make_env(self, smtp):
        return tgalib.Env(self.fake, smtp, name="tgatort", **KEYS)

    def state(self, env):
        s = normalised(env.corpus, exclude_tables=("tga_runs",),
                       mark=("run", "updated_at", "sync_checkpoint.run_id", "sync_checkpoint.cycle_id",
                             "sync_checkpoint.cycle_state", "sync_checkpoint.run_summary"),
                       drop=("sync_checkpoint.seq", "sync_checkpoint.corpus_seq", "step_records_in",
                             "step_records_out", "step_rejected"),
                       translate={"sync_checkpoint.job_state": json_marked(*JOB_CLOCK)})
        s["tga_runs.cycle_n"] = (["cycle_n"], [tuple(r) for r in sorted(set(
            tgalib._con(env.corpus).execute("SELECT cycle_n FROM tga_runs").fetchall()))])
        s.update(ops_state(env.ops, "tga_sync", summary_fn=lambda x: without(x, "window"),
                           job_state_fn=lambda j: {k: (MARK if k in JOB_CLOCK else v)
                                                   for k, v in j.items()}))
        return s

    def reference(self):
        env = self.new_env()
        t0 = time.monotonic()
        assert env.run_once("-v") == 0, env.daemon.read_log()[-3000:]
        seconds = time.monotonic() - t0
        log = env.daemon.read_log()
        pages = {p: len(re.findall(r"debug: %s: .* written in" % p, log)) for p in ("sync_training", "sync_orgs")}
        commits = tgalib._con(env.ops).execute("SELECT seq FROM tga_sync_cursor").fetchone()[0]
        # How often each crash point is passed in one cycle: the engine's at every step and commit, tga-sync's
        # own inside the write of each page (after the rows, before the commit).
        # Every cursor commit writes both databases (the run's start included): split_commit:N aims between them.
        self.split_commits = commits
        self.crash_points = engine_points(commits) + [("tga_training_written", pages["sync_training"]),
                                                      ("tga_orgs_written", pages["sync_orgs"])]
        assert tgalib.compare(env.corpus, tgalib.fake_dump(self.fake)) == {}, "the reference is not the register"
        state = self.state(env)
        sys.stderr.write("reference cycle: %.1fs, %d commits, pages %s\n" % (seconds, commits, pages))
        self.discard(env)
        return state, seconds


class TortureTest(unittest.TestCase):
    def test_random_kills(self):
        fwd = Workdir("tgatortfake")
        fake = tgalib.start_fake(fwd)
        self.addCleanup(fwd.cleanup)
        self.addCleanup(fake.stop)
        subject = Subject(fake)
        res, env = run_torture(self, subject, "tga-sync")
        # The last env ended its cycle, with its data still the fake's register.
        self.assertEqual(cursor(env.ops, "tga_sync")["cycle_phase"], "done")
        self.assertEqual(tgalib.compare(env.corpus, tgalib.fake_dump(fake)), {})
        subject.discard(env)

class SummaryAfterResumeTest(unittest.TestCase):
    """Regression (found by this torture): a cycle killed after write_snapshot (here: right after the completion
    mail was queued) and resumed ended with a `complete` run row without the cycle's summary and with 0 changes;
    only the stale run had them (syncctl runs, the health figures).  The run that resumes a cycle now carries the
    summary of the run it continues (common/observatory.c)."""

    def test_the_completing_run_carries_the_summary(self):
        fwd = Workdir("tgasumfake")
        fake = tgalib.start_fake(fwd)
        self.addCleanup(fwd.cleanup)
        self.addCleanup(fake.stop)
        ref = Subject(fake).new_env()
        self.addCleanup(Subject.discard, None, ref)
        self.assertEqual(ref.run_once(), 0)
        commits = query(ref.ops, "SELECT seq FROM tga_sync_cursor")[0][0]
        env = Subject(fake).new_env()
        self.addCleanup(Subject.discard, None, env)
        # The commit before the last queues the completion mail (cursor "queued:<id>"); kill right after it.
        self.assertEqual(env.run_once(env={"RTOPACKS_CRASH_AT": "after_commit:%d" % (commits - 2)}), -9)
        cur = cursor(env.ops, "tga_sync")
        self.assertEqual(cur["cycle_phase"], "notify")
        self.assertTrue(cur["phase_cursor"].startswith("queued:"), cur)
        self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-3000:])
        rows = query(env.ops, "SELECT status, trigger, changes, summary FROM sync_runs ORDER BY started_at, run_id")
        self.assertEqual([(r[0], r[1]) for r in rows], [("stale", "manual"), ("complete", "resume")])
        self.assertIsNotNone(rows[0][3])
        self.assertEqual(rows[1][2:], rows[0][2:], "the completing run has the cycle's changes and summary")
        self.assertEqual(rows[1][2], query(ref.ops, "SELECT changes FROM sync_runs")[0][0])
        self.assertEqual(len(env.smtp.received()), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
