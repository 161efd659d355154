#!/usr/bin/python3
"""The fault matrix of cricos-sync (issue 7, item 2): one fault at a time during a first edition's cycle against the
fake data.gov.au (CKAN), each with its documented outcome (docs/cricos-sync.md, "Failures at a glance"): retried and
completed, or failed with a clear error in the run row.  After each case both databases pass PRAGMA
integrity_check, and a run without the fault resumes the cycle and ends with exactly the end state of an
uninterrupted cycle (nothing committed was lost, nothing half-written stayed).  Prints a table: case, outcome, time
to outcome.

Faults that fail the run are armed on the Courses resource after its first page (`skip`), so that the institutions
and a page of courses are committed when it fails and the recovery shows they were kept.  Timeouts are short here
(low_speed_time 1 s, total_timeout 2 s, one HTTP retry, one step retry), so hangs and drips end in seconds.
"""

import sys
import unittest

import cricoslib
import env as kitenv
from harness import SmtpSink, cursor, refused_port, query, runs
from endstate import checkpoint_agrees, normalised, ops_state
from faultmatrix import print_table
from matrixkit import StorageCases

SYNC = "cricos_sync"
COURSES = "48cacf69-2082-415e-9595-f17d0c3a4af0"
PAGE = 100
# Row stamps naming cycles, and our times: another cycle id and other times in every env (marked, NULL kept).
CYCLE_COLUMNS = ("added_cycle", "changed_cycle", "seen_cycle", "removed_cycle", "first_seen_at", "updated_at",
                 "deleted_at", "synced_at", "link_cycle")


class Env(kitenv.Env):
    """A fresh workdir and config for cricos-sync against the fake (first edition), with short timeouts."""

    binary = "cricos-sync"
    sync_type = SYNC

    def __init__(self, fake, smtp_port, state_dir=None, **keys):
        super().__init__("cricosfm", smtp_port, state_dir)
        self.fake = fake
        self.keys = {"page_size": PAGE, "retries": 1, "backoff": "100ms", "backoff_max": "300ms",
                     "connect_timeout": "1s", "low_speed_time": "1s", "total_timeout": "2s", "step_retries": 1,
                     "step_backoff": "300ms", "step_backoff_max": "300ms", "housekeeping_interval": "200ms"}
        self.keys.update(keys)
        self.write(fake.url)
        self.reference = None

    def write(self, url, smtp_port=None):
        self.configure(dict(self.keys, base_url=url + "/data"), extra={"paths": {"busy_timeout": "500ms"}},
                       smtp_port=smtp_port)

    def state(self):
        """rtopacks.db by content (cycle stamps and times marked; the editions table is one row per cycle that
        synced a resource, compared without its cycle id and time), the checkpoint in agreement with the cursor, and
        the outcome of the faulted cycle: its final run's status and summary (a complete case's recovery run is
        one more cycle: "no new edition")."""
        s = normalised(self.corpus, exclude_tables=("sync_checkpoint",),
                       mark=CYCLE_COLUMNS + ("cricos_editions.cycle_id",))
        s["sync_checkpoint"] = checkpoint_agrees(self.ops, self.corpus, SYNC)
        o = ops_state(self.ops, SYNC, first_cycle=True)
        s["ops.final_run"] = o["ops.final_run"]
        s["ops.runs_still_running"] = o["ops.runs_still_running"]
        s["ops.cycle_phase"] = (["cycle_phase"], [(cursor(self.ops, SYNC)["cycle_phase"],)])
        return s


def fault(kind, count=-1, courses=False, **kw):
    """Arm a fault on datastore_search (on the Courses resource after its first page, with courses=True)."""
    def arm(env):
        if courses:
            kw.update(resource_id=COURSES, skip=1)
        env.fake.fault("datastore_search", kind, count=count, **kw)
    return arm


