#!/usr/bin/python3
"""syncctl: --help documents every command, run history (tables and JSON) read while a daemon writes, and the
exit codes of trigger --wait, status and the history commands."""

import json
import os
import re
import signal
import subprocess
import time
import unittest

from harness import (BIN, Daemon, Server, SmtpSink, Workdir, base_config, ctl, runs, syncctl,
                     wait_for, write_config, REPO)

ITEMS_SERVER = os.path.join(REPO, "tests", "kit", "items_server.py")


class SyncctlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.items = Server(ITEMS_SERVER, "--items", "30")
        cls.smtp = SmtpSink()
        cls.wd = Workdir("sctl")
        cls.config = write_config(cls.wd.file("sync.conf"), base_config(cls.wd, cls.smtp.port, {
            "test-sync": {"url": cls.items.url, "page_size": 10, "step_retries": 0, "retries": 0}}))
        cls.ops = os.path.join(cls.wd.state, "ops.db")
        cls.d = Daemon("test-sync", cls.config, cls.wd).start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.items.stop()
        cls.smtp.stop()
        cls.wd.cleanup()

    def setUp(self):
        self.items.post("/_fake/fault/clear")

    def sctl(self, *args, **kw):
        return syncctl(self.config, *args, **kw)

    def test_help_documents_every_command_and_the_exit_codes(self):
        p = self.sctl("--help")
        self.assertEqual(p.returncode, 0)
        commands = re.findall(r"(?m)^  ([a-z]+) ", p.stdout.split("Commands:")[1].split("Options:")[0])
        for cmd in ("status", "trigger", "cancel", "runs", "steps", "cursor"):
            self.assertIn(cmd, commands)
        # Every listed command has a usage line and a help line.
        block = p.stdout.split("Commands:")[1].split("Options:")[0]
        self.assertEqual(len(re.findall(r"(?m)^      \S", block)), len(commands))
        for code in range(0, 8):
            self.assertRegex(p.stdout, r"(?m)^  %d  \S" % code)
        self.assertEqual(self.sctl("frobnicate").returncode, 2)
        self.assertEqual(syncctl(self.config).returncode, 2)

    def test_trigger_wait_exit_codes_and_history(self):
        # complete: 0, and the output says so
        p = self.sctl("trigger", "test-sync", "--wait", timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"run test_sync-\S+ complete after")
        run_id = re.search(r"started run (\S+)", p.stdout).group(1)

        # runs: a table, and valid JSON with the run in it
        p = self.sctl("runs")
        self.assertEqual(p.returncode, 0)
        self.assertIn("RUN ID", p.stdout.splitlines()[0])
        self.assertIn(run_id, p.stdout)
        p = self.sctl("runs", "--json")
        self.assertEqual(p.returncode, 0)
        data = json.loads(p.stdout)
        self.assertIsInstance(data, list)
        mine = [r for r in data if r["run_id"] == run_id][0]
        self.assertEqual(mine["status"], "complete")
        self.assertEqual(mine["records_in"], 30)
        self.assertEqual(mine["summary"]["added"], 30)
        self.assertIs(mine["full"], False)
        # the global --json works too, and filters narrow the list
        self.assertEqual(json.loads(self.sctl("--json", "runs", "--limit", "1").stdout)[0]["run_id"],
                         data[0]["run_id"])
        self.assertEqual(json.loads(self.sctl("runs", "--json", "--status", "failed").stdout),
                         [r for r in data if r["status"] == "failed"])
        self.assertEqual(json.loads(self.sctl("runs", "--json", "--sync-type", "tga-sync").stdout), [])
        self.assertEqual(json.loads(self.sctl("runs", "--json", "--since", "2999-01-01").stdout), [])
        self.assertTrue(json.loads(self.sctl("runs", "--json", "--since", "1d").stdout))
        self.assertEqual(self.sctl("runs", "--status", "sideways").returncode, 2)
        self.assertEqual(self.sctl("runs", "--since", "last tuesday").returncode, 2)
        self.assertEqual(self.sctl("runs", "--limit", "0").returncode, 2)

        # steps: table and JSON
        p = self.sctl("steps", run_id)
        self.assertEqual(p.returncode, 0)
        for phase in ("init", "fetch_items", "aggregate", "write_snapshot", "notify"):
            self.assertRegex(p.stdout, r"(?m)^%s\s+complete" % phase)
        steps = json.loads(self.sctl("steps", run_id, "--json").stdout)
        self.assertEqual([s["step"] for s in steps], ["init", "fetch_items", "aggregate", "write_snapshot", "notify"])
        self.assertEqual(steps[1]["records_in"], 30)
        self.assertEqual(self.sctl("steps", "no-such-run").returncode, 1)

        # cursor
        p = self.sctl("cursor", "test-sync")
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"(?m)^cycle_phase\s+done$")
        self.assertEqual(json.loads(self.sctl("cursor", "test-sync", "--json").stdout)["cycle_phase"], "done")

        # failed: 1 (one try, no retries in this config)
        self.items.fault("items", "http500", count=1)
        p = self.sctl("trigger", "test-sync", "--wait", timeout=60)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("failed", p.stdout)
        self.assertIn("HTTP 500", p.stdout)
        # ... and the unfinished cycle shows in status and cursor, and resumes
        p = self.sctl("status", "test-sync")
        self.assertEqual(p.returncode, 0)
        self.assertIn("unfinished cycle at fetch_items", p.stdout)
        self.assertEqual(self.sctl("trigger", "test-sync", "--wait", timeout=60).returncode, 0)

    def test_trigger_while_running_and_status(self):
        # Pages slow enough that the run is still going through every check below (several syncctl processes under
        # ASan), and under low_speed_time (3 s): 0.3 s a page let it finish first.  Cleared before the --wait.
        self.items.fault("items", "slow", count=-1, delay=1.5)
        p = self.sctl("trigger", "test-sync")
        self.assertEqual(p.returncode, 0, p.stderr)
        run_id = re.search(r"started run (\S+)", p.stdout).group(1)
        p = self.sctl("trigger", "test-sync")
        self.assertEqual(p.returncode, 6)
        self.assertIn("already running", p.stderr)
        self.assertEqual(p.stdout.strip(), run_id)
        p = self.sctl("status", "test-sync")
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"test-sync\s+running\s+%s: phase \w+" % re.escape(run_id))
        st = json.loads(self.sctl("status", "test-sync", "--json").stdout)
        self.assertEqual(st["state"], "running")
        self.assertEqual(st["run"]["run_id"], run_id)
        # History reads while the daemon writes: read-only, no waiting on its transactions.
        t0 = time.monotonic()
        for _ in range(5):
            p = self.sctl("runs", "--json", "--limit", "3")
            self.assertEqual(p.returncode, 0)
            self.assertEqual(json.loads(p.stdout)[0]["status"], "running", p.stdout)
        self.assertLess(time.monotonic() - t0, 5)
        # --wait on a running job follows it to its end.
        self.items.post("/_fake/fault/clear")
        p = self.sctl("trigger", "test-sync", "--wait", timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("already running: %s; following it" % run_id, p.stdout)

    def test_unreachable_daemon(self):
        p = self.sctl("status", "cricos-sync")
        self.assertEqual(p.returncode, 5)
        self.assertIn("not running", p.stderr)
        p = self.sctl("trigger", "cricos-sync")
        self.assertEqual(p.returncode, 5)
        p = self.sctl("status")          # all daemons: informative, not an error
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"(?m)^tga-sync\s+not running$")
        self.assertEqual(self.sctl("trigger", "no-such-daemon").returncode, 2)

    def test_bad_config_is_reported(self):
        bad = self.wd.file("bad.conf")
        with open(bad, "w") as f:
            f.write("[control]\nsocket_dir = relative\n")
        p = syncctl(bad, "runs")
        self.assertEqual(p.returncode, 1)
        self.assertIn("bad.conf:2: [control] socket_dir: expected an absolute path", p.stderr)


