"""Pieces the daemons' fault matrices share (on top of faultmatrix.run_case): running a list of cases on fresh envs
and collecting the printed table's rows, arming a storage fault at a given phase of the cycle, a small file system
to fill up, another process holding ops.db's write lock, and the mail and storage cases the corpus daemons'
matrices share (StorageCases)."""

import os
import subprocess
import sys
import threading
import time

from harness import SmtpSink, Workdir, cursor, refused_port, query, runs, wait_for
from faultmatrix import run_case
from endstate import brief
from crash import diff_states

SKIPPED = "skipped"


def run_cases(tc, cases, make_env, sync_type, rows, reference):
    """Each case on an env of its own (make_env(case)): faultmatrix.run_case, then case["after"](env, case) if
    given, and case["cleanup"](env) in any case; rows get (name, outcome, time, error), the outcome as
    case["label"] if a check set one (qb-reconcile's result status) and the error as case["shown_error"] if one
    did (where qb-reconcile records it: the invoice's or the connection's last error).  An end state that differs
    is named table by table."""
    for case in cases:
        with tc.subTest(case=case["name"]):
            env = make_env(case)
            env.reference = reference
            try:
                try:
                    outcome, elapsed, error = run_case(tc, case, env, sync_type)
                except AssertionError as e:
                    if "end state after recovery" in str(e):
                        sys.stderr.write("%s: %s\n" % (case["name"], diff_states(reference, env.state())))
                    raise
                rows.append((case["name"], case.get("label", outcome), elapsed,
                             brief(case.get("shown_error", error))))
                if case.get("after"):
                    case["after"](env, case)
            finally:
                if case.get("cleanup"):
                    case["cleanup"](env)
                # An env with processes of its own (qbenv.QBEnv: its fake) stops them in cleanup().
                (env.cleanup if hasattr(env, "cleanup") else env.wd.cleanup)()


def when_phase(ops, sync_type, phase, action, timeout=60):
    """Run action() in a thread as soon as the cycle's cursor names phase; returns the thread (join it)."""
    def watch():
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if cursor(ops, sync_type)["cycle_phase"] == phase:
                    action()
                    return
            except Exception:
                pass
            time.sleep(0.02)
    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def hold_write_lock(db_path, seconds, released_when=None):
    """Another process that takes the database's write lock (BEGIN IMMEDIATE) and holds it until released_when()
    is true (the positive signal that the daemon met the lock), at most `seconds` (exactly `seconds` without
    released_when); returns the process (wait() for it).  The lock is held when this returns."""
    p = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None);"
        " c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); sys.stdin.read(1); c.execute('COMMIT')"),
        db_path], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    p.stdout.readline()

    def release():
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (released_when and released_when()):
            time.sleep(0.02)
        p.stdin.close()
    threading.Thread(target=release, daemon=True).start()
    return p


def met_the_lock(env):
    """The daemon's log says a step's commit found the write lock taken (db.c's busy message on a step failure;
    housekeeping such as the outbox may meet the lock too, and does not count)."""
    return lambda: any("step failed" in ln and "holds the write lock" in ln
                       for ln in env.daemon.read_log().splitlines())


class SmallDisk:
    """A tmpfs of `size` mounted on a fresh directory (needs root; .error says why not otherwise)."""

    def __init__(self, size="24m"):
        self.mnt = Workdir("fm-disk")
        self.path = self.mnt.path
        self.filler = os.path.join(self.path, "filler")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", self.path], capture_output=True)
        self.error = None if r.returncode == 0 else (r.stderr.decode().strip() or "mount failed")
        if self.error:
            self.mnt.cleanup()

    def empty(self):
        for name in os.listdir(self.path):
            os.remove(os.path.join(self.path, name))

    def fill(self, leave=12 * 1024):
        """Fill it up, leaving `leave` bytes."""
        st = os.statvfs(self.path)
        with open(self.filler, "wb") as f:
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))

    def free(self):
        if os.path.exists(self.filler):
            os.remove(self.filler)

    def close(self):
        if self.error is None:
            subprocess.run(["umount", self.path])
            self.mnt.cleanup()


