#!/usr/bin/python3
"""The fault matrix of the engine, through the test daemon: every upstream, mail and storage fault the daemons share,
one at a time, each with its documented outcome (retried and completed, or failed with a clear error), databases
that pass integrity_check, and nothing committed lost.  Prints a table: case, outcome, time to outcome.
The daemons' own matrices (SOAP, CKAN, QuickBooks faults) live with their tests and use the same harness."""

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import unittest

import env as kitenv
from harness import Server, SmtpSink, Workdir, dump_db, refused_port, query, wait_for, REPO
from faultmatrix import print_table, run_case
from crash import diff_states

ITEMS_SERVER = os.path.join(REPO, "tests", "kit", "items_server.py")
VOLATILE = ("run_id", "created_cycle", "changed_cycle")


class Env(kitenv.Env):
    binary = "test-sync"
    sync_type = "test_sync"

    def __init__(self, items, smtp_port, state_dir=None):
        super().__init__("fm", smtp_port, state_dir)
        self.items = items
        self.write(items.url)
        self.reference = None

    def write(self, url, smtp_port=None):
        self.configure({"url": url, "page_size": 10, "low_speed_time": "1s", "total_timeout": "2s", "retries": 1,
                        "backoff": "100ms", "step_retries": 2, "step_backoff": "300ms"},
                       extra={"paths": {"busy_timeout": "500ms"}}, smtp_port=smtp_port)

    def state(self):
        return dump_db(self.corpus, exclude_tables=("sync_checkpoint",), exclude_columns=VOLATILE)


def fault(op, kind, count=-1, **kw):
    return lambda env: env.items.fault(op, kind, count=count, **kw)


def clear(env):
    env.items.post("/_fake/fault/clear")


class FaultMatrixTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.items = Server(ITEMS_SERVER, "--items", "40")
        cls.smtp = SmtpSink()
        ref = Env(cls.items, cls.smtp.port)
        assert ref.daemon.run_once() == 0
        cls.reference = ref.state()
        ref.wd.cleanup()
        cls.rows = []

    @classmethod
    def tearDownClass(cls):
        print(print_table(cls.rows, "fault matrix: test-sync (the engine's shared faults)"), file=sys.stderr)
        cls.items.stop()
        cls.smtp.stop()

    def run_cases(self, cases, env_factory=None):
        for case in cases:
            with self.subTest(case=case["name"]):
                env = (env_factory or (lambda: Env(self.items, self.smtp.port)))()
                env.reference = self.reference
                case.setdefault("disarm", clear)
                try:
                    try:
                        outcome, elapsed, error = run_case(self, case, env, "test_sync")
                    except AssertionError as e:
                        if "end state after recovery" in str(e):
                            sys.stderr.write("%s: %s\n" % (case["name"], diff_states(self.reference, env.state())))
                        raise
                    self.rows.append((case["name"], outcome, elapsed, error))
                finally:
                    clear(env)
                    env.wd.cleanup()

    def test_upstream_faults(self):
        # attempts: the failed step attempts the faulted run records (retries = 1 in HTTP, step_retries = 2): a
        # fault that fires once is absorbed by the HTTP retry (0); a lasting one fails the phase 1 + 2 times (3).
        self.run_cases([
            {"name": "HTTP 500 (once)", "arm": fault("items", "http500", 1), "expect": "complete", "attempts": 0},
            {"name": "HTTP 503 (always)", "arm": fault("items", "http503"), "expect": "failed", "error": "HTTP 503",
             "attempts": 3},
            {"name": "429 with Retry-After: 1", "arm": fault("items", "http429", 1, retry_after=1),
             "expect": "complete", "attempts": 0},
            {"name": "connection refused", "arm": lambda e: e.write("http://127.0.0.1:%d" % refused_port()),
             "disarm": lambda e: e.write(e.items.url), "expect": "failed", "error": "Failed to connect"},
            {"name": "connection reset mid-body", "arm": fault("items", "reset", 1), "expect": "complete",
             "attempts": 0},
            {"name": "hung connection", "arm": fault("items", "hang", hold=60), "expect": "failed",
             "error": "timed out"},
            {"name": "slow drip", "arm": fault("items", "drip", interval=0.6), "expect": "failed",
             "error": "timed out"},
            {"name": "truncated body", "arm": fault("items", "truncate"), "expect": "failed", "error": "truncated"},
            {"name": "malformed JSON", "arm": fault("items", "malformed"), "expect": "failed",
             "error": "is not {\"items\""},
            {"name": "HTML error page", "arm": fault("items", "html"), "expect": "failed", "error": "HTML page"},
            {"name": "unexpected redirect", "arm": fault("items", "redirect"), "expect": "failed",
             "error": "unexpected redirect"},
        ])

    def test_mail_server_down(self):
        def check(env, case):
            self.assertEqual(query(env.ops, "SELECT status FROM sync_steps WHERE step = 'notify'"), [("failed",)])
            self.assertEqual(query(env.ops, "SELECT status FROM mail_outbox"), [("pending",)])
        self.run_cases([{"name": "SMTP server down", "arm": lambda e: e.write(e.items.url, refused_port()),
                         "disarm": lambda e: e.write(e.items.url), "expect": "complete", "check": check}])

    def test_ops_db_locked_by_another_writer(self):
        holders = []

        def lock(env):
            # Mid-cycle (pages are slow), another process's transaction holds ops.db's write lock for 1.5 s: longer
            # than busy_timeout, shorter than the step retries.
            Env.warm(env)
            env.items.fault("items", "slow", count=-1, delay=0.3)
            p = subprocess.Popen([sys.executable, "-c", (
                "import sqlite3, time, sys; time.sleep(0.5); c = sqlite3.connect(sys.argv[1], isolation_level=None);"
                " c.execute('BEGIN IMMEDIATE'); time.sleep(1.5); c.execute('COMMIT')"), env.ops])
            holders.append(p)

        def unlock(env):
            for p in holders:
                p.wait()
            clear(env)

        def check(env, case):
            attempts = query(env.ops, "SELECT max(attempts) FROM sync_steps")[0][0]
            self.assertGreater(attempts, 0, "the locked commit was retried")
        self.run_cases([{"name": "ops.db locked by another writer", "arm": lock, "disarm": unlock,
                         "expect": "complete", "check": check}])

    def test_corpus_read_only(self):
        def freeze(env):
            Env.warm(env)
            r = subprocess.run(["chattr", "+i", env.corpus], capture_output=True)
            if r.returncode != 0:
                self.skipTest("chattr +i is not available here: %s" % r.stderr.decode().strip())

        def thaw(env):
            subprocess.run(["chattr", "-i", env.corpus])
        self.run_cases([{"name": "rtopacks.db read-only", "arm": freeze, "disarm": thaw, "expect": "failed",
                         "error": "readonly database"}])

    # Filled while the cycle's first corpus commit is being written: ops.db may keep the step while rtopacks.db
    # loses it (issue 17 found it, issue 11's checkpoint on every commit repairs it); nothing may be lost.
    def test_disk_full(self):
        mnt = Workdir("fm-disk")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt.path], capture_output=True)
        if r.returncode != 0:
            mnt.cleanup()
            self.skipTest("cannot mount a small tmpfs here: %s" % r.stderr.decode().strip())
        filler = os.path.join(mnt.path, "filler")

        def fill(env):
            # Mid-cycle (pages are slow) the file system fills up, leaving a few KiB: the next commits fail.
            Env.warm(env)
            env.items.fault("items", "slow", count=-1, delay=0.3)

            def later():
                # Once the first slowed page is being served (the fault fired): mid-cycle for sure.
                wait_for(lambda: any(f["fired"] for f in env.items.faults()), timeout=60,
                         what="the first slowed page")
                st = os.statvfs(mnt.path)
                with open(filler, "wb") as f:
                    f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - 12 * 1024))
            threading.Thread(target=later, daemon=True).start()

        def free(env):
            if os.path.exists(filler):
                os.remove(filler)
            clear(env)

        try:
            def factory():
                for name in os.listdir(mnt.path):
                    os.remove(os.path.join(mnt.path, name))
                return Env(self.items, self.smtp.port, state_dir=mnt.path)
            self.run_cases([{"name": "disk full (a 2 MB filesystem)", "arm": fill, "disarm": free,
                             "expect": "failed", "error": "full"}], env_factory=factory)
        finally:
            subprocess.run(["umount", mnt.path])
            mnt.cleanup()


def warm(env):
    """Create the databases (one cycle on no data) so a fault can be armed on existing files."""
    env.items.post("/_fake/fault", {"op": "meta", "kind": "http503", "count": -1})
    env.daemon.run_once()
    env.items.post("/_fake/fault/clear")
    con = sqlite3.connect(env.ops)
    con.execute("DELETE FROM sync_steps")
    con.execute("DELETE FROM sync_runs")
    con.execute("DELETE FROM mail_outbox")
    con.execute("UPDATE test_sync_cursor SET cycle_phase = 'done', phase_cursor = ''")
    con.commit()
    con.close()


Env.warm = staticmethod(warm)

if __name__ == "__main__":
    unittest.main(verbosity=2)
