"""Crash torture: kill a daemon with SIGKILL at random points of a cycle, restart it each time, and check that the
end state is what an uninterrupted cycle gives (nothing lost, nothing twice).

A daemon's torture test gives a `Subject`:
  * new_env()      -> an object with .daemon (harness.Daemon) and whatever compare() needs, on a fresh workdir with
                      the same upstream data as the reference run;
  * reference()    -> the end state of an uninterrupted cycle (e.g. dump_db(...)) and how long that cycle took;
  * state(env)     -> the end state of a tortured env, comparable with the reference;
  * duplicates(env)-> how many things happened twice (completion mails per cycle, invoices per DocNumber...);
  * crash_points   -> names of crashpoint()s the daemon passes (RTOPACKS_CRASH_AT), with how often each is hit.
Optional:
  * fresh_env_per_cycle = True -> when a cycle ends before a kill falls, that env's end state and duplicates are
                      checked at once and the next kills go to a fresh env (a first cycle again), instead of to a
                      new cycle of the same env (for daemons whose second cycle of unchanged data has little to do);
                      Then `kills` counts the kills that landed inside a cycle (up to 4 * kills runs in all);
  * discard(env)   -> clean up such an env once it has been checked.
  * sync_type      -> (with fresh_env_per_cycle) the daemon's sync_type, so that a kill that fell after the cycle's
                      last commit is seen: see finish_ended_cycle().

  * split_commits  -> (for a daemon that writes rtopacks.db) how many cursor commits one cycle makes: each writes
                      ops.db and rtopacks.db, and split_commit:N kills between the two files' commits of the Nth.

Kills are drawn from a seeded random generator, so a failing seed replays.  TORTURE_AIM chooses where they fall:
  * mixed (the default): half at a random time inside the cycle (as a power cut or the OOM killer would), half at a
    random crash point (inside a step, before or after a commit, and between the two databases' commits);
  * split: every kill exactly between the two databases' commits (split_commit:N, N random), where a power cut
    leaves ops.db one commit ahead of rtopacks.db (issue 11).  scripts/reliability runs it with 200 kills.
A crash-point run that neither dies nor ends within per_run_timeout is a hang: a failure, not a kill.
"""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

from harness import cursor, query, slow_factor, wait_for


class TortureResult:
    def __init__(self):
        self.kills = 0           # SIGKILLs that landed while the daemon was working
        self.restarts_ok = 0     # restarts after a kill that came up and went on
        self.mismatches = []     # descriptions of end-state differences
        self.duplicates = 0
        self.cycles_completed_early = 0
        self.kills_after_end = 0  # SIGKILLs that fell after the cycle's last commit (see finish_ended_cycle)
        self.hangs = 0           # crash-point runs that neither died nor ended (each is also a mismatch)
        self.duplicate_logs = []  # the daemon logs of the envs where something happened twice
        self.seconds = 0.0
        self.aim = "mixed"

    def line(self, name):
        return ("%s: %s kills survived %d / %d, mismatches %d, duplicates %d, hangs %d, %.0fs%s"
                % (name, self.aim, self.restarts_ok if not self.mismatches else 0, self.kills, len(self.mismatches),
                   self.duplicates, self.hangs, self.seconds,
                   "; %d kill(s) fell after a cycle's last commit (restart delivered the mail)"
                   % self.kills_after_end if self.kills_after_end else "")
                + ("; duplicates in %s" % ", ".join(self.duplicate_logs) if self.duplicate_logs else ""))


def diff_states(ref, got):
    """Name what differs between two dump_db() results (table by table)."""
    out = []
    for table in sorted(set(ref) | set(got)):
        if table not in got:
            out.append("%s: missing" % table)
        elif table not in ref:
            out.append("%s: unexpected" % table)
        elif ref[table] != got[table]:
            rcols, rrows = ref[table]
            gcols, grows = got[table]
            missing = [r for r in rrows if r not in grows]
            extra = [r for r in grows if r not in rrows]
            out.append("%s: %d rows missing (e.g. %s), %d extra (e.g. %s)" % (table, len(missing), missing[:1],
                                                                              len(extra), extra[:1]))
    return out


def cycle_ended(subject, env):
    """After a kill: had the cycle already made its last commit (cursor at done, no run left running)?"""
    st = getattr(subject, "sync_type", None)
    if st is None or not os.path.exists(env.ops):
        return False
    try:
        c = cursor(env.ops, st)
        running = query(env.ops, "SELECT count(*) FROM sync_runs WHERE sync_type = ? AND status = 'running'", (st,))
    except sqlite3.OperationalError:
        return False    # killed during start-up, before its tables were made: the cycle has not begun
    return c is not None and c["cycle_phase"] == "done" and running[0][0] == 0