class OutcomeExitCodesTest(unittest.TestCase):
    """The exit codes README.md documents beyond 0, 1, 2, 5 and 6: 3 (partial), 4 (cancelled, or the daemon stopped),
    7 (permission denied), and the daemon's own --once 4 (stopped mid-run).  A daemon of its own: the partial case
    leaves its items server with a rejected record for good."""

    def setUp(self):
        self.wd = Workdir("sctlx")
        self.items = Server(ITEMS_SERVER, "--items", "30", wd=self.wd)
        self.config = write_config(self.wd.file("sync.conf"), base_config(self.wd, None, {
            "test-sync": {"url": self.items.url, "page_size": 10, "step_retries": 0, "retries": 0}}))
        self.ops = os.path.join(self.wd.state, "ops.db")
        self.d = Daemon("test-sync", self.config, self.wd)

    def tearDown(self):
        self.d.stop()
        self.items.stop()
        self.wd.cleanup()

    def running(self):
        """Wait for the positive signal that a run is in progress: its row says running."""
        return wait_for(lambda: [r for r in runs(self.ops) if r["status"] == "running"], timeout=30,
                        what="a running run")[0]

    def test_partial_is_3(self):
        self.d.start()
        self.items.post("/_fake/mutate", {"action": "bad_item"})
        p = syncctl(self.config, "trigger", "test-sync", "--wait", timeout=60)
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertEqual(runs(self.ops)[-1]["status"], "partial")

    def test_cancelled_is_4(self):
        self.d.start()
        self.items.fault("items", "slow", count=-1, delay=0.3)
        waiter = subprocess.Popen([os.path.join(BIN, "syncctl"), "-c", self.config, "trigger", "test-sync",
                                   "--wait"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.running()
        p = syncctl(self.config, "cancel", "test-sync", timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        out = waiter.communicate(timeout=60)[0]
        self.assertEqual(waiter.returncode, 4, out)
        self.assertEqual(runs(self.ops)[-1]["status"], "cancelled")

    def test_daemon_stopped_is_4(self):
        self.d.start()
        self.items.fault("items", "slow", count=-1, delay=0.3)
        waiter = subprocess.Popen([os.path.join(BIN, "syncctl"), "-c", self.config, "trigger", "test-sync",
                                   "--wait"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.running()
        self.assertEqual(self.d.stop(), 0, self.d.read_log()[-2000:])
        out = waiter.communicate(timeout=60)[0]
        self.assertEqual(waiter.returncode, 4, out)

    def test_once_stopped_is_4(self):
        self.items.fault("items", "slow", count=-1, delay=0.3)
        e = dict(os.environ)
        e.pop("NOTIFY_SOCKET", None)
        with open(self.d.log_path, "ab") as log:
            p = subprocess.Popen(self.d.command((), once=True), stdout=log, stderr=log, env=e)
            self.running()
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(60), 4, self.d.read_log()[-2000:])

    def test_permission_denied_is_7(self):
        self.d.start()
        # Another user, not in the operators group (none is configured): the socket is reachable, the peer check
        # refuses.
        for path in (self.wd.path, self.wd.run, self.config):
            os.chmod(path, 0o755)
        os.chmod(self.d.socket_path(), 0o666)

        def stranger():
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
        p = subprocess.run([os.path.join(BIN, "syncctl"), "-c", self.config, "status", "test-sync"],
                           capture_output=True, text=True, timeout=60, preexec_fn=stranger)
        self.assertEqual(p.returncode, 7, p.stdout + p.stderr)
        self.assertIn("permission denied", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
