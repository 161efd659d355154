#!/usr/bin/python3
"""The 'degraded' run status on an ops.db made before it existed: the migration that widens sync_runs' CHECK keeps
every run and step row (sync_steps references sync_runs with ON DELETE CASCADE, so a careless rebuild would empty
it), and afterwards a qb-reconcile run can end 'degraded'.

The old database is made from the migration files that sort before the degraded one, whatever its number (the
lead renumbers migrations at merge), so the daemon applies it and any after it."""

import glob
import os
import sqlite3
import unittest

from qbenv import REPO, QBEnv, result

MIGRATION = "run-degraded"


def old_ops_db(path):
    files = sorted(glob.glob(os.path.join(REPO, "schema", "ops", "*.sql")))
    mine = [i for i, f in enumerate(files) if MIGRATION in os.path.basename(f)]
    assert len(mine) == 1, files
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA foreign_keys = ON")
        for f in files[:mine[0]]:
            with open(f) as fh:
                con.executescript(fh.read())
        con.execute("PRAGMA user_version = %d" % mine[0])
        con.execute("INSERT INTO sync_runs (run_id, sync_type, cycle_id, trigger, status, phase, started_at,"
                    " finished_at, error, host, pid, version) VALUES ('qb_reconcile-2026-11-01T00:00:00Z',"
                    " 'qb_reconcile', 'qb_reconcile-2026-11-01T00:00:00Z', 'timer', 'complete', 'summary',"
                    " '2026-11-01T00:00:00Z', '2026-11-01T00:00:05Z', NULL, 'h', 1, 'old')")
        for step in ("heartbeat", "push", "reconcile", "summary"):
            con.execute("INSERT INTO sync_steps (run_id, sync_type, step, status, records_in, records_out,"
                        " started_at, finished_at) VALUES ('qb_reconcile-2026-11-01T00:00:00Z', 'qb_reconcile', ?,"
                        " 'complete', 1, 1, '2026-11-01T00:00:00Z', '2026-11-01T00:00:05Z')", (step,))
        con.commit()
    finally:
        con.close()


class UpgradeTest(unittest.TestCase):
    def test_old_ops_db_keeps_its_rows_and_takes_degraded(self):
        env = QBEnv("qbupgrade")
        try:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(env.ops + suffix):
                    os.unlink(env.ops + suffix)
            old_ops_db(env.ops)
            env.customer(1, "Upgrade RTO")
            env.invoice(1, 1, "UP-1")
            rc, res = env.once()
            self.assertEqual((rc, res), (0, result(synced=1)), env.daemon.read_log()[-3000:])
            self.assertIn("applied migration", env.daemon.read_log())
            # The old run and its steps are all still there.
            self.assertEqual(env.sql("SELECT count(*) FROM sync_steps WHERE run_id ="
                                     " 'qb_reconcile-2026-11-01T00:00:00Z'")[0][0], 4)
            self.assertEqual(env.sql("SELECT status FROM sync_runs ORDER BY started_at"),
                             [("complete",), ("complete",)])
            self.assertEqual(env.sql("PRAGMA foreign_key_check"), [])
            # A dead connection now ends the run 'degraded'.
            env.mutate({"action": "revoke"})
            rc, res = env.once()
            self.assertEqual((rc, res), (10, result("degraded", heartbeat=False)))
            self.assertEqual(env.sql("SELECT status FROM sync_runs ORDER BY started_at DESC, rowid DESC LIMIT 1"),
                             [("degraded",)])
            # The cascade still works after the rebuild (foreign keys on, as the daemons have them).
            con = sqlite3.connect(env.ops)
            try:
                con.execute("PRAGMA foreign_keys = ON")
                con.execute("DELETE FROM sync_runs WHERE run_id = 'qb_reconcile-2026-11-01T00:00:00Z'")
                con.commit()
                self.assertEqual(con.execute("SELECT count(*) FROM sync_steps WHERE run_id ="
                                             " 'qb_reconcile-2026-11-01T00:00:00Z'").fetchone()[0], 0)
            finally:
                con.close()
        finally:
            env.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
