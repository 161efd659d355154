#!/usr/bin/python3
"""cricos-sync's publish phase (common/engine/publish.c) against the fake D1 (tests/fakes/fake_d1.py).

Issue 14: after the phase every published table in D1's corpus database equals the local one (compared row by row
through the fake's dump): the first load (a full republish, D1 being empty), then deltas (a new edition with adds,
changes and removals; a cycle without a new edition), `--republish`; faults: D1's 429 block waited out (no call
during it), a 504 after the write committed (replayed harmlessly), a 5xx, a 7500 SQL error (fails clearly, resumes),
a bad token (fails at once); a kill between D1's commit and ours, a SIGKILL while a request is in flight, and random
SIGKILLs during publish drawn from TORTURE_SEED (D1 ends equal, nothing missing).  Without [d1] the phase is skipped
with detail "disabled".
"""

import json
import os
import signal
import sqlite3
import subprocess
import time
import unittest

from cricoslib import Env, last_run, query, start_fake, step_detail, stop_fake
import d1kit
from d1kit import TOKEN
from harness import Workdir, ctl, syncctl, wait_for

CORPUS = "aaaaaaaa-1111-4111-8111-0000000000c1"
OPS = "aaaaaaaa-1111-4111-8111-0000000000c2"
TABLES = ("cricos_institutions", "cricos_courses", "cricos_locations", "cricos_course_locations", "cricos_editions")


class PublishTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wd = Workdir("cricos-d1")
        cls.d1 = d1kit.start(cls.wd, CORPUS, OPS)
        cls.ckan = start_fake()

    @classmethod
    def tearDownClass(cls):
        cls.d1.stop()
        stop_fake(cls.ckan)
        cls.wd.cleanup()

    def setUp(self):
        # Each test starts from an empty corpus database in D1 and the first edition.
        self.d1.post("/_fake/fault/clear")
        self.d1.post("/_fake/rate/reset")
        drop = "; ".join("DROP TABLE IF EXISTS %s" % t for t in TABLES + ("d1_schema_migrations",
                                                                         "d1_publish_state"))
        self.d1.post("/_fake/sql", {"database": "rtopacks-db", "sql": drop})
        for action in ({"action": "edition", "edition": 1}, {"action": "bom_field", "mode": "strip"},
                       {"action": "blanks", "mode": "null"}, {"action": "page_delay", "seconds": 0, "per_1000": 0}):
            self.ckan.post("/_fake/mutate", action)

    def env(self, name, d1=True, **extra):
        keys = d1kit.section(self.d1, corpus_database_id=CORPUS, requests_per_5min="600", rate_window="5s")
        keys.update(extra)
        return Env(self.ckan, name=name, sections={"d1": keys} if d1 else None)

    # --- D1 against the local tables ------------------------------------------------------------------------------

    def d1_rows(self, table):
        r = d1kit.dump(self.d1, table)
        return {tuple(sorted(zip(r["columns"], row))) for row in r["rows"]}

    def local_rows(self, env, table):
        con = sqlite3.connect(env.corpus)
        try:
            cur = con.execute("SELECT * FROM %s" % table)
            cols = [d[0] for d in cur.description]
            return {tuple(sorted(zip(cols, row))) for row in cur.fetchall()}
        finally:
            con.close()

    def assert_d1_equal(self, env, msg=""):
        for t in TABLES:
            local, remote = self.local_rows(env, t), self.d1_rows(t)
            self.assertTrue(local, "%s is empty locally %s" % (t, msg))
            self.assertEqual(len(remote), len(local), "%s: row counts %s" % (t, msg))
            self.assertEqual(remote, local, "%s differs %s" % (t, msg))

    def publish_detail(self, env):
        return step_detail(env.ops, last_run(env.ops)["run_id"], "publish")

    def publish_step(self, env):
        rows = query(env.ops, "SELECT status, error FROM sync_steps WHERE run_id = ? AND step = 'publish'",
                     (last_run(env.ops)["run_id"],))
        return rows[0] if rows else None

    def stats(self):
        return self.d1.get("/_fake/stats")

    def run_ok(self, env, msg="", **kw):
        rc = env.daemon.run_once(**kw)
        self.assertEqual(rc, 0, "%s: %s" % (msg, env.daemon.read_log()[-3000:]))
        run = last_run(env.ops)
        self.assertEqual(run["status"], "complete", (msg, run))
        return run

    # --- load, deltas, republish -----------------------------------------------------------------------------------

    def test_first_load_then_deltas(self):
        env = self.env("pub-load")
        self.run_ok(env, "edition 1")
        self.assert_d1_equal(env, "after the first load")
        det = self.publish_detail(env)
        self.assertEqual(det.get("full"), 1, det)
        self.assertEqual(det.get("verified_tables"), len(TABLES), det)
        self.assertEqual(det.get("schema_migrated"), 1, det)
        total = sum(len(self.local_rows(env, t)) for t in TABLES)
        self.assertEqual(sum(v for k, v in det.items() if k.endswith(".upserted")), total, det)
        self.assertEqual(det.get("verified_rows"), total, det)
        # The completion mail says what went to D1.
        mail = query(env.ops, "SELECT message FROM mail_outbox WHERE mail_key LIKE 'cricos_sync/complete/%'"
                              " ORDER BY id DESC LIMIT 1")[0][0]
        self.assertIn("Published to D1: full republish, verified: 5 tables, %s rows" % format(total, ","), mail)
        self.assertRegex(mail, r"cricos_courses +[0-9,]+ upserted")
        migrations = d1kit.dump(self.d1, "d1_schema_migrations")
        self.assertEqual(len(migrations["rows"]), 1, migrations)
        state = d1kit.dump(self.d1, "d1_publish_state")
        st = dict(zip(state["columns"], state["rows"][0]))
        cycle = query(env.ops, "SELECT cycle_id FROM sync_runs ORDER BY started_at DESC LIMIT 1")[0][0]
        self.assertEqual(st["published_through"], cycle)
        self.assertEqual(st["scope"], "cricos_sync")

        # Editions 2 and 3: adds, changes and removals (soft deletes), sent as a delta.
        for n in (2, 3):
            self.ckan.post("/_fake/mutate", {"action": "next_edition"})
            self.run_ok(env, "edition %d" % n)
            self.assert_d1_equal(env, "after edition %d" % n)
            det = self.publish_detail(env)
            self.assertEqual(det.get("full"), 0, det)
            self.assertEqual(det.get("verified_tables"), len(TABLES), det)
            sent = sum(v for k, v in det.items() if k.endswith(".upserted"))
            self.assertLess(sent, sum(len(self.local_rows(env, t)) for t in TABLES), det)
        removed = query(env.corpus, "SELECT count(*) FROM cricos_courses WHERE removed_cycle IS NOT NULL")[0][0]
        self.assertGreater(removed, 0, "the editions removed some courses")

        # No new edition: nothing to send; prepare, verify and record (3 requests).
        self.run_ok(env, "unchanged")
        det = self.publish_detail(env)
        self.assertEqual(sum(v for k, v in det.items() if k.endswith(".upserted")), 0, det)
        self.assertEqual(det.get("d1_requests"), 3, det)
        self.assert_d1_equal(env, "after an unchanged edition")

        # --republish: every row again, through the control socket.
        env.daemon.start()
        try:
            r = syncctl(env.config, "trigger", "cricos-sync", "--republish", "--wait")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        finally:
            env.daemon.stop()
        det = self.publish_detail(env)
        self.assertEqual(det.get("full"), 1, det)
        self.assertEqual(sum(v for k, v in det.items() if k.endswith(".upserted")),
                         sum(len(self.local_rows(env, t)) for t in TABLES), det)
        self.assert_d1_equal(env, "after --republish")
        # The steps and the mail show it.
        r = syncctl(env.config, "steps", last_run(env.ops)["run_id"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Published to D1: full republish, verified: 5 tables", r.stdout)
        self.assertRegex(r.stdout, r"cricos_course_locations +[0-9,]+ upserted")

    def test_disabled_without_d1(self):
        env = self.env("pub-off", d1=False)
        self.run_ok(env, "no [d1]")
        self.assertEqual(self.publish_step(env)[0], "complete")
        self.assertEqual(self.publish_detail(env).get("disabled"), 1)

    def test_older_schema_in_d1_republishes(self):
        env = self.env("pub-schema")
        self.run_ok(env, "edition 1")
        # D1's copy loses a column and its version row: the next run adds the column back and sends everything.
        self.d1.post("/_fake/sql", {"database": "rtopacks-db", "sql":
                                    "DELETE FROM d1_schema_migrations; ALTER TABLE cricos_courses DROP COLUMN"
                                    " link_cycle"})
        self.run_ok(env, "after D1's schema went back")
        det = self.publish_detail(env)
        self.assertEqual(det.get("full"), 1, det)
        self.assertEqual(det.get("schema_migrated"), 1, det)
        self.assert_d1_equal(env, "after the migration")

    # --- faults ------------------------------------------------------------------------------------------------------

    def test_faults_429_504_5xx(self):
        env = self.env("pub-faults")
        # 429 on the first data request: the block (2 s) is waited out, nothing is sent during it.
        self.d1.post("/_fake/fault", {"op": "query", "kind": "http429", "block": 2, "count": 1, "skip": 1,
                                      "database": "rtopacks-db"})
        t0 = time.monotonic()
        notes = []
        with open(env.daemon.log_path, "ab") as log:
            p = subprocess.Popen(env.daemon.command((), once=True), stdout=log, stderr=log, env=dict(os.environ))
            # `status` says what the run waits for while the block lasts.
            def blocked():
                r = ctl(env.daemon.socket_path(), "status", timeout=2)
                notes[:] = r.get("result", {}).get("notes", []) if r.get("ok") else []
                return any("waiting for D1's rate limit" in n for n in notes) or p.poll() is not None
            wait_for(blocked, 30, what="the status note of the 429 block")
            self.assertTrue(any(n.startswith("publish: waiting for D1's rate limit until") for n in notes), notes)
            self.assertEqual(p.wait(60), 0, env.daemon.read_log()[-3000:])
        self.assertEqual(last_run(env.ops)["status"], "complete")
        self.assertGreaterEqual(time.monotonic() - t0, 2.0)
        self.assert_d1_equal(env, "after a 429")
        self.assertEqual(self.stats()["rate"]["throttled"], 1, self.stats()["rate"])
        self.assertEqual(self.publish_detail(env).get("d1_rate_blocks"), 1, self.publish_detail(env))

        # A 504 after the write committed: the chunk is sent again, harmlessly.
        self.ckan.post("/_fake/mutate", {"action": "next_edition"})
        self.d1.post("/_fake/fault", {"op": "query", "kind": "timeout_504", "count": 1, "skip": 1,
                                      "database": "rtopacks-db"})
        self.run_ok(env, "504")
        self.assert_d1_equal(env, "after a 504")
        self.assertEqual(self.publish_detail(env).get("d1_timeouts_replayed"), 1, self.publish_detail(env))

        # 5xx: retried.
        self.ckan.post("/_fake/mutate", {"action": "next_edition"})
        self.d1.post("/_fake/fault", [{"op": "query", "kind": "http5xx", "status": 502, "count": 1, "skip": 1,
                                       "database": "rtopacks-db"},
                                      {"op": "query", "kind": "http500", "count": 1, "skip": 2,
                                       "database": "rtopacks-db"}])
        self.run_ok(env, "5xx")
        self.assert_d1_equal(env, "after 5xx")

    def test_sql_error_and_bad_token_fail_clearly(self):
        env = self.env("pub-errors")
        self.d1.post("/_fake/fault", {"op": "query", "kind": "sql_error", "count": 1, "skip": 1,
                                      "database": "rtopacks-db",
                                      "message": "UNIQUE constraint failed: cricos_courses.course_code: "
                                                 "SQLITE_CONSTRAINT"})
        before = self.stats()["requests"]
        env.daemon.run_once()
        run = last_run(env.ops)
        self.assertEqual(run["status"], "failed", run)
        status, error = self.publish_step(env)
        self.assertEqual(status, "failed")
        self.assertIn("UNIQUE constraint failed", error)
        self.assertIn("7500", error)
        self.assertEqual(self.stats()["requests"] - before, 2, "the refused request is not retried")
        # The next run resumes in publish and completes.
        self.run_ok(env, "after the SQL error")
        self.assertEqual(last_run(env.ops)["trigger"], "resume")
        self.assert_d1_equal(env, "after the SQL error")

        self.ckan.post("/_fake/mutate", {"action": "next_edition"})
        self.d1.post("/_fake/fault", {"op": "*", "kind": "bad_token", "count": -1})
        before = self.stats()["requests"]
        t0 = time.monotonic()
        env.daemon.run_once()
        self.assertLess(time.monotonic() - t0, 30)
        run = last_run(env.ops)
        self.assertEqual(run["status"], "failed", run)
        status, error = self.publish_step(env)
        self.assertEqual(status, "failed")
        self.assertIn("d1-api-token", error)
        self.assertNotIn(TOKEN, error)
        self.assertEqual(self.stats()["requests"] - before, 1, "a refused token is not retried")
        self.d1.post("/_fake/fault/clear")
        self.run_ok(env, "after the bad token")
        self.assert_d1_equal(env, "after the bad token")
        self.assertNotIn(TOKEN, env.daemon.read_log())

    # --- kills -------------------------------------------------------------------------------------------------------

    def test_kill_between_d1_and_local_commit(self):
        env = self.env("pub-kill")
        # The first data request committed in D1, the process dies before our commit: the resumed run sends it
        # again (upserts: harmless) and ends equal.
        rc = env.daemon.run_once(env={"RTOPACKS_CRASH_AT": "before_commit@publish:2"})
        self.assertNotEqual(rc, 0)
        self.assertIn("publish", query(env.ops, "SELECT phase FROM sync_runs ORDER BY started_at DESC LIMIT 1")[0][0])
        self.run_ok(env, "resumed")
        self.assertEqual(last_run(env.ops)["trigger"], "resume")
        self.assert_d1_equal(env, "after the kill")

    def test_sigkill_with_a_request_in_flight(self):
        env = self.env("pub-sigkill")
        self.run_ok(env, "edition 1")
        self.ckan.post("/_fake/mutate", {"action": "next_edition"})
        # The data request commits in D1 and its answer is held back 5 s: SIGKILL meanwhile.
        self.d1.post("/_fake/fault", {"op": "query", "kind": "slow", "delay": 5, "count": 1, "skip": 1,
                                      "database": "rtopacks-db"})
        e = dict(os.environ)
        with open(env.daemon.log_path, "ab") as log:
            p = subprocess.Popen(env.daemon.command((), once=True), stdout=log, stderr=log, env=e)
            try:
                wait_for(lambda: self.d1.get("/_fake/fault").get("used"), 30, what="the slow request")
                time.sleep(0.3)
            finally:
                p.send_signal(signal.SIGKILL)
                p.wait()
        self.d1.post("/_fake/fault/clear")
        self.run_ok(env, "resumed after SIGKILL")
        self.assertEqual(last_run(env.ops)["trigger"], "resume")
        self.assert_d1_equal(env, "after SIGKILL")

    def test_torture_random_kills_during_publish(self):
        """SIGKILL at random moments while publish runs (20 rows a request, so the phase is many steps and a kill
        often lands with a request on the wire or between D1's commit and ours), restarting the daemon as a service
        each time: the resumed cycle completes and D1 ends equal to the local tables, nothing missing.  The kills
        are drawn from TORTURE_SEED (printed, so a failure replays)."""
        keys = d1kit.section(self.d1, corpus_database_id=CORPUS, requests_per_5min="1200", rate_window="5s")
        env = Env(self.ckan, name="pub-torture", sections={"d1": keys}, env={"RTOPACKS_TEST_PUBLISH_ROWS": "20"})
        self.addCleanup(env.cleanup)
        landed, seed = d1kit.publish_torture(self, env, "cricos-sync")
        self.assert_d1_equal(env, "after %d kills during publish (seed %d)" % (landed, seed))


if __name__ == "__main__":
    unittest.main(verbosity=2)
