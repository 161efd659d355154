#!/usr/bin/python3
"""qb-reconcile's own metrics (its job hook, daemons/qb-reconcile/health-qb.c) follow the shared ones in its
textfile: the QuickBooks connection state, the refresh token's expiries and the last heartbeat; a connection that
needs reconnecting shows as qb_connection_ok 0.  And `syncctl doctor` checks the connection (its syncctl hook)."""

import json
import os
import unittest

from qbenv import QBEnv
import promtext

DAEMON = "qb-reconcile"


class QBMetricsTest(unittest.TestCase):
    def setUp(self):
        self.env = QBEnv("qbmet")
        self.metrics_dir = self.env.wd.file("metrics")
        os.makedirs(self.metrics_dir)
        with open(self.env.config) as f:
            text = f.read()
        with open(self.env.config, "w") as f:
            f.write(text.replace("[paths]\n", "[paths]\nmetrics_dir = %s\n" % self.metrics_dir, 1))

    def tearDown(self):
        self.env.cleanup()

    def metrics(self):
        with open(os.path.join(self.metrics_dir, "rtopacks-sync-%s.prom" % DAEMON)) as f:
            return promtext.parse(f.read())

    def test_connection_series(self):
        rc, _ = self.env.once()
        self.assertEqual(rc, 0)
        m = self.metrics()
        self.assertEqual(promtext.value(m, "rtopacks_sync_last_run_success", daemon=DAEMON), 1)
        self.assertEqual(promtext.value(m, "rtopacks_sync_qb_connection_state", daemon=DAEMON, state="connected"), 1)
        self.assertEqual(promtext.value(m, "rtopacks_sync_qb_connection_ok", daemon=DAEMON), 1)
        self.assertEqual(promtext.value(m, "rtopacks_sync_qb_last_heartbeat_ok", daemon=DAEMON), 1)
        conn = self.env.conn()
        self.assertGreater(promtext.value(m, "rtopacks_sync_qb_refresh_token_expiry_timestamp_seconds",
                                          daemon=DAEMON, token="rolling"), 0, conn)
        self.assertGreater(promtext.value(m, "rtopacks_sync_qb_last_heartbeat_timestamp_seconds", daemon=DAEMON), 0)
        # The shared series come first, the job's after them.
        names = list(m)
        self.assertLess(names.index("rtopacks_sync_stuck"), names.index("rtopacks_sync_qb_connection_state"))

        # What the daemon writes when it starts (its monitor's first pass), with a connection that needs the operator.
        self.env.sql("UPDATE qb_connection SET state = 'reconnect_required'")
        self.env.daemon.start()
        self.env.daemon.stop()
        m = self.metrics()
        self.assertEqual(promtext.value(m, "rtopacks_sync_qb_connection_state", daemon=DAEMON,
                                        state="reconnect_required"), 1)
        self.assertEqual(promtext.value(m, "rtopacks_sync_qb_connection_ok", daemon=DAEMON), 0)
        p = self.env.ctl("--json", "doctor", DAEMON)
        job = json.loads(p.stdout)["jobs"][0]
        self.assertEqual(job["quickbooks"]["state"], "reconnect_required", p.stdout)
        self.assertIn(("problem", "quickbooks"), [(f["level"], f["check"]) for f in job["findings"]])


if __name__ == "__main__":
    unittest.main(verbosity=2)
