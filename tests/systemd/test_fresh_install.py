#!/usr/bin/python3
"""A fresh install, as the package leaves it (issue 13, item 10): tmpfiles.d has made ops.db an empty file and no
daemon has started yet.  `syncctl doctor` says for every job that no run has happened yet and exits 8 (attention:
warnings only, as the README documents), in text and in JSON; it prints no SQL error.

On the code before the fix it exited 9 with three "no such table: sync_runs" problems.
"""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import Workdir, syncctl, write_config, REPO, SCHEDULES  # noqa: E402

ATTENTION = 8
DAEMONS = ("tga-sync", "cricos-sync", "qb-reconcile")


class FreshInstallTest(unittest.TestCase):
    def setUp(self):
        self.wd = Workdir("fresh")
        self.ops = os.path.join(self.wd.state, "ops.db")
        with open(self.ops, "w"):
            pass                    # what `f /var/lib/rtopacks-sync/ops.db 0664 ...` in tmpfiles.d leaves
        os.chmod(self.ops, 0o664)
        self.config = write_config(self.wd.file("sync.conf"), {
            "paths": {"state_dir": self.wd.state, "schedules_dir": SCHEDULES},
            "control": {"socket_dir": self.wd.run}})

    def tearDown(self):
        self.wd.cleanup()

    def test_doctor_says_no_run_yet(self):
        p = syncctl(self.config, "doctor")
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, ATTENTION, out)
        self.assertNotIn("no such table", out)
        for d in DAEMONS:
            self.assertIn("%s WARNING  started: no run has happened yet" % d.ljust(13), out)
            self.assertIn("systemctl enable --now %s.service %s-run.timer" % (d, d), out)
        self.assertIn("(exit 8)", out)
        self.assertEqual(os.path.getsize(self.ops), 0, "doctor only reads")

    def test_doctor_json(self):
        p = syncctl(self.config, "doctor", "--json")
        self.assertEqual(p.returncode, ATTENTION, p.stdout + p.stderr)
        j = json.loads(p.stdout)
        self.assertEqual((j["status"], j["exit"]), ("warning", ATTENTION))
        self.assertEqual(sorted(x["daemon"] for x in j["jobs"]), sorted(DAEMONS))
        for job in j["jobs"]:
            self.assertEqual(job["health"], "never_started")
            self.assertEqual([f["check"] for f in job["findings"]], ["started"], job)


if __name__ == "__main__":
    unittest.main(verbosity=2)
