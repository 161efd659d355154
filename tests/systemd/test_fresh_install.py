#!/usr/bin/python3
"""A fresh install, as the package leaves it (issue 13, item 10): tmpfiles.d has made ops.db an empty file and no
daemon has started yet.  `syncctl doctor` says for every job that no run has happened yet and exits 8 (attention:
warnings only, as the README documents), in text and in JSON; it prints no SQL error.

On the code before the fix it exited 9 with three "no such table: sync_runs" problems.
"""

import json
import os
import unittest

from harness import Workdir, syncctl, write_config, REPO, SCHEDULES

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

    def history_commands(self):
        """runs (text and JSON), steps and cursor, each with its exit code and everything it printed."""
        out = {}
        for name, args in (("runs", ("runs",)), ("runs_json", ("--json", "runs")), ("steps", ("steps", "r-1")),
                           ("cursor", ("cursor", "tga-sync"))):
            p = syncctl(self.config, *args)
            out[name] = (p.returncode, p.stdout, p.stderr)
        return out

    def check_history_commands(self):
        got = self.history_commands()
        for name, (rc, stdout, stderr) in got.items():
            self.assertNotIn("no such table", stdout + stderr, name)
            self.assertNotIn("cannot open", stdout + stderr, name)
            self.assertNotIn("SELECT", stdout + stderr, name)
        # No history is an empty list, not an error.
        self.assertEqual(got["runs"][:2], (0, "no runs: no daemon has started with this configuration yet "
                                              "([paths] state_dir has no run history)\n"))
        self.assertEqual(got["runs_json"][:2], (0, "[]\n"))
        self.assertEqual(got["steps"][0], 1)
        self.assertIn("no run r-1: no daemon has started", got["steps"][2])
        self.assertEqual(got["cursor"][0], 1)
        self.assertIn("tga-sync has no cursor yet: no daemon has started", got["cursor"][2])

    def test_history_commands_on_the_empty_file(self):
        self.check_history_commands()
        self.assertEqual(os.path.getsize(self.ops), 0, "the history commands only read")

    def test_no_file_at_all_is_an_error_that_names_state_dir(self):
        # Not even tmpfiles.d's empty file: a wrong [paths] state_dir looks like this, so it is not "no runs yet".
        os.unlink(self.ops)
        for args in (("runs",), ("steps", "r-1"), ("cursor", "tga-sync"), ("doctor",)):
            p = syncctl(self.config, *args)
            self.assertEqual(p.returncode, 1, args)
            self.assertIn("is [paths] state_dir right", p.stderr, args)
        self.assertFalse(os.path.exists(self.ops), "nothing was created")


if __name__ == "__main__":
    unittest.main(verbosity=2)
