#!/usr/bin/python3
"""The fault matrix of tga-sync (issue 7, item 2): one fault at a time during a first cycle against the fake TGA
server, each with its documented outcome (docs/tga-sync.md, "Errors"): retried and completed, or failed with a
clear error in the run row.  After each case both databases pass PRAGMA integrity_check, and a run without the fault
resumes the cycle and ends with exactly the end state of an uninterrupted cycle (nothing committed was lost, nothing
half-written stayed).  Prints a table: case, outcome, time to outcome.

Faults that fail the run are armed where the cycle has already committed work (OrganisationService, after the whole
sync_training phase), so that the recovery shows the committed pages were kept.  Timeouts are short here
(low_speed_time 1 s, total_timeout 2 s, one HTTP retry, one step retry), so hangs and drips end in seconds.
"""

import sys
import unittest

import env as kitenv
import tgalib
from harness import cursor, refused_port, query, runs
from endstate import checkpoint_agrees, normalised, ops_state, without
from faultmatrix import print_table
from matrixkit import StorageCases

SYNC = "tga_sync"


class Env(kitenv.Env):
    """A fresh workdir and config for tga-sync against the fake (first cycle), with short timeouts."""

    binary = "tga-sync"
    sync_type = "tga_sync"

    def __init__(self, fake, smtp_port, state_dir=None, **keys):
        super().__init__("tgafm", smtp_port, state_dir)
        self.fake = fake
        pw = self.secret_file("tga-password", tgalib.PASSWORD)
        self.keys = {"username": "WebService.Read", "password_file": pw, "epoch": tgalib.EPOCH, "page_size": 50,
                     "overlap": "1h", "retries": 1, "backoff": "100ms", "backoff_max": "300ms",
                     "connect_timeout": "1s", "low_speed_time": "1s", "total_timeout": "2s", "parse_retries": 1,
                     "step_retries": 1, "step_backoff": "300ms", "step_backoff_max": "300ms"}
        self.keys.update(keys)
        self.write(fake.url)
        self.reference = None

    def write(self, url, smtp_port=None):
        self.configure(dict(self.keys, base_url=url + "/Deewr.Tga.Webservices"),
                       extra={"paths": {"busy_timeout": "500ms"}}, smtp_port=smtp_port)

    def state(self):
        return end_state(self)


def end_state(env):
    """rtopacks.db by content (the run that wrote a row and our times marked, tga_runs left out: a resumed cycle
    is several runs, and a complete case's recovery run is one more cycle), the checkpoint in agreement with the
    cursor, and the outcome of the faulted cycle: its final run's summary (minus its window, the fake's running
    clock)."""
    s = normalised(env.corpus, exclude_tables=("tga_runs", "sync_checkpoint"), mark=("run", "updated_at"))
    s["sync_checkpoint"] = checkpoint_agrees(env.ops, env.corpus, SYNC)
    o = ops_state(env.ops, SYNC, summary_fn=lambda x: without(x, "window"), first_cycle=True)
    s["ops.final_run"] = o["ops.final_run"]
    s["ops.runs_still_running"] = o["ops.runs_still_running"]
    s["ops.cycle_phase"] = (["cycle_phase"], [(cursor(env.ops, SYNC)["cycle_phase"],)])
    return s


def fault(op, kind, count=-1, service=None, **kw):
    def arm(env):
        if service:
            kw["service"] = service
        env.fake.fault(op, kind, count=count, **kw)
    return arm