def finish_ended_cycle(subject, env):
    """A kill that fell after the cycle's last commit (a crash point at that commit, or a timed kill while the
    process was delivering the mail or exiting): restarting with --once would start the next cycle, which is not
    what is under test.  Restart the daemon as systemd would restart the service: it must deliver the mail the
    cycle queued (start-up delivery) and start nothing; then stop it."""
    d = env.daemon
    d.start()
    try:
        wait_for(lambda: query(env.ops, "SELECT count(*) FROM mail_outbox WHERE sync_type = ? AND status = 'pending'",
                               (subject.sync_type,))[0][0] == 0,
                 timeout=30 * slow_factor(), what="the restarted service to deliver the queued mail")
    finally:
        rc = d.stop()
    return rc


def aim():
    """TORTURE_AIM: mixed (default) or split."""
    a = os.environ.get("TORTURE_AIM", "mixed")
    if a not in ("mixed", "split"):
        raise ValueError("TORTURE_AIM must be mixed or split, not %r" % a)
    return a


def torture(subject, kills, seed, per_run_timeout=300):
    t_start = time.monotonic()
    rng = random.Random(seed)
    ref_state, ref_seconds = subject.reference()
    # Only a daemon with two databases has a split to aim at (qb-reconcile keeps the mixed aim); the reference run
    # counts its commits.
    aimed = aim() == "split" and getattr(subject, "split_commits", 0) > 0
    res_aim = "split" if aimed else "mixed"
    env = subject.new_env()
    d = env.daemon
    res = TortureResult()
    res.aim = res_aim
    # With fresh_env_per_cycle, `kills` counts kills that landed (runs that ended first do not count), up to
    # 4 * kills runs in all.
    landed = getattr(subject, "fresh_env_per_cycle", False)
    i = -1
    while (res.kills < kills and i + 1 < 4 * kills) if landed else i + 1 < kills:
        i += 1
        points = list(subject.crash_points)
        if getattr(subject, "split_commits", 0):
            points.append(("split_commit", subject.split_commits))
        if aimed:
            points = [("split_commit", subject.split_commits)]
        use_point = points and (aimed or rng.random() < 0.5)
        extra_env = {}
        if use_point:
            name, hits = rng.choice(points)
            extra_env["RTOPACKS_CRASH_AT"] = "%s:%d" % (name, rng.randint(1, max(1, hits)))
        log = open(d.log_path, "ab")
        e = dict(os.environ)
        e.update(d.env)
        e.update(extra_env)
        p = subprocess.Popen(d.command([], once=True), stdout=log, stderr=log, env=e)
        if use_point:
            try:
                rc = p.wait(per_run_timeout * slow_factor())
            except subprocess.TimeoutExpired:
                # A hang is a failure: the daemon neither reached the point nor finished its cycle.
                p.kill()
                p.wait()
                log.close()
                res.hangs += 1
                res.mismatches.append("run %d (%s) hung: neither killed nor finished within %ds (see %s)"
                                      % (i + 1, extra_env["RTOPACKS_CRASH_AT"], per_run_timeout * slow_factor(),
                                         d.log_path))
                continue
        else:
            time.sleep(rng.uniform(0.0, ref_seconds * slow_factor()))
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            rc = p.wait()
        log.close()
        if rc == -signal.SIGKILL and landed and cycle_ended(subject, env):
            res.kills_after_end += 1
            rc = finish_ended_cycle(subject, env)
            if rc != 0:
                res.mismatches.append("run %d: the service restarted after a kill at the cycle's end exited with %s"
                                      " (see %s)" % (i + 1, rc, d.log_path))
                continue
        elif rc == -signal.SIGKILL:
            res.kills += 1
            if res.kills % 25 == 0:
                # Long modes: show progress (and the figures so far) while they run.
                sys.stderr.write("  ... %d kills, %d mismatches, %d duplicates, %.0fs\n"
                                 % (res.kills, len(res.mismatches), res.duplicates, time.monotonic() - t_start))
                sys.stderr.flush()
            continue
        if rc in (0, 3):
            # The cycle finished before the kill fell: start the next kill on a new cycle of the same data.
            res.cycles_completed_early += 1
            if getattr(subject, "fresh_env_per_cycle", False):
                # ... or on a fresh env, once this one's end state has been checked.
                res.mismatches += ["cycle %d (see %s): %s" % (res.cycles_completed_early, d.log_path, m)
                                   for m in diff_states(ref_state, subject.state(env))]
                dup = subject.duplicates(env)
                res.duplicates += dup
                if dup:
                    res.duplicate_logs.append(d.log_path)
                if hasattr(subject, "discard") and not res.mismatches and not dup:
                    subject.discard(env)    # kept when something is wrong: the log names what happened
                env = subject.new_env()
                d = env.daemon
            continue
        res.mismatches.append("run %d exited with %s (see %s)" % (i + 1, rc, d.log_path))
    # Every kill was followed by a restart; the last one runs to the end.
    final = d.run_once(timeout=per_run_timeout)
    if final not in (0, 3):
        res.mismatches.append("the final run exited with %s (see %s)" % (final, d.log_path))
    else:
        res.restarts_ok = res.kills
    res.mismatches += diff_states(ref_state, subject.state(env))
    dup = subject.duplicates(env)
    res.duplicates += dup
    if dup:
        res.duplicate_logs.append(d.log_path)
    res.seconds = time.monotonic() - t_start
    return res, env
