"""Pieces the daemons' fault matrices share (on top of faultmatrix.run_case): running a list of cases on fresh envs
and collecting the printed table's rows, arming a storage fault at a given phase of the cycle, a small file system
to fill up, and another process holding ops.db's write lock."""

import os
import subprocess
import sys
import threading
import time

from harness import Workdir, cursor
from faultmatrix import run_case
from endstate import brief
from torture import diff_states

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


def hold_write_lock(db_path, seconds):
    """Another process that takes the database's write lock (BEGIN IMMEDIATE) for `seconds`; returns it."""
    return subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, time, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None);"
        " c.execute('BEGIN IMMEDIATE'); time.sleep(float(sys.argv[2])); c.execute('COMMIT')"), db_path, str(seconds)])


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
