"""Crash points on both sides of the two databases' commits (issue 11), shared by the daemons' test_split_commit.py.

A cursor commit of tga-sync or cricos-sync writes ops.db and the attached rtopacks.db; in WAL mode ops.db commits
first.  The engine offers three crash points per commit, named by the commit's label (the phase, or "trigger" for
the run's start) and counted per label:
  before_commit@<label>:N   nothing of the Nth commit is written
  split_commit@<label>:N    ops.db has committed, rtopacks.db has not (common/splitcrash.h: the real mechanism)
  after_commit@<label>:N    both have.
A case runs the daemon's cycle(s) with one such point set (the process dies with SIGKILL), then restarts the daemon
as systemd would (as a service: it resumes an unfinished cycle by itself and delivers queued mail), waits for the
cycle to be done, and asserts that the end state equals an uninterrupted run of the same cycles: every table by
content (the daemon's torture state), one complete run per cycle, the killed run stale with the next run's
resumed_from naming it (unless the kill fell after the run's last commit), the completion mail exactly once per
cycle.
"""

import re
import signal

from harness import cursor, query, slow_factor, wait_for
from torture import diff_states


def commit_counts(log):
    """Cursor commits per label in a daemon's -v log ("debug: cursor commit <label>")."""
    counts = {}
    for label in re.findall(r"debug: cursor commit (\S+)", log):
        counts[label] = counts.get(label, 0) + 1
    return counts


def _idle(ops, sync_type):
    c = cursor(ops, sync_type)
    busy = query(ops, "SELECT (SELECT count(*) FROM sync_runs WHERE sync_type = ?1 AND status = 'running')"
                      " + (SELECT count(*) FROM mail_outbox WHERE sync_type = ?1 AND status = 'pending')",
                 (sync_type,))[0][0]
    return c is not None and c["cycle_phase"] == "done" and busy == 0


def restart_as_systemd(env, sync_type, timeout=120):
    """Start the daemon as a service, wait until its cycle is done and no mail is pending, stop it: its exit code."""
    d = env.daemon
    d.start()
    try:
        wait_for(lambda: _idle(env.ops, sync_type), timeout=timeout * slow_factor(),
                 what="the restarted %s to finish the cycle and send its mail" % sync_type)
    finally:
        rc = d.stop()
    return rc


def check_case(tc, env, smtp, sync_type, point, ref_state, state_fn, cycles, run_cycle):
    """Run `cycles` cycles with run_cycle(env, i, crash_env) (the last one with the crash point), restart, check."""
    for i in range(cycles - 1):
        tc.assertEqual(run_cycle(env, i, None), 0, env.daemon.read_log()[-3000:])
    rc = run_cycle(env, cycles - 1, {"RTOPACKS_CRASH_AT": point})
    tc.assertEqual(rc, -signal.SIGKILL, "crash point %s was not reached (exit %s):\n%s"
                   % (point, rc, env.daemon.read_log()[-3000:]))
    died = [r[0] for r in query(env.ops, "SELECT run_id FROM sync_runs WHERE sync_type = ? AND status = 'running'",
                                (sync_type,))]
    rc = restart_as_systemd(env, sync_type)
    tc.assertEqual(rc, 0, env.daemon.read_log()[-3000:])
    tc.assertEqual(diff_states(ref_state, state_fn(env)), [], "after %s (log %s)" % (point, env.daemon.log_path))

    rows = query(env.ops, "SELECT run_id, cycle_id, status, resumed_from FROM sync_runs WHERE sync_type = ?"
                          " ORDER BY started_at, run_id", (sync_type,))
    cycle_ids = sorted({r[1] for r in rows})
    tc.assertEqual(len(cycle_ids), cycles, rows)
    for cid in cycle_ids:
        statuses = sorted(r[2] for r in rows if r[1] == cid)
        tc.assertEqual(statuses.count("complete") + statuses.count("partial"), 1, (cid, rows))
        tc.assertEqual(set(statuses) - {"complete", "partial", "stale"}, set(), (cid, rows))
    # The run the kill fell in: stale, and the run that resumed the cycle names it (unless it had committed the end).
    tc.assertLessEqual(len(died), 1, rows)
    for run_id in died:
        status = [r[2] for r in rows if r[0] == run_id][0]
        tc.assertEqual(status, "stale", rows)
        tc.assertEqual([r[0] for r in rows if r[3] == run_id], [rows[-1][0]], rows)
    # The completion mail, exactly once per cycle (the outbox has nothing pending: _idle).
    keys = [str(m["msg"]["X-RTOpacks-Mail-Key"]) for m in smtp.received()]
    for cid in cycle_ids:
        tc.assertEqual(keys.count("%s/complete/%s" % (sync_type, cid)), 1, (cid, keys))
