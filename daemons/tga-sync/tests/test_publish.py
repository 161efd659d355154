#!/usr/bin/python3
"""tga-sync's publish phase (common/engine/publish.c, daemons/tga-sync/phase-publish.c) against the fake D1.

Issue 14: after the phase every published table in D1's corpus database equals the local one, row by row: the first
load (a full republish, D1 being empty), then a delta after changes of every kind (updates, adds, physical and
logical deletes, a supersession, RTO update/delete/add, scope adds/removals/ends, 3% random), sent through the
changed parents only (child lists replaced, a list that got shorter cut in D1, scope reached through the RTOs whose
scope changed); a kill between D1's commit and ours resumes and ends equal; so does a first load under random
SIGKILLs during publish (TORTURE_SEED).
"""

import sqlite3
import unittest

import d1kit
import tgalib
from harness import Workdir, query

CORPUS = "aaaaaaaa-1111-4111-8111-0000000000d1"
OPS = "aaaaaaaa-1111-4111-8111-0000000000d2"
TABLES = ("tga_runs", "tga_components", "tga_releases", "tga_unit_grid", "tga_mappings", "tga_classifications",
          "tga_usage_recommendations", "tga_currency_periods", "tga_rtos", "tga_rto_registration_periods",
          "tga_rto_trading_names", "tga_rto_locations", "tga_rto_urls", "tga_rto_scope", "tga_deletions")


def js(v):
    """D1 answers in JSON read as JavaScript does: integers past 2**53 (scope_hash) come back rounded, though D1
    stores them exactly (the literal is an integer).  Both sides are compared that way."""
    return float(v) if isinstance(v, int) and abs(v) > 2 ** 53 else v


def rowset(cols, rows):
    return {tuple(sorted((c, js(v)) for c, v in zip(cols, row))) for row in rows}


class PublishTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wd = Workdir("tga-d1")
        cls.addClassCleanup(cls.wd.cleanup)
        cls.d1 = d1kit.start(cls.wd, CORPUS, OPS)
        cls.addClassCleanup(cls.d1.stop)
        tgalib.share_fake(cls, "tga-d1-fake", smtp=False)

    def env(self, name):
        keys = d1kit.section(self.d1, corpus_database_id=CORPUS, requests_per_5min="1000", rate_window="5s")
        env = tgalib.Env(self.fake, name=name, sections={"d1": keys})
        # Verification in key ranges of 2,000 rows (500,000 in production): the scope table is checked in several.
        env.daemon.env["RTOPACKS_TEST_VERIFY_RANGE"] = "2000"
        return env

    def d1_rows(self, table):
        r = d1kit.dump(self.d1, table)
        return rowset(r["columns"], r["rows"])

    def local_rows(self, env, table):
        con = sqlite3.connect(env.corpus)
        try:
            cur = con.execute("SELECT * FROM %s" % table)
            return rowset([d[0] for d in cur.description], cur.fetchall())
        finally:
            con.close()

    def assert_d1_equal(self, env, msg=""):
        for t in TABLES:
            local, remote = self.local_rows(env, t), self.d1_rows(t)
            self.assertEqual(len(remote), len(local), "%s: row counts %s" % (t, msg))
            if remote != local:
                self.fail("%s differs %s: D1 only %s, local only %s" % (t, msg, sorted(remote - local)[:3],
                                                                       sorted(local - remote)[:3]))

    def detail(self, env):
        run = query(env.ops, "SELECT run_id FROM sync_runs ORDER BY started_at DESC, run_id DESC LIMIT 1")[0][0]
        return tgalib.step_details(env.ops, run).get("publish", {})

    def test_first_load_delta_and_kill(self):
        env = self.env("tga-pub")
        self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-4000:])
        self.assert_d1_equal(env, "after the first load")
        det = self.detail(env)
        self.assertEqual(det.get("full"), 1, det)
        self.assertEqual(det.get("verified_tables"), len(TABLES), det)
        n_scope = len(self.local_rows(env, "tga_rto_scope"))
        self.assertGreater(n_scope, 1000)
        self.assertEqual(det.get("tga_rto_scope.upserted"), n_scope, det)
        # One request for the small tables and up to 4 scope ranges, then the other ranges 4 at a time.
        ranges = -(-n_scope // 2000)
        self.assertEqual(det.get("verified_rows"), sum(len(self.local_rows(env, t)) for t in TABLES), det)
        self.assertGreaterEqual(ranges, 2)

        # Changes of every kind, then a delta.
        dump = tgalib.fake_dump(self.fake)
        specs, picked = tgalib.changes_of_every_kind(dump)
        orgs, quals, units = picked.orgs, picked.quals, picked.units
        for s in specs:
            self.fake.post("/_fake/mutate", s)
        # A child list in D1 longer than the local one (as after a list that got shorter): the delta cuts it.
        self.d1.post("/_fake/sql", {"database": "rtopacks-db", "sql":
                                    "INSERT INTO tga_releases (component_code, seq, run) VALUES ('%s', 999, 1)"
                                    % quals[0]})
        self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-4000:])
        self.assert_d1_equal(env, "after the delta")
        det = self.detail(env)
        self.assertEqual(det.get("full"), 0, det)
        self.assertEqual(det.get("verified_tables"), len(TABLES), det)
        self.assertGreaterEqual(det.get("tga_releases.deleted", 0), 1, det)
        sent_scope = det.get("tga_rto_scope.upserted", 0)
        self.assertGreater(sent_scope, 0, det)
        self.assertLess(sent_scope, n_scope / 2, "the delta sends the changed RTOs' scope rows only: %s" % det)
        self.assertGreater(det.get("tga_rto_scope.deleted", 0), 0, "scope rows removed are sent as soft deletes")

        # Requests of 40 rows: a parent's rows that do not fit in one request (the big RTO's scope, a component's
        # unit grid) are split across requests, a list's DELETE going with its last part; D1 ends equal.
        big2 = orgs[3]
        codes2 = [x["NrtCode"] for x in big2["Scopes"] if not x["IsImplicit"]]
        for spec in ({"action": "scope", "code": big2["Code"], "add": [units[7], quals[8]], "remove": codes2[:3]},
                     {"action": "update", "kind": "qualification", "code": quals[3]},
                     {"action": "random", "fraction": 0.02, "seed": 9}):
            self.fake.post("/_fake/mutate", spec)
        self.d1.post("/_fake/sql", {"database": "rtopacks-db", "sql":
                                    "INSERT INTO tga_unit_grid (component_code, seq, unit_code, run)"
                                    " VALUES ('%s', 9999, 'X', 1)" % quals[3]})
        self.assertEqual(env.run_once(env={"RTOPACKS_TEST_PUBLISH_ROWS": "40"}), 0, env.daemon.read_log()[-4000:])
        self.assert_d1_equal(env, "after a delta in requests of 40 rows")
        det = self.detail(env)
        sent = sum(v for k, v in det.items() if k.endswith(".upserted"))
        self.assertGreater(det.get("tga_rto_scope.upserted", 0), 40, det)
        self.assertGreaterEqual(det.get("d1_requests"), sent // 40, det)
        self.assertGreaterEqual(det.get("tga_unit_grid.deleted", 0), 1, det)
        # quals[3]'s list is longer than a request: it was sent in parts, the DELETE with the last.
        self.assertGreater(query(env.corpus, "SELECT count(*) FROM tga_unit_grid WHERE component_code = ?",
                                 (quals[3],))[0][0], 40)

        # A kill after D1 committed a request and before our commit: the resumed run sends it again; D1 ends equal.
        self.fake.post("/_fake/mutate", {"action": "random", "fraction": 0.05, "seed": 11})
        rc = env.run_once(env={"RTOPACKS_CRASH_AT": "before_commit@publish:2"})
        self.assertNotEqual(rc, 0)
        self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-4000:])
        self.assert_d1_equal(env, "after the kill")
        trig = query(env.ops, "SELECT trigger FROM sync_runs ORDER BY started_at DESC, run_id DESC LIMIT 1")[0][0]
        self.assertEqual(trig, "resume")

        # Verification: a scope value changed behind our back in D1 is found (in its key range), and that table
        # is republished in the same run; D1 ends equal.
        self.d1.post("/_fake/sql", {"database": "rtopacks-db", "sql":
                                    "UPDATE tga_rto_scope SET end_date = 'tampered-with' WHERE rowid IN"
                                    " (SELECT rowid FROM tga_rto_scope LIMIT 1)"})
        self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-4000:])
        det = self.detail(env)
        self.assertEqual(det.get("verify_mismatches"), 1, det)
        # The scope table went again whole; the others had nothing to send.
        self.assertGreaterEqual(det.get("tga_rto_scope.upserted", 0), len(self.local_rows(env, "tga_rto_scope")), det)
        self.assertNotIn("tga_components.upserted", det)
        self.assert_d1_equal(env, "after a mismatch")
        # A row in D1 that is not local cannot be republished away (the sweep is not built): after the second
        # verification the step fails naming the table, and stays failed until the row is gone.
        self.d1.post("/_fake/sql", {"database": "rtopacks-db", "sql":
                                    "INSERT INTO tga_deletions (service, code, updated_date, applied, added_in, run)"
                                    " VALUES ('training', 'NOTLOCAL', '2020-01-01T00:00:00Z', 0, 1, 1)"})
        self.assertNotEqual(env.run_once(), 0)
        err = query(env.ops, "SELECT error FROM sync_steps WHERE step = 'publish' ORDER BY started_at DESC,"
                             " rowid DESC LIMIT 1")[0][0]
        self.assertIn("tga_deletions", err)
        self.assertIn("D1 differs from the local tables after a republish", err)
        self.d1.post("/_fake/sql", {"database": "rtopacks-db", "sql":
                                    "DELETE FROM tga_deletions WHERE code = 'NOTLOCAL'"})
        self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-4000:])
        self.assert_d1_equal(env, "after the stray row went")


    def test_torture_random_kills_during_publish(self):
        """A first load into an empty D1 in requests of 200 rows, SIGKILLed at random moments of publish
        (TORTURE_SEED) and restarted each time: D1 ends equal to the local tables, nothing missing."""
        drop = "; ".join("DROP TABLE IF EXISTS %s" % t for t in TABLES + ("d1_schema_migrations", "d1_publish_state"))
        self.d1.post("/_fake/sql", {"database": "rtopacks-db", "sql": drop})
        env = self.env("tga-pub-torture")
        self.addCleanup(env.cleanup)
        env.daemon.env["RTOPACKS_TEST_PUBLISH_ROWS"] = "200"
        landed, seed = d1kit.publish_torture(self, env, "tga-sync")
        self.assert_d1_equal(env, "after %d kills during publish (seed %d)" % (landed, seed))


if __name__ == "__main__":
    unittest.main(verbosity=2)
