#!/usr/bin/python3
"""The observatory mirror (common/store/d1-mirror.c): the engine's test daemon copies its run rows, step rows and
cursor into the ops database of the fake D1 (tests/fakes/fake_d1.py) in the Observatory's shape (tga_sync_steps
upserted on (run_id, sync_type, step), sync_runs, <sync_type>_cursor with cycle_phase), through ops.db's d1_outbox.
A D1 outage never fails the sync: the rows wait, `syncctl status` shows them, and they go out when D1 is back."""

import os
import sqlite3
import time
import unittest

import d1kit
from d1kit import TOKEN
from harness import (Daemon, Server, Workdir, base_config, ctl, query, runs, syncctl, wait_for,
                     write_config, REPO)

ITEMS_SERVER = os.path.join(REPO, "tests", "kit", "items_server.py")
CORPUS = "aaaaaaaa-1111-4111-8111-000000000001"
OPS = "aaaaaaaa-1111-4111-8111-000000000002"


class Mirror(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wd = Workdir("d1mirror")
        cls.fake = d1kit.start(cls.wd, CORPUS, OPS)
        cls.items = Server(ITEMS_SERVER, "--items", "25", wd=cls.wd)

    @classmethod
    def tearDownClass(cls):
        cls.fake.post("/_fake/outage", {"mode": "off"})
        cls.fake.stop()
        cls.items.stop()
        cls.wd.cleanup()

    def setUp(self):
        # Run ids are to the second: each test starts from an empty ops database in D1.
        self.fake.post("/_fake/sql", {"database": "ops-db", "sql": "DROP TABLE IF EXISTS tga_sync_steps;"
                                      " DROP TABLE IF EXISTS sync_runs; DROP TABLE IF EXISTS test_sync_cursor"})

    def env(self, name, **d1):
        wd = Workdir("d1m-" + name)
        keys = d1kit.section(self.fake, ops_database_id=OPS, retries="1")
        keys.update(d1)
        config = write_config(wd.file("sync.conf"), base_config(wd, None, {
            "d1": keys,
            "test-sync": {"url": self.items.url, "page_size": 10, "step_backoff": "50ms", "step_retries": 1,
                          "housekeeping_interval": "300ms"}}))
        os.chmod(config, 0o600)
        return wd, config, os.path.join(wd.state, "ops.db")

    def d1_rows(self, table, where=None):
        r = d1kit.dump(self.fake, table, "ops-db")
        rows = [dict(zip(r["columns"], row)) for row in r["rows"]]
        return [x for x in rows if where is None or all(x[k] == v for k, v in where.items())]

    def assert_mirrored(self, ops, run_id):
        local_steps = query(ops, "SELECT step, status, records_in, records_out FROM sync_steps WHERE run_id = ?"
                            " ORDER BY step", (run_id,))
        remote = sorted((s["step"], s["status"], s["records_in"], s["records_out"])
                        for s in self.d1_rows("tga_sync_steps", {"run_id": run_id}))
        self.assertEqual(remote, sorted(local_steps))
        for s in self.d1_rows("tga_sync_steps", {"run_id": run_id}):
            self.assertEqual(s["sync_type"], "test_sync")
        run = self.d1_rows("sync_runs", {"run_id": run_id})
        self.assertEqual(len(run), 1)
        local = query(ops, "SELECT status, started_at, finished_at, records_in, records_out FROM sync_runs"
                      " WHERE run_id = ?", (run_id,))[0]
        self.assertEqual((run[0]["status"], run[0]["started_at"], run[0]["finished_at"], run[0]["records_in"],
                          run[0]["records_out"]), local)
        cur = self.d1_rows("test_sync_cursor", {"sync_type": "test_sync"})
        self.assertEqual(len(cur), 1)
        self.assertEqual(cur[0]["cycle_phase"], "done")
        self.assertEqual(cur[0]["run_id"], run_id)

    def test_once_mirrors_run_steps_and_cursor(self):
        wd, config, ops = self.env("once")
        self.fake.post("/_fake/stats/reset")
        daemon = Daemon("test-sync", config, wd)
        self.assertEqual(daemon.run_once(), 0, daemon.read_log())
        run_id = runs(ops)[-1]["run_id"]
        self.assertEqual(runs(ops)[-1]["status"], "complete")
        self.assert_mirrored(ops, run_id)
        self.assertEqual(query(ops, "SELECT count(*) FROM d1_outbox"), [(0,)])
        # a handful of requests for a run, not one per row
        requests = self.fake.get("/_fake/stats")["requests"]
        self.assertLessEqual(requests, 12, requests)
        # the Observatory's unique key: a second run adds its own rows, the first run's stay as they are
        time.sleep(1.1)
        self.assertEqual(daemon.run_once(), 0, daemon.read_log())
        run2 = runs(ops)[-1]["run_id"]
        self.assertNotEqual(run2, run_id)
        self.assert_mirrored(ops, run2)
        self.assertEqual(len(self.d1_rows("sync_runs", {"sync_type": "test_sync"})), 2)
        self.assertEqual(len(self.d1_rows("tga_sync_steps", {"run_id": run_id})),
                         query(ops, "SELECT count(*) FROM sync_steps WHERE run_id = ?", (run_id,))[0][0])
        self.assertNotIn(TOKEN, daemon.read_log())
        wd.cleanup()

    def test_outage_never_fails_the_sync_and_rows_go_out_later(self):
        wd, config, ops = self.env("outage")
        self.fake.post("/_fake/outage", {"mode": "reset"})
        daemon = Daemon("test-sync", config, wd).start()
        try:
            r = ctl(daemon.socket_path(), "trigger", {"wait": False})
            wait_for(lambda: runs(ops) and runs(ops)[-1]["status"] != "running", timeout=60, what="the run to end")
            run = runs(ops)[-1]
            self.assertEqual(run["status"], "complete", daemon.read_log())
            # the rows wait in ops.db, with the error, and status says so
            wait_for(lambda: query(ops, "SELECT count(*) FROM d1_outbox WHERE attempts > 0")[0][0] > 0, timeout=30,
                     what="a failed send")
            st = ctl(daemon.socket_path(), "status")["result"]
            self.assertTrue(st["d1"]["enabled"])
            self.assertGreater(st["d1"]["waiting"], 0)
            self.assertIn("T", st["d1"]["since"])
            self.assertIn("D1 ops database", st["d1"]["last_error"])
            p = syncctl(config, "status", "test-sync")
            self.assertIn("d1: ", p.stdout)
            self.assertIn("rows waiting since", p.stdout)
            self.assertFalse(self.has("sync_runs"))                 # nothing reached D1
            # doctor warns once they have waited a day (its clock moved two days on)
            clock = wd.file("clock")
            with open(clock, "w") as f:
                f.write("%d\n" % (time.time() + 2 * 86400))
            p = syncctl(config, "doctor", "test-sync", env={"RTOPACKS_CLOCK_FILE": clock})
            self.assertIn("d1: ", p.stdout)
            self.assertIn("observatory rows have waited for D1 since", p.stdout)
            self.assertIn(p.returncode, (8, 9), p.stdout + p.stderr)
            p = syncctl(config, "doctor", "test-sync")
            self.assertNotIn("observatory rows", p.stdout)
            # D1 is back: the next housekeeping passes send everything
            self.fake.post("/_fake/outage", {"mode": "off"})
            wait_for(lambda: query(ops, "SELECT count(*) FROM d1_outbox")[0][0] == 0, timeout=30,
                     what="the outbox to drain")
            self.assert_mirrored(ops, run["run_id"])
            st = ctl(daemon.socket_path(), "status")["result"]
            self.assertEqual(st["d1"]["waiting"], 0)
            self.assertNotIn("since", st["d1"])
            self.assertFalse([n for n in st.get("notes", []) if n.startswith("d1:")])
            # our 'cancelled' and 'degraded' are D1's 'failed' and 'partial' (rows written here by hand: the
            # triggers queue them like the engine's own)
            con = sqlite3.connect(ops, timeout=10)
            with con:
                for rid, status, err in (("test_sync-x-cancelled", "cancelled", None),
                                         ("test_sync-x-degraded", "degraded", "the connection needs the operator")):
                    con.execute("INSERT INTO sync_runs (run_id, sync_type, cycle_id, trigger, status, started_at,"
                                " finished_at, error, host, pid, version) VALUES (?, 'test_sync', ?, 'manual', ?,"
                                " '2026-12-01T00:00:00Z', '2026-12-01T00:01:00Z', ?, 'h', 1, 't')",
                                (rid, rid, status, err))
                con.execute("INSERT INTO sync_steps (run_id, sync_type, step, status, started_at) VALUES"
                            " ('test_sync-x-cancelled', 'test_sync', 'fetch_items', 'cancelled',"
                            " '2026-12-01T00:00:00Z')")
            con.close()
            wait_for(lambda: len(self.d1_rows("sync_runs", {"sync_type": "test_sync"})) >= 3 and
                     query(ops, "SELECT count(*) FROM d1_outbox")[0][0] == 0, timeout=30, what="the new rows")
            c = self.d1_rows("sync_runs", {"run_id": "test_sync-x-cancelled"})[0]
            self.assertEqual((c["status"], c["error"]), ("failed", "cancelled by the operator"))
            d = self.d1_rows("sync_runs", {"run_id": "test_sync-x-degraded"})[0]
            self.assertEqual((d["status"], d["error"]), ("partial", "the connection needs the operator"))
            s = self.d1_rows("tga_sync_steps", {"run_id": "test_sync-x-cancelled"})[0]
            self.assertEqual((s["status"], s["error"]), ("failed", "cancelled by the operator"))
        finally:
            self.fake.post("/_fake/outage", {"mode": "off"})
            daemon.stop()
        self.assertNotIn(TOKEN, daemon.read_log())
        with open(ops, "rb") as f:
            self.assertNotIn(TOKEN.encode(), f.read())
        self.assertNotIn(TOKEN, str([self.d1_rows(t) for t in ("tga_sync_steps", "sync_runs", "test_sync_cursor")]))
        wd.cleanup()

    def has(self, table):
        return table in self.fake.get("/_fake/dump?database=ops-db")["tables"]

    def test_without_d1_nothing_is_queued(self):
        wd = Workdir("d1m-off")
        config = write_config(wd.file("sync.conf"), base_config(wd, None, {
            "test-sync": {"url": self.items.url, "page_size": 10}}))
        ops = os.path.join(wd.state, "ops.db")
        daemon = Daemon("test-sync", config, wd)
        self.assertEqual(daemon.run_once(), 0, daemon.read_log())
        self.assertEqual(query(ops, "SELECT count(*) FROM d1_outbox"), [(0,)])
        self.assertEqual(query(ops, "SELECT count(*) FROM d1_mirror"), [(0,)])
        wd.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
