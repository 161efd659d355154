#!/usr/bin/python3
"""Upgrading the package (issue 13, item 12).

* The postinst, run by dpkg as `postinst configure OLD-VERSION`, restarts the daemons that run (systemctl
  try-restart of the three services, never the timers' oneshots, never a start of a stopped daemon), and on a
  fresh install (`postinst configure`) enables and starts nothing.  It warns about operators_group = rtopacks-sync
  left from an older install.  The generated script runs here with stand-ins for systemctl, systemd-sysusers,
  systemd-tmpfiles and install that only record their arguments (nothing on this machine is touched).
* What the restart does to a cycle in progress: SIGTERM lets the running step finish (stop_grace), the run ends
  'cancelled' ("stopped"), and the new daemon resumes the cycle at its last commit by itself and completes it,
  without redoing the committed pages.

On the code before the fix the postinst never restarted anything on an upgrade.
"""

import os
import shutil
import stat
import subprocess
import tempfile
import unittest

from harness import (BIN, REPO, Daemon, Server, Workdir, base_config, ctl, cursor, query, runs,
                     wait_for, write_config)

BUILD = os.path.dirname(BIN)
POSTINST = os.path.join(BUILD, "debian", "postinst")
ITEMS_SERVER = os.path.join(REPO, "tests", "kit", "items_server.py")
SERVICES = ["cricos-sync.service", "qb-reconcile.service", "tga-sync.service"]


class PostinstTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rs-postinst-")
        self.fakes = os.path.join(self.tmp, "bin")
        os.makedirs(self.fakes)
        self.log = os.path.join(self.tmp, "calls")
        for prog in ("systemctl", "systemd-sysusers", "systemd-tmpfiles", "install"):
            path = os.path.join(self.fakes, prog)
            with open(path, "w") as f:
                f.write('#!/bin/sh\necho "%s $*" >> "%s"\nexit 0\n' % (prog, self.log))
            os.chmod(path, 0o755)
        self.systemd_dir = os.path.join(self.tmp, "run-systemd-system")
        os.makedirs(self.systemd_dir)
        self.conf = os.path.join(self.tmp, "sync.conf")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def run_postinst(self, *args, systemd=True):
        with open(POSTINST) as f:
            text = f.read()
        text = text.replace("/run/systemd/system", self.systemd_dir if systemd else self.tmp + "/none")
        text = text.replace("/etc/rtopacks-sync/sync.conf", self.conf)
        script = os.path.join(self.tmp, "postinst")
        with open(script, "w") as f:
            f.write(text)
        env = dict(os.environ, PATH=self.fakes + ":/usr/bin:/bin")
        p = subprocess.run(["/bin/sh", "-e", script] + list(args), capture_output=True, text=True, env=env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        calls = open(self.log).read().splitlines() if os.path.exists(self.log) else []
        return calls, p.stderr

    def test_upgrade_restarts_running_daemons(self):
        with open(self.conf, "w") as f:
            f.write("[control]\noperators_group = rtopacks-sync\n")
        calls, err = self.run_postinst("configure", "0.0.9")
        restarts = [c for c in calls if c.startswith("systemctl try-restart")]
        self.assertEqual(len(restarts), 1, calls)
        self.assertEqual(sorted(restarts[0].split()[2:]), SERVICES)
        self.assertLess(calls.index("systemctl daemon-reload"), calls.index(restarts[0]), "reload, then restart")
        self.assertFalse([c for c in calls if " start " in c or " enable" in c or c.startswith("install")], calls)
        self.assertIn("operators_group = rtopacks-sync", err)
        self.assertIn("rtopacks-ops", err)

    def test_fresh_install_starts_nothing(self):
        calls, err = self.run_postinst("configure")
        self.assertIn("systemctl daemon-reload", calls)
        self.assertFalse([c for c in calls if c.startswith("systemctl") and c != "systemctl daemon-reload"], calls)
        self.assertTrue([c for c in calls if c.startswith("install ")], "sync.conf from the sample")
        tmpfiles = [c for c in calls if c.startswith("systemd-tmpfiles")]
        self.assertEqual(len(tmpfiles), 2, "again once sync.conf exists (its ACL)")
        self.assertNotIn("operators_group", err)

    def test_no_systemd_no_systemctl(self):
        with open(self.conf, "w") as f:
            f.write("")
        calls, _ = self.run_postinst("configure", "0.0.9", systemd=False)
        self.assertFalse([c for c in calls if c.startswith("systemctl")], calls)


class RestartResumesTest(unittest.TestCase):
    """What `systemctl restart` (SIGTERM, then a new process) does to a cycle in progress."""

    def test_running_cycle_survives_a_restart(self):
        items = Server(ITEMS_SERVER, "--items", "60")
        wd = Workdir("restart")
        try:
            cfg = base_config(wd, None, {"test-sync": {"url": items.url, "page_size": 10, "stop_grace": "20s"}})
            conf = write_config(wd.file("sync.conf"), cfg)
            ops = os.path.join(wd.state, "ops.db")
            d = Daemon("test-sync", conf, wd).start()
            items.fault("items", "slow", count=-1, delay=0.3)
            self.assertTrue(ctl(d.socket_path(), "trigger")["ok"])
            wait_for(lambda: (cursor(ops, "test_sync") or {}).get("phase_cursor") == "page=2", timeout=30,
                     what="the first page to commit")
            self.assertEqual(d.stop(), 0, d.read_log())
            first = runs(ops)[-1]
            self.assertEqual(first["status"], "cancelled", first)
            self.assertIn("stopped", first["error"])
            at_stop = cursor(ops, "test_sync")
            self.assertNotEqual(at_stop["cycle_phase"], "done")
            fetched = "SELECT records_in FROM sync_steps WHERE run_id = ? AND step = 'fetch_items'"
            before = query(ops, fetched, (first["run_id"],))[0][0]
            self.assertGreater(before, 0, "the step in progress at SIGTERM finished and committed")
            items.post("/_fake/fault/clear")
            d = Daemon("test-sync", conf, wd).start()      # the new process: nobody triggers it
            wait_for(lambda: runs(ops)[-1]["status"] == "complete", timeout=60, what="the resumed run to complete")
            last = runs(ops)[-1]
            self.assertEqual(last["resumed_from"], first["run_id"])
            self.assertEqual(cursor(ops, "test_sync")["cycle_phase"], "done")
            # The resumed run fetched what was left after the last commit: no page twice, none lost.
            self.assertEqual(before + query(ops, fetched, (last["run_id"],))[0][0], 60)
            self.assertEqual(d.stop(), 0, d.read_log())
        finally:
            items.stop()
            wd.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
