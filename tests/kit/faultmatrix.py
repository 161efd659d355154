"""Fault matrix: run a daemon's cycle under one fault at a time and check the documented outcome.

Each case is a dict:
  name     what the fault is
  arm      fn(env): put the fault in place (arm a fake's fault, stop a server, fill a disk, lock a database...)
  disarm   fn(env): take it away again (optional)
  expect   "complete" (retried and completed) or "failed" (a clear error in the run row)
  error    for "failed": a text the run row's error must contain
  check    fn(env, case): extra assertions (optional)
  attempts the failed step attempts the faulted run's steps record, at most per phase (optional): 0 when the HTTP
           layer's retry absorbed the fault, step_retries + 1 when the phase gave up
  unfired  True when a fault the case arms may legitimately stay unused (optional; rare)

A fault armed on the env's fakes (env.fakes, or env.fake / env.items) must have been used by the faulted run: a
"once" fault (count N > 0) must be spent and every fault must have fired at least once (GET /_fake/fault reports
each fault's remaining count and how often it fired).  So a mis-armed fault (an op the daemon never calls, a kind
that does not apply) cannot pass as "retried and completed"; the fakes also refuse an op name they do not know.

After each case the harness checks that both databases pass PRAGMA integrity_check, then removes the fault and
runs the cycle again: it must complete and reach the same end state as an uninterrupted cycle, which proves that no
committed data was lost and nothing half-written stayed behind.  print_table() prints case, outcome, time.
"""

import os
import sqlite3
import time

from harness import query, runs


def integrity(db_path):
    if not os.path.exists(db_path):
        return "ok"
    con = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True, timeout=30)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def fakes_of(env):
    """The fake upstreams of an env whose faults a case may arm."""
    if hasattr(env, "fakes"):
        return list(env.fakes)
    return [f for f in (getattr(env, "fake", None), getattr(env, "items", None)) if f is not None]


def armed_faults(fake):
    """GET /_fake/fault: the faults armed since the last clear, spent ones included (a list with spent ones at count
    0, or {"armed": [...], "spent": [...]} for the fakes that list them apart)."""
    return fake.faults()


def unused_faults(env):
    """The faults armed on env's fakes that the run did not use up: a "once" fault with count left, or a fault that
    never fired (fakes that do not count firings are checked on the count only)."""
    unused = []
    for fake in fakes_of(env):
        for f in armed_faults(fake):
            if f.get("count", 0) > 0 or f.get("fired", 1) == 0:
                unused.append("%s %s on %r (count left %s, fired %s)" % (
                    getattr(fake, "name", "fake"), f.get("kind"), f.get("op"), f.get("count"), f.get("fired", "?")))
    return unused


def max_attempts(ops, run_id):
    return query(ops, "SELECT coalesce(max(attempts), 0) FROM sync_steps WHERE run_id = ?", (run_id,))[0][0]


def run_case(tc, case, env, sync_type):
    """tc: the unittest.TestCase; env: has .daemon, .ops, .corpus (may be None), .state() and .reference."""
    case["arm"](env)
    t0 = time.monotonic()
    try:
        rc = env.daemon.run_once(timeout=case.get("timeout", 120))
        # Before the disarm clears them: the fault the case armed must have been used.
        if not case.get("unfired"):
            unused = unused_faults(env)
            tc.assertEqual(unused, [], "%s: a fault was armed but the run did not use it (wrong op name or kind?)"
                           % case["name"])
    finally:
        elapsed = time.monotonic() - t0
        if case.get("disarm"):
            case["disarm"](env)
    last = runs(env.ops, sync_type)[-1] if os.path.exists(env.ops) else {"status": "?", "error": None}
    if "attempts" in case:
        tc.assertEqual(max_attempts(env.ops, last["run_id"]), case["attempts"],
                       "%s: failed step attempts of the faulted run" % case["name"])
    outcome = last["status"]
    tc.assertEqual(outcome, case["expect"], "%s: run %s (%s), exit %s\n%s" % (
        case["name"], outcome, last.get("error"), rc, env.daemon.read_log()[-2000:]))
    if case["expect"] == "failed":
        tc.assertIsNotNone(last["error"], case["name"])
        tc.assertIn(case["error"], last["error"], case["name"])
    for db in (env.ops, env.corpus):
        if db:
            tc.assertEqual(integrity(db), "ok", "%s: %s" % (case["name"], db))
    if case.get("check"):
        case["check"](env, case)
    # Without the fault, the cycle finishes and nothing committed before the fault is lost.
    tc.assertIn(env.daemon.run_once(timeout=120), (0, 3), "%s: the run after the fault" % case["name"])
    tc.assertEqual(env.state(), env.reference, "%s: end state after recovery" % case["name"])
    return outcome, elapsed, (last.get("error") or "")


def print_table(rows, title):
    w = max(len(r[0]) for r in rows)
    lines = ["", title, "%-*s  %-9s  %8s  %s" % (w, "CASE", "OUTCOME", "TIME", "ERROR (run row)")]
    for name, outcome, elapsed, error in rows:
        lines.append("%-*s  %-9s  %7.1fs  %s" % (w, name, outcome, elapsed, error.replace("\n", " ")[:90]))
    return "\n".join(lines)