class FaultMatrixTest(StorageCases, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake = cricoslib.start_fake()
        cls.smtp = SmtpSink()
        cls.reference_cycle(Env(cls.fake, cls.smtp.port))

    @classmethod
    def tearDownClass(cls):
        print(print_table(cls.rows, "fault matrix: cricos-sync (data.gov.au CKAN, mail, storage)"), file=sys.stderr)
        cricoslib.stop_fake(cls.fake)
        cls.smtp.stop()

    def assert_attempted(self, env, case):
        """The run failed where the fault was, with what came before it committed."""
        phase = case.get("phase", "sync_courses")
        r = runs(env.ops, SYNC)[-1]
        self.assertEqual(r["phase"], phase, r)
        if phase == "sync_courses":
            self.assertEqual(cursor(env.ops, SYNC)["phase_cursor"], "offset=%d" % PAGE)
            self.assertEqual(query(env.corpus, "SELECT count(*) FROM cricos_courses")[0][0], PAGE,
                             "the first page of courses is kept, nothing of the failed one")
            self.assertGreater(query(env.corpus, "SELECT count(*) FROM cricos_institutions")[0][0], 0)

    def test_upstream_faults(self):
        self.run_cases([
            {"name": "HTTP 500 (once, nginx page)", "arm": fault("http500", 1), "expect": "complete"},
            {"name": "HTTP 503 (always, courses)", "arm": fault("http503", courses=True), "expect": "failed",
             "error": "HTTP 503", "check": self.assert_attempted},
            {"name": "429 with Retry-After: 1 (once)", "arm": fault("http429", 1, retry_after=1),
             "expect": "complete"},
            {"name": "connection refused", "arm": lambda e: e.write("http://127.0.0.1:%d" % refused_port()),
             "disarm": lambda e: e.write(e.fake.url), "expect": "failed", "error": "Failed to connect",
             "check": lambda env, case: self.assert_attempted(env, dict(case, phase="init"))},
            {"name": "connection reset mid-body (once)", "arm": fault("reset", 1), "expect": "complete"},
            {"name": "hung connection (once)", "arm": fault("hang", 1, hold=60), "expect": "complete",
             "check": lambda env, case: self.assertIn("timed out", env.daemon.read_log())},
            {"name": "hung connection (always, courses)", "arm": fault("hang", courses=True, hold=60),
             "expect": "failed", "error": "timed out", "check": self.assert_attempted},
            {"name": "slow drip (always, courses)", "arm": fault("drip", courses=True, interval=0.5),
             "expect": "failed", "error": "timed out", "check": self.assert_attempted},
            {"name": "truncated body (once)", "arm": fault("truncate", 1), "expect": "complete"},
            {"name": "truncated body (always, courses)", "arm": fault("truncate", courses=True),
             "expect": "failed", "error": "offset 100", "check": self.assert_attempted},
            {"name": "malformed JSON (once)", "arm": fault("malformed", 1), "expect": "complete",
             "check": lambda env, case: self.assertIn("malformed JSON", env.daemon.read_log())},
            {"name": "malformed JSON (always, courses)", "arm": fault("malformed", courses=True),
             "expect": "failed", "error": "malformed JSON at byte", "check": self.assert_attempted},
            {"name": "HTML error page (always, courses)", "arm": fault("html", courses=True), "expect": "failed",
             "error": "HTML", "check": self.assert_attempted},
            {"name": "unexpected redirect (always, courses)", "arm": fault("redirect", courses=True),
             "expect": "failed", "error": "redirect", "check": self.assert_attempted},
            {"name": "auth failure (403 Authorization Error)", "arm": fault("ckan_error", 1, courses=True,
                                                                            variant="auth"),
             "expect": "failed", "error": "HTTP 403 Authorization Error", "check": self.assert_attempted},
        ])

    # --- the mail and storage cases (matrixkit.StorageCases) -------------------------------------------------------
    sync_type = SYNC
    slow_phase = "sync_courses"
    first_corpus_phase = "init"    # the run's first commit writes rtopacks.db (its checkpoint)

    def new_env(self, smtp_port, **keys):
        return Env(self.fake, smtp_port, **keys)

    def slow_down(self, env):
        env.fake.fault("datastore_search", "slow", count=-1, delay=0.3)

    def assert_mails_sent(self, env):
        # Both cycles' completion mails (the daemon may add the edition-late alert: the fake's edition is months
        # older than this machine's clock).
        self.assertEqual(query(env.ops, "SELECT status, count(*) FROM mail_outbox WHERE mail_key LIKE"
                                        " 'cricos_sync/complete/%' GROUP BY status"), [("sent", 2)])
        self.assertEqual(query(env.ops, "SELECT count(*) FROM mail_outbox WHERE status <> 'sent'"), [(0,)])

    def assert_disk_full_failed(self, env, case):
        self.assertEqual(runs(env.ops, SYNC)[-1]["phase"], "sync_courses")
        self.assertGreater(query(env.corpus, "SELECT count(*) FROM cricos_institutions")[0][0], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
