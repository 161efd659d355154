"""Fault matrix: run a daemon's cycle under one fault at a time and check the documented outcome.

Each case is a dict:
  name     what the fault is
  arm      fn(env): put the fault in place (arm a fake's fault, stop a server, fill a disk, lock a database...)
  disarm   fn(env): take it away again (optional)
  expect   "complete" (retried and completed) or "failed" (a clear error in the run row)
  error    for "failed": a text the run row's error must contain
  check    fn(env, case): extra assertions (optional)

After each case the harness checks that both databases pass PRAGMA integrity_check, then removes the fault and
runs the cycle again: it must complete and reach the same end state as an uninterrupted cycle, which proves that no
committed data was lost and nothing half-written stayed behind.  print_table() prints case, outcome, time.
"""

import os
import sqlite3
import time

from harness import runs


def integrity(db_path):
    if not os.path.exists(db_path):
        return "ok"
    con = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True, timeout=30)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def run_case(tc, case, env, sync_type):
    """tc: the unittest.TestCase; env: has .daemon, .ops, .corpus (may be None), .state() and .reference."""
    case["arm"](env)
    t0 = time.monotonic()
    try:
        rc = env.daemon.run_once(timeout=case.get("timeout", 120))
    finally:
        elapsed = time.monotonic() - t0
        if case.get("disarm"):
            case["disarm"](env)
    last = runs(env.ops, sync_type)[-1] if os.path.exists(env.ops) else {"status": "?", "error": None}
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
