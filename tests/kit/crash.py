"""The crash kit: everything the daemons' crash tests share, so that a daemon's torture, split-commit and
crash-and-resume tests are its cases, not a harness of their own.

  * crash_at() / assert_resumed(): one kill at a named crash point (RTOPACKS_CRASH_AT), then the checks that a
    restart resumed the cycle (a stale run, a resuming run, the phase it started with, one completion mail).
  * kill_at_random_moments(): SIGKILL a triggered service at random moments of its sync phases, restart it, and
    compare with a reference (the daemons' test_crash "random moments" cases).
  * torture() with a Subject (MailSubject gives the usual parts): random kills over whole cycles, below;
    run_torture() runs it as a test does (TORTURE_KILLS, TORTURE_SEED) and asserts the outcome.
  * check_case(): the split-commit cases (issue 11), below.

torture(): kill a daemon with SIGKILL at random points of a cycle, restart it each time, and check that the
end state is what an uninterrupted cycle gives (nothing lost, nothing twice).

A daemon's torture test gives a `Subject`:
  * new_env()      -> an object with .daemon (harness.Daemon) and whatever compare() needs, on a fresh workdir with
                      the same upstream data as the reference run;
  * reference()    -> the end state of an uninterrupted cycle (e.g. dump_db(...)) and how long that cycle took;
  * state(env)     -> the end state of a tortured env, comparable with the reference;
  * duplicates(env)-> how many things happened twice (completion mails per cycle, invoices per DocNumber...);
  * crash_points   -> names of crashpoint()s the daemon passes (RTOPACKS_CRASH_AT), with how often each is hit
                      (engine_points(commits) are the engine's own).
MailSubject is such a Subject for a daemon whose envs each have a mail sink of their own: the daemon's test gives
make_env(smtp), state(env) and reference().
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
import re
import signal
import sqlite3
import subprocess
import sys
import time

from endstate import short
from harness import SmtpSink, ctl, cursor, query, runs, settled_mails, slow_factor, wait_for


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


def run_torture(tc, subject, name, default_kills=6):
    """torture() as a daemon's test runs it: TORTURE_KILLS kills (default_kills), seed TORTURE_SEED (the time), the
    result's line printed, and asserted: no end state differs, nothing happened twice, every kill landed in a
    cycle.  Returns (the result, the last env: its cycle ended)."""
    kills = int(os.environ.get("TORTURE_KILLS", str(default_kills)))
    seed = int(os.environ.get("TORTURE_SEED", str(int(time.time()))))
    res, env = torture(subject, kills, seed)
    print("\n" + res.line("%s (seed %d)" % (name, seed)), file=sys.stderr)
    sys.stderr.write("(%d cycles ended between kills and were checked on their own)\n" % res.cycles_completed_early)
    tc.assertEqual(short(res.mismatches), [], "seed %d" % seed)
    tc.assertEqual(res.duplicates, 0, "seed %d" % seed)
    tc.assertEqual(res.kills, kills, "seed %d" % seed)
    return res, env


# --- split commits -------------------------------------------------------------------------------------------------
# Crash points on both sides of the two databases' commits (issue 11), shared by the daemons' test_split_commit.py.
#
# A cursor commit of tga-sync or cricos-sync writes ops.db and the attached rtopacks.db; in WAL mode ops.db commits
# first.  The engine offers three crash points per commit, named by the commit's label (the phase, or "trigger" for
# the run's start) and counted per label:
#   before_commit@<label>:N   nothing of the Nth commit is written
#   split_commit@<label>:N    ops.db has committed, rtopacks.db has not (common/splitcrash.h: the real mechanism)
#   after_commit@<label>:N    both have.
# A case runs the daemon's cycle(s) with one such point set (the process dies with SIGKILL), then restarts the daemon
# as systemd would (as a service: it resumes an unfinished cycle by itself and delivers queued mail), waits for the
# cycle to be done, and asserts that the end state equals an uninterrupted run of the same cycles: every table by
# content (the daemon's torture state), one complete run per cycle, the killed run stale with the next run's
# resumed_from naming it (unless the kill fell after the run's last commit), the completion mail exactly once per
# cycle.


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


class SplitCommitCases:
    """The split-commit cases' set-up, mixed into a daemon's unittest.TestCase.  The class gives sync_type,
    make_env(smtp) (a classmethod: an env on the class's fake with that mail sink) and, in its setUpClass, state_fn
    (the torture's end state) before it calls references(); run_cycle(env, i, crash_env, *args) runs cycle i
    (default: env.run_once).  case(point, cycles) is one case on a fresh env and mail sink."""

    sync_type = None

    @classmethod
    def run_cycle(cls, env, i, crash, *args):
        return env.run_once(*args, env=crash)

    @classmethod
    def references(cls):
        """The end states of one and of two uninterrupted cycles (cls.refs[1], [2]) and the commits per label of
        one cycle (cls.counts)."""
        cls.refs = {}
        for cycles in (1, 2):
            smtp = SmtpSink()
            env = cls.make_env(smtp)
            for i in range(cycles):
                assert cls.run_cycle(env, i, None, "-v") == 0, env.daemon.read_log()[-3000:]
            if cycles == 1:
                cls.counts = commit_counts(env.daemon.read_log())
            cls.refs[cycles] = cls.state_fn(env)
            smtp.stop()
            env.cleanup()
        sys.stderr.write("commits of one cycle: %s\n" % cls.counts)

    def case(self, point, cycles=1):
        smtp = SmtpSink()
        env = self.make_env(smtp)
        try:
            check_case(self, env, smtp, self.sync_type, point, self.refs[cycles], self.state_fn, cycles,
                       self.run_cycle)
        finally:
            smtp.stop()
        env.cleanup()


# --- the usual parts of a Subject, crash points, one kill and its resume ---------------------------------------------

def engine_points(commits):
    """The engine's own crash points and how often one cycle of `commits` cursor commits passes each."""
    return [("step_begin", commits), ("before_commit", commits), ("after_commit", commits)]


class MailSubject:
    """A torture() Subject whose envs each have a mail sink of their own (run ids are per second, so two envs can
    have the same cycle id) and start a first cycle (fresh_env_per_cycle); duplicates are completion mails sent
    twice.  A daemon's subclass sets sync_type and gives make_env(smtp), state(env) and reference()."""

    fresh_env_per_cycle = True
    sync_type = None

    def __init__(self, fake):
        self.fake = fake
        self.crash_points = []
        self.split_commits = 0

    def make_env(self, smtp):
        raise NotImplementedError

    def new_env(self):
        return self.make_env(SmtpSink())

    def discard(self, env):
        env.smtp.stop()
        env.cleanup()

    def duplicates(self, env):
        time.sleep(0.2)
        keys = [str(m["msg"]["X-RTOpacks-Mail-Key"]) for m in env.smtp.received()]
        return len(keys) - len(set(keys))


def crash_at(tc, env, point, n=None, **kw):
    """One cycle with --once that must die at crash point `point` (its nth pass, when n is given): asserts the
    SIGKILL (kw go to the env's run_once)."""
    at = point if n is None else "%s:%d" % (point, n)
    rc = env.run_once(env={"RTOPACKS_CRASH_AT": at}, **kw)
    tc.assertEqual(rc, -signal.SIGKILL, "crash point %s was not reached:\n%s" % (at, env.daemon.read_log()[-3000:]))


def assert_resumed(tc, env, first_phase, smtp, resumed_from=True):
    """After a kill and one restart (--once): the killed run is stale, the next one resumed its cycle (trigger
    resume, the same cycle id; resumed_from naming it unless resumed_from=False) starting with `first_phase` and
    without an init of its own, the cycle is done, and its completion mail came exactly once."""
    st = env.sync_type
    r = runs(env.ops, st)
    tc.assertEqual([x["status"] for x in r], ["stale", "complete"], r)
    tc.assertEqual(r[1]["trigger"], "resume")
    if resumed_from:
        tc.assertEqual(r[1]["resumed_from"], r[0]["run_id"])
    tc.assertEqual(r[1]["cycle_id"], r[0]["run_id"])
    tc.assertEqual(cursor(env.ops, st)["cycle_phase"], "done")
    # The resumed run started where the first stopped: no init of its own, the interrupted phase first.
    steps = [s[0] for s in query(env.ops, "SELECT step FROM sync_steps WHERE run_id = ? ORDER BY started_at, rowid",
                                 (r[1]["run_id"],))]
    tc.assertEqual(steps[0], first_phase, steps)
    tc.assertNotIn("init", steps)
    # Exactly one completion mail for the cycle, however the kill fell.
    key = "%s/complete/%s" % (st, r[0]["run_id"])
    tc.assertEqual(len(settled_mails(smtp, key, env.ops)), 1)


def kill_at_random_moments(tc, make_env, seed, rounds, window, at_least, phases, state, summary):
    """SIGKILL a daemon (as a service, triggered) at a random moment inside one of its `phases`, `rounds` times, each
    on a fresh env (make_env()); a daemon that starts with an unfinished cycle resumes it by itself, and ends with
    tc.reference (state(env)) and tc.ref_summary (summary(env)).  window: (earliest, latest) seconds into the
    phases; at least `at_least` kills must land inside a cycle."""
    rnd = random.Random(seed)
    interrupted = 0
    for i in range(rounds):
        env = make_env()
        st = env.sync_type
        d = env.daemon.start()
        tc.assertTrue(ctl(d.socket_path(), "trigger")["ok"])
        wait_for(lambda: cursor(env.ops, st)["cycle_phase"] in phases, timeout=30, interval=0.01,
                 what="a sync phase")
        time.sleep(rnd.uniform(*window))
        d.kill()
        phase = cursor(env.ops, st)["cycle_phase"]
        if phase == "done":
            env.cleanup()
            continue
        interrupted += 1
        d.start()
        wait_for(lambda: cursor(env.ops, st)["cycle_phase"] == "done", timeout=60,
                 what="the resumed cycle (seed %d, kill %d)" % (seed, i))
        wait_for(lambda: runs(env.ops, st)[-1]["status"] == "complete", what="the run row")
        tc.assertEqual(d.stop(), 0)
        tc.assertEqual(state(env), tc.reference, "seed %d, kill %d in %s" % (seed, i, phase))
        tc.assertEqual(summary(env), tc.ref_summary)
        env.cleanup()
    tc.assertGreaterEqual(interrupted, at_least, "the kills fell outside the cycles (seed %d)" % seed)
