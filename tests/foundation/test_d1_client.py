#!/usr/bin/python3
"""The D1 client (common/net/d1.c, d1-sql.c) against the fake D1 (tests/fakes/fake_d1.py), through the d1-probe
program with a [d1] configuration section as a daemon reads it: a query, a multi-row upsert split at the statement
size limit, a 429 waited out (no call during the block), a 504 after the write committed replayed (the row is there
once), 5xx retried, a 7500 SQL error failing at once and naming the table, a refused token failing at once without
the token in any output, the pacing keeping under a rate limit, and the checks of the section itself."""

import json
import os
import subprocess
import unittest

import d1kit
from d1kit import ACCOUNT, TOKEN
from harness import BIN, Workdir, base_config, write_config

CORPUS = "aaaaaaaa-1111-4111-8111-000000000001"
OPS = "aaaaaaaa-1111-4111-8111-000000000002"
PROBE = os.path.join(BIN, "d1-probe")


class D1Client(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wd = Workdir("d1client")
        cls.fake = d1kit.start(cls.wd, CORPUS, OPS)
        cls.token_file = cls.fake.token_file

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()
        cls.wd.cleanup()

    @classmethod
    def secret(cls, name, value):
        return d1kit.secret(cls.wd, name, value)

    def setUp(self):
        self.fake.post("/_fake/fault/clear")
        self.fake.post("/_fake/rate/reset")
        self.fake.post("/_fake/stats/reset")

    def config(self, **d1):
        # Not d1kit.LIMITS: more retries, a longer backoff, D1's own 429 block.
        keys = d1kit.section(self.fake, limits={}, corpus_database_id=CORPUS, ops_database_id=OPS,
                             requests_per_5min="1200", retries="3", backoff="100ms", backoff_max="500ms",
                             timeout="20s")
        keys.update(d1)
        path = self.wd.file("sync-%s.conf" % self.id().rsplit(".", 1)[-1])
        write_config(path, {"d1": keys})
        os.chmod(path, 0o600)
        return path

    def probe(self, *args, config=None, env=None, rc=0):
        p = subprocess.run([PROBE, "-c", config or self.config()] + list(args), capture_output=True, text=True,
                           timeout=120, env=dict(os.environ, **(env or {})))
        self.assertNotIn(TOKEN, p.stdout + p.stderr)
        self.assertEqual(p.returncode, rc, p.stdout + p.stderr)
        return json.loads(p.stdout)

    def sql(self, sql, db="ops-db"):
        return self.fake.post("/_fake/sql", {"database": db, "sql": sql})

    def dump(self, table, db="ops-db"):
        return self.fake.get("/_fake/dump?database=%s&table=%s" % (db, table))["rows"]

    def stats(self):
        return self.fake.get("/_fake/stats")

    def fresh(self, table, db="ops-db"):
        self.sql("DROP TABLE IF EXISTS %s; CREATE TABLE %s (id INTEGER PRIMARY KEY, v TEXT, n INTEGER, r REAL, b BLOB)"
                 % (table, table), db)

    def test_query_and_rows(self):
        self.fresh("q")
        out = self.probe("query", "INSERT INTO q (id, v) VALUES (1, 'a''b'), (2, NULL); SELECT id, v FROM q ORDER BY id")
        self.assertEqual(out["status"], "ok")
        self.assertEqual(out["statements"], 2)
        self.assertEqual(out["result"][1]["results"], [{"id": 1, "v": "a'b"}, {"id": 2, "v": None}])
        self.assertEqual(out["rows_written"], 2)
        self.assertEqual(out["attempts"], 1)
        raw = self.probe("--raw", "query", "SELECT id FROM q ORDER BY id")
        self.assertEqual(raw["result"][0]["results"], {"columns": ["id"], "rows": [[1], [2]]})
        # the batch form: each statement with its own parameters, one transaction
        out = self.probe("batch", "INSERT INTO q (id, v) VALUES (?, ?)", '[3, "c"]',
                         "UPDATE q SET v = ? WHERE id = ?", '["z", 1]')
        self.assertEqual((out["status"], out["statements"]), ("ok", 2))
        self.assertEqual([(r[0], r[1]) for r in self.dump("q")], [(1, "z"), (2, None), (3, "c")])
        out = self.probe("batch", "INSERT INTO q (id) VALUES (?)", "[4]", "INSERT INTO q (id) VALUES (?)", "[4]",
                         rc=1)
        self.assertEqual(out["status"], "sql")
        self.assertIn("UNIQUE constraint failed", out["error"])
        self.assertIn("on table q ", out["error"])
        self.assertEqual(len(self.dump("q")), 3)                    # rolled back whole
        # the corpus handle goes to the other database
        self.fresh("q", db="rtopacks-db")
        self.probe("--db", "corpus", "query", "INSERT INTO q (id) VALUES (7)")
        self.assertEqual([r[0] for r in self.dump("q", "rtopacks-db")], [7])
        self.assertEqual(len(self.dump("q")), 3)

    def test_upsert_split_at_the_statement_limit(self):
        self.fresh("up", db="rtopacks-db")
        out = self.probe("--db", "corpus", "upsert", "up", "3000", "100")
        self.assertEqual(out["status"], "ok", out)
        self.assertEqual(out["rows"], 3000)
        self.assertGreaterEqual(out["built_statements"], 4)        # ~330 KB of SQL
        self.assertLessEqual(out["max_statement"], 90000)
        self.assertGreater(out["max_statement"], 80000)             # filled, not one row per statement
        self.assertEqual(out["requests"], 1)
        self.assertEqual(self.stats()["statements"], out["built_statements"])
        rows = self.dump("up", "rtopacks-db")
        self.assertEqual(len(rows), 3000)
        row = rows[41]                                               # id 42: the literals came through intact
        self.assertEqual(row[0], 42)
        self.assertTrue(row[1].startswith("row 41: it's \"quoted\", caf\u00e9; -- not a comment "), row)
        self.assertEqual(row[2], 41 * 1000003)
        self.assertEqual(row[3], 41 / 4)
        self.assertEqual(rows[0][2], None)
        # sent again: an upsert, so nothing doubles
        self.probe("--db", "corpus", "upsert", "up", "3000", "100")
        self.assertEqual(len(self.dump("up", "rtopacks-db")), 3000)
        # a smaller budget makes more, smaller statements; past D1's 100,000 bytes it refuses the statement
        out = self.probe("--db", "corpus", "--stmt-max", "20000", "upsert", "up", "3000", "100")
        self.assertGreaterEqual(out["built_statements"], 16)
        self.assertLessEqual(out["max_statement"], 20000)
        out = self.probe("--db", "corpus", "--stmt-max", "150000", "upsert", "up", "3000", "100", rc=1)
        self.assertEqual(out["status"], "sql")
        self.assertIn("SQLITE_TOOBIG", out["error"])
        self.assertIn("table up ", out["error"])

    def test_429_is_waited_out_without_a_call_during_the_block(self):
        self.fresh("rl")
        throttled = self.stats()["rate"]["throttled"]               # cumulative in the fake
        self.fake.fault("query", "http429", block=2)
        out = self.probe("query", "INSERT INTO rl (id) VALUES (1)")
        self.assertEqual(out["status"], "ok", out)
        self.assertEqual((out["blocks"], out["attempts"]), (1, 2))
        self.assertGreaterEqual(out["elapsed"], 1.9)
        # the 429 itself and nothing else: no call was sent during the block
        self.assertEqual(self.stats()["rate"]["throttled"], throttled + 1)
        # without Retry-After the client waits [d1] rate_block (D1's 5 minutes; shortened here)
        self.fake.post("/_fake/rate/reset")
        throttled = self.stats()["rate"]["throttled"]
        self.fake.fault("query", "http429", block=1, retry_after=None)
        out = self.probe("query", "INSERT INTO rl (id) VALUES (2)", config=self.config(rate_block="1500ms"))
        self.assertEqual(out["status"], "ok", out)
        self.assertGreaterEqual(out["elapsed"], 1.4)
        self.assertEqual(self.stats()["rate"]["throttled"], throttled + 1)
        self.assertEqual(len(self.dump("rl")), 2)

    def test_overloaded_429_is_retried_not_blocked(self):
        self.fresh("ov")
        self.fake.fault("query", "overloaded")
        out = self.probe("query", "INSERT INTO ov (id) VALUES (1)")
        self.assertEqual(out["status"], "ok", out)
        self.assertEqual((out["blocks"], out["attempts"]), (0, 2))

    def test_504_after_commit_is_replayed_once_present(self):
        self.fresh("t504")
        self.fake.fault("query", "timeout_504")
        out = self.probe("query", "INSERT INTO t504 (id, v) VALUES (1, 'x'), (2, 'y') "
                         "ON CONFLICT(id) DO UPDATE SET v = excluded.v")
        self.assertEqual(out["status"], "ok", out)
        self.assertEqual((out["timeouts"], out["attempts"]), (1, 2))
        self.assertEqual(self.stats()["timeouts_504"], 1)
        self.assertEqual(self.dump("t504"), [[1, "x", None, None, None], [2, "y", None, None, None]])

    def test_5xx_and_resets_are_retried_then_given_up(self):
        self.fresh("t5")
        self.fake.post("/_fake/fault", [{"op": "query", "kind": "http500", "count": 1},
                                        {"op": "query", "kind": "http5xx", "status": 502, "count": 1},
                                        {"op": "query", "kind": "reset", "count": 1}])
        out = self.probe("query", "INSERT INTO t5 (id) VALUES (1) ON CONFLICT(id) DO NOTHING")
        self.assertEqual(out["status"], "ok", out)
        self.assertEqual(out["attempts"], 4)
        self.assertEqual(len(self.dump("t5")), 1)
        self.fake.fault("query", "http503", count=-1)
        out = self.probe("query", "INSERT INTO t5 (id) VALUES (2)", config=self.config(retries="2"), rc=1)
        self.assertEqual(out["status"], "transient")
        self.assertEqual(out["attempts"], 3)
        self.assertIn("D1 ops database", out["error"])
        self.assertIn("503", out["error"])

    def test_sql_error_fails_at_once_naming_the_table(self):
        self.fresh("good")
        self.fake.fault("query", "sql_error", message="UNIQUE constraint failed: good.id: SQLITE_CONSTRAINT")
        out = self.probe("query", "INSERT INTO good (id) VALUES (1)", rc=1)
        self.assertEqual((out["status"], out["code"], out["attempts"]), ("sql", 7500, 1))
        self.assertIn("on table good ", out["error"])
        self.assertIn("UNIQUE constraint failed", out["error"])
        self.assertIn("not retried", out["error"])
        out = self.probe("query", "INSERT INTO good (id) VALUES (1); UPDATE nosuch SET x = 1", rc=1)
        self.assertIn("on tables good, nosuch", out["error"])
        self.assertEqual(self.dump("good"), [])                     # rolled back whole

    def test_bad_token_fails_at_once_and_is_never_shown(self):
        wrong = "wrong-token_0123456789abcdefghijABCDEFGH"
        out = self.probe("query", "SELECT 1", config=self.config(token_file=self.secret("wrong", wrong)), rc=1)
        self.assertEqual((out["status"], out["code"], out["attempts"]), ("auth", 10000, 1))
        self.assertIn("d1-api-token", out["error"])
        self.assertNotIn(wrong, json.dumps(out))
        for variant, code in (("format", 6003), ("account", 7403)):
            self.fake.fault("query", "bad_token", variant=variant)
            out = self.probe("query", "SELECT 1", rc=1)
            self.assertEqual((out["status"], out["code"], out["attempts"]), ("auth", code, 1), out)
        # the systemd credential wins over token_file, as for the other secrets
        creds = self.wd.file("creds")
        os.makedirs(creds, exist_ok=True)
        self.secret(os.path.join("creds", "d1-api-token"), TOKEN)
        out = self.probe("query", "SELECT 1", config=self.config(token_file=self.secret("wrong2", wrong)),
                         env={"CREDENTIALS_DIRECTORY": creds})
        self.assertEqual(out["status"], "ok")
        # a token D1 would refuse for its shape is refused before anything is sent
        before = self.stats()["requests"]
        for bad in ('"%s"' % TOKEN, "Bearer " + TOKEN, TOKEN[:10] + " " + TOKEN[10:]):
            out = self.probe("query", "SELECT 1", config=self.config(token_file=self.secret("badshape", bad)), rc=1)
            self.assertEqual(out["status"], "config")
            self.assertIn("d1-api-token", out["error"])
        self.assertEqual(self.stats()["requests"], before)

    def test_pacing_stays_under_the_rate_limit(self):
        self.fresh("pace")
        throttled = self.stats()["rate"]["throttled"]
        self.fake.post("/_fake/config", {"rate_limit": 4, "rate_window": 2})
        try:
            out = self.probe("repeat", "9", "INSERT INTO pace (v) VALUES ('x')",
                             config=self.config(requests_per_5min="3", rate_window="2s"))
            st = self.stats()
        finally:
            self.fake.post("/_fake/config", {"rate_limit": 1200, "rate_window": 300})
        self.assertEqual(out["status"], "ok", out)
        self.assertEqual(out["attempts"], 9)
        self.assertEqual(st["rate"]["throttled"], throttled)        # never refused
        self.assertGreaterEqual(out["elapsed"], 8 * 2 / 3 - 0.1)     # one start per 2 s / 3
        self.assertEqual(len(self.dump("pace")), 9)

    def test_section_checks(self):
        off = self.wd.file("off.conf")
        write_config(off, {"d1": {"api_base": "https://api.cloudflare.com/client/v4"}})
        os.chmod(off, 0o600)
        out = self.probe("check", config=off)
        self.assertEqual(out["enabled"], False)
        out = self.probe("check", config=self.config(requests_per_5min=None))
        self.assertEqual((out["enabled"], out["budget"], out["cursor_table"]), (True, 800, "test_sync_cursor"))
        out = self.probe("check", config=self.config(account_id="acct", ops_database_id="ops-db",
                                                     steps_table="x; DROP TABLE y"), rc=1)
        for want in ("account_id", "32 hex digits", "ops_database_id", "UUID", "steps_table"):
            self.assertIn(want, out["error"])
        out = self.probe("check", config=self.config(api_base="http://203.0.113.5/client/v4"), rc=1)
        self.assertIn("api_base", out["error"])
        out = self.probe("query", "SELECT 1", config=self.config(api_base=self.fake.url + "/client/v3"), rc=1)
        self.assertEqual((out["status"], out["http_status"], out["attempts"]), ("request", 404, 1))
        self.assertIn("check [d1] api_base", out["error"])
        out = self.probe("check", config=self.config(token_file=self.wd.file("missing")), rc=1)
        self.assertIn("d1-api-token", out["error"])

    def test_daemon_dash_n_checks_the_section(self):
        def check(d1):
            extra = {"test-sync": {"url": self.fake.url}}
            if d1 is not None:
                extra["d1"] = d1
            path = write_config(self.wd.file("daemon.conf"), base_config(self.wd, None, extra))
            os.chmod(path, 0o600)
            return subprocess.run([os.path.join(BIN, "test-sync"), "-n", "-c", path], capture_output=True, text=True,
                                  timeout=60)

        good = {"account_id": ACCOUNT, "ops_database_id": OPS, "api_base": self.fake.url + "/client/v4",
                "token_file": self.token_file}
        for d1 in (None, good):
            p = check(d1)
            self.assertEqual((p.returncode, p.stdout.strip()), (0, "configuration OK"), p.stderr)
        p = check(dict(good, ops_database_id="ops-db"))
        self.assertEqual(p.returncode, 5, p.stderr)
        self.assertIn("ops_database_id", p.stderr)
        p = check(dict(good, token_file=self.secret("quoted", "'%s'" % TOKEN)))
        self.assertEqual(p.returncode, 5, p.stderr)
        self.assertIn("d1-api-token", p.stderr)
        self.assertNotIn(TOKEN, p.stdout + p.stderr)
        p = check(dict(good, api_base="http://api.cloudflare.com/client/v4"))
        self.assertEqual(p.returncode, 5, p.stderr)
        self.assertIn("[d1] api_base", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