class StorageCases:
    """The mail and storage cases of the corpus daemons' fault matrices (tga-sync, cricos-sync), mixed into their
    unittest.TestCase.  The test class gives:
      * sync_type, rows (the printed table's rows), run_cases(cases, env_factory=None);
      * new_env(smtp_port, **keys): an env of its own on the class's fake;
      * slow_phase: a corpus phase that runs after another has committed; slow_down(env) arms a fault that slows
        its requests, so that a write lock or a full disk lands inside it;
      * first_corpus_phase: where a read-only rtopacks.db fails the run: the first phase, since the run's first
        commit already writes its checkpoint there (docs/ARCHITECTURE.md, "The two databases");
      * assert_attempted(env, case): the run failed in case["phase"] (slow_phase by default), with what came
        before it kept; assert_disk_full_failed(env, case) (assert_attempted by default);
      * assert_mails_sent(env): the outbox after the SMTP-down case's recovery; smtp_down_keys: config keys.
    It gives the class reference_cycle() (for setUpClass), a setUp that clears the fake's faults, and
    run_cases(cases, env_factory=None) (faults cleared after each case unless it says otherwise)."""

    smtp_down_keys = {}

    @staticmethod
    def clear_faults(env):
        env.fake.post("/_fake/fault/clear")

    @classmethod
    def reference_cycle(cls, ref, check=None):
        """One uninterrupted cycle on env `ref` (the table's first row: its time), check(ref) if given, its end
        state as cls.reference; ref's workdir is removed."""
        t0 = time.monotonic()
        assert ref.daemon.run_once() == 0, ref.daemon.read_log()[-3000:]
        cls.rows = [("(uninterrupted cycle)", "complete", time.monotonic() - t0, "")]
        if check:
            check(ref)
        cls.reference = ref.state()
        ref.wd.cleanup()

    def setUp(self):
        self.clear_faults(self)

    def run_cases(self, cases, env_factory=None):
        for case in cases:
            case.setdefault("disarm", self.clear_faults)
            case.setdefault("cleanup", self.clear_faults)
        run_cases(self, cases, env_factory or (lambda case: self.new_env(self.smtp.port, **case.get("keys", {}))),
                  self.sync_type, self.rows, self.reference)

    def assert_disk_full_failed(self, env, case):
        self.assert_attempted(env, case)

    def test_mail_server_down(self):
        # A mail server of its own: envs started in the same second have the same cycle id, so the same mail keys,
        # and in the shared sink another case's mail would look like this one's sent twice.
        sink = SmtpSink()
        self.addCleanup(sink.stop)

        def check(env, case):
            r = runs(env.ops, self.sync_type)[-1]
            self.assertEqual(query(env.ops, "SELECT status FROM sync_steps WHERE run_id = ? AND step = 'notify'",
                                   (r["run_id"],)), [("failed",)])
            self.assertEqual(query(env.ops, "SELECT status FROM mail_outbox"), [("pending",)])

        def delivered(env, case):
            # The daemon's housekeeping sends the queued mail once the server is back (smtp.queue_retry, 2 s here):
            # nothing lost, nothing twice.
            d = env.daemon.start()
            try:
                wait_for(lambda: query(env.ops, "SELECT count(*) FROM mail_outbox WHERE status = 'pending'")
                         == [(0,)], timeout=30, what="the queued mail to be sent")
            finally:
                self.assertEqual(d.stop(), 0)
            self.assert_mails_sent(env)
            # Every queued mail reached the server exactly once, and nothing else did.
            # (The daemon has stopped: every SMTP transaction it began has ended.)
            queued = sorted(k for (k,) in query(env.ops, "SELECT mail_key FROM mail_outbox"))
            self.assertEqual(sorted(str(m["msg"]["X-RTOpacks-Mail-Key"]) for m in sink.received()), queued)
        self.run_cases([{"name": "SMTP server down", "keys": dict(self.smtp_down_keys),
                         "arm": lambda e: e.write(e.fake.url, refused_port()),
                         "disarm": lambda e: e.write(e.fake.url), "expect": "complete", "check": check,
                         "after": delivered}],
                       env_factory=lambda case: self.new_env(sink.port, **case.get("keys", {})))

    def test_ops_db_locked_by_another_writer(self):
        holders = []

        def lock(env):
            # In slow_phase (slowed down), another process's transaction holds ops.db's write lock until a commit
            # of the daemon's has waited busy_timeout (500 ms) for it and failed (its log says so): then the step
            # retry must get through.
            self.slow_down(env)
            holders.append(when_phase(env.ops, self.sync_type, self.slow_phase,
                                      lambda: holders.append(hold_write_lock(env.ops, 10, met_the_lock(env)))))

        def unlock(env):
            holders[0].join()
            self.assertEqual(len(holders), 2, "the lock was taken during %s" % self.slow_phase)
            holders[1].wait()
            self.clear_faults(env)

        def check(env, case):
            self.assertGreater(query(env.ops, "SELECT max(attempts) FROM sync_steps")[0][0], 0,
                               "the locked commit was retried")
        self.run_cases([{"name": "ops.db locked by another writer", "arm": lock, "disarm": unlock,
                         "expect": "complete", "check": check}])

    def test_corpus_read_only(self):
        def freeze(env):
            env.warm()
            r = subprocess.run(["chattr", "+i", env.corpus], capture_output=True)
            if r.returncode != 0:
                self.rows.append(("rtopacks.db read-only", SKIPPED, 0.0, "chattr +i: %s" % r.stderr.decode()))
                self.skipTest("chattr +i is not available here: %s" % r.stderr.decode().strip())

        def thaw(env):
            subprocess.run(["chattr", "-i", env.corpus])
        self.run_cases([{"name": "rtopacks.db read-only", "arm": freeze, "disarm": thaw, "expect": "failed",
                         "error": "rtopacks.db is read-only",
                         "check": lambda env, case: self.assert_attempted(env, dict(case,
                                                                                    phase=self.first_corpus_phase))
                         }])

    def test_disk_full(self):
        disk = SmallDisk("24m")
        if disk.error:
            self.rows.append(("disk full", SKIPPED, 0.0, "cannot mount a tmpfs here: %s" % disk.error))
            self.skipTest("cannot mount a small tmpfs here: %s" % disk.error)
        self.addCleanup(disk.close)
        fillers = []

        def fill(env):
            # When slow_phase starts (slowed down), the file system fills up, leaving 12 KiB: the next commits
            # fail.  The phases before it are in by then.
            self.slow_down(env)
            fillers.append(when_phase(env.ops, self.sync_type, self.slow_phase, disk.fill))

        def free(env):
            fillers[0].join()
            disk.free()
            self.clear_faults(env)

        def factory(case):
            disk.empty()
            return self.new_env(self.smtp.port, state_dir=disk.path)
        self.run_cases([{"name": "disk full (a 24 MB filesystem)", "arm": fill, "disarm": free,
                         "expect": "failed", "error": "full", "check": self.assert_disk_full_failed}],
                       env_factory=factory)