class FaultMatrixTest(StorageCases, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tgalib.share_fake(cls, "tgafmfake")

        def the_register(ref):
            assert tgalib.compare(ref.corpus, tgalib.fake_dump(cls.fake)) == {}
        cls.reference_cycle(Env(cls.fake, cls.smtp.port), the_register)

    @classmethod
    def tearDownClass(cls):
        print(print_table(cls.rows, "fault matrix: tga-sync (TGA SOAP web services, mail, storage)"), file=sys.stderr)

    def assert_attempted(self, env, case):
        """The run failed where the fault was: the training phase is in, the cursor at sync_orgs."""
        r = runs(env.ops, SYNC)[-1]
        self.assertEqual(r["phase"], case.get("phase", "sync_orgs"), r)
        if case.get("phase", "sync_orgs") == "sync_orgs":
            self.assertEqual(query(env.corpus, "SELECT count(*) FROM tga_components")[0][0],
                             len(self.reference["tga_components"][1]), "the committed training phase is kept")

    def test_upstream_faults(self):
        org = "Organisation"
        self.run_cases([
            {"name": "HTTP 500 (once, GetDetails)", "arm": fault("GetDetails", "http500", 1), "expect": "complete"},
            {"name": "HTTP 503 (always, org GetDetails)", "arm": fault("GetDetails", "http503", service=org),
             "expect": "failed", "error": "HTTP 503", "check": self.assert_attempted},
            {"name": "429 with Retry-After: 1 (once, search)",
             "arm": fault("SearchByModifiedDate", "http429", 1, retry_after=1), "expect": "complete",
             "check": lambda env, case: self.assertIn("HTTP 429 with Retry-After", env.daemon.read_log())},
            {"name": "connection refused", "arm": lambda e: e.write("http://127.0.0.1:%d" % refused_port()),
             "disarm": lambda e: e.write(e.fake.url), "expect": "failed", "error": "Failed to connect",
             "check": lambda env, case: self.assert_attempted(env, dict(case, phase="init"))},
            {"name": "connection reset mid-body (once)", "arm": fault("GetDetails", "reset", 1),
             "expect": "complete"},
            {"name": "hung connection (once)", "arm": fault("GetDetails", "hang", 1), "expect": "complete",
             "check": lambda env, case: self.assertRegex(env.daemon.read_log(), r"GetDetails \S+: timed out")},
            {"name": "hung connection (always, org)", "arm": fault("GetDetails", "hang", service=org),
             "expect": "failed", "error": "timed out", "check": self.assert_attempted},
            {"name": "slow drip (always, org GetDetails)",
             "arm": fault("GetDetails", "drip", service=org, interval=0.5),
             "expect": "failed", "error": "timed out", "check": self.assert_attempted},
            {"name": "truncated body (once)", "arm": fault("GetDetails", "truncate", 1), "expect": "complete"},
            {"name": "truncated body (always, org)", "arm": fault("GetDetails", "truncate", service=org),
             "expect": "failed", "error": "truncated", "check": self.assert_attempted},
            {"name": "malformed XML (once)", "arm": fault("GetDetails", "malformed", 1), "expect": "complete",
             "check": lambda env, case: self.assertIn("requesting it again", env.daemon.read_log())},
            {"name": "malformed XML (always, org)", "arm": fault("GetDetails", "malformed", service=org),
             "expect": "failed", "error": "not well-formed XML", "check": self.assert_attempted},
            {"name": "HTML error page (always, org)", "arm": fault("GetDetails", "html", service=org),
             "expect": "failed", "error": "HTML", "check": self.assert_attempted},
            {"name": "unexpected redirect (always, org)", "arm": fault("GetDetails", "redirect", service=org),
             "expect": "failed", "error": "redirect", "check": self.assert_attempted},
            {"name": "auth failure (InvalidSecurity, org)", "arm": fault("GetDetails", "auth", 1, service=org),
             "expect": "failed", "error": "TGA rejected the credentials", "check": self.assert_attempted},
        ])

    # --- the mail and storage cases (matrixkit.StorageCases) -------------------------------------------------------
    sync_type = SYNC
    slow_phase = "sync_orgs"
    first_corpus_phase = "init"    # the run's first commit writes rtopacks.db (its checkpoint)
    smtp_down_keys = {"housekeeping_interval": "300ms"}

    def new_env(self, smtp_port, **keys):
        return Env(self.fake, smtp_port, **keys)

    def slow_down(self, env):
        env.fake.fault("GetDetails", "slow", count=-1, service="Organisation", delay=0.15)

    def assert_mails_sent(self, env):
        self.assertEqual(query(env.ops, "SELECT status, count(*) FROM mail_outbox GROUP BY status"), [("sent", 2)])


if __name__ == "__main__":
    unittest.main(verbosity=2)
