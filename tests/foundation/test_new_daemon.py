#!/usr/bin/python3
"""A daemon is one folder (issue 15): a copy of the source tree with tests/example-daemon/ added as
daemons/example-sync/, and no other file touched, builds a daemon that syncctl knows (help, status, doctor, its own
subcommand), whose config section every program accepts, and that checks, documents and runs its own key.

Builds syncctl and the example daemon only (no sanitizer, -O0, no tests), in a temporary directory."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import Daemon, Workdir, base_config, query, write_config, REPO

TEMPLATE = os.path.join(REPO, "tests", "example-daemon")


def source_files():
    """The tree's files as git sees them (tracked, and new ones not ignored); without git, everything but builds."""
    try:
        out = subprocess.run(["git", "-C", REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, check=True, timeout=60).stdout
        return [f for f in out.decode().split("\0") if f and os.path.isfile(os.path.join(REPO, f))]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for top, dirs, names in os.walk(REPO):
            rel = os.path.relpath(top, REPO)
            dirs[:] = [d for d in dirs if not (rel == "." and (d.startswith("build") or d == ".git"))
                       and d != "__pycache__"]
            files += [os.path.normpath(os.path.join(rel, n)) for n in names]
        return files


class NewDaemonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if shutil.which("cmake") is None:
            raise unittest.SkipTest("cmake is not installed")
        cls.tmp = tempfile.mkdtemp(prefix="rs-example-build-", dir="/tmp")
        cls.src = os.path.join(cls.tmp, "src")
        for f in source_files():
            os.makedirs(os.path.join(cls.src, os.path.dirname(f)), exist_ok=True)
            shutil.copy2(os.path.join(REPO, f), os.path.join(cls.src, f))
        # The one edit: a new folder.
        shutil.copytree(TEMPLATE, os.path.join(cls.src, "daemons", "example-sync"))
        build = os.path.join(cls.tmp, "build")
        env = dict(os.environ, MAKEFLAGS="-j2")
        for cmd in (["cmake", "-S", cls.src, "-B", build, "-DCMAKE_BUILD_TYPE=Debug", "-DCMAKE_C_FLAGS_DEBUG=-O0",
                     "-DRTOPACKS_TESTS=OFF", "-DRTOPACKS_SANITIZE=OFF", "-DRTOPACKS_FUZZ=OFF"],
                    ["cmake", "--build", build, "-j2", "--target", "syncctl", "example-sync"]):
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
            if p.returncode != 0:
                shutil.rmtree(cls.tmp, ignore_errors=True)
                raise AssertionError("%s failed:\n%s\n%s" % (" ".join(cmd), p.stdout[-4000:], p.stderr[-4000:]))
        cls.bin = os.path.join(build, "bin")
        cls.build = build

    @classmethod
    def tearDownClass(cls):
        if os.environ.get("RTOPACKS_KEEP_TEST_DIRS"):
            return
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.wd = Workdir("newd")
        # Every daemon's section at once: each program skips the ones that are not its own.
        self.conf = write_config(self.wd.file("sync.conf"), base_config(self.wd, None, {
            "example-sync": {"greeting": "g'day", "repeat": "3"},
            "tga-sync": {"step_retries": "2"}, "qb-reconcile": {"step_retries": "2"}}))

    def tearDown(self):
        self.wd.cleanup()

    def run_bin(self, name, *args):
        return subprocess.run([os.path.join(self.bin, name)] + list(args), capture_output=True, text=True,
                              timeout=60)

    def syncctl(self, *args):
        return self.run_bin("syncctl", "-c", self.conf, *args)

    def test_only_the_folder_was_added(self):
        for f in source_files():
            with open(os.path.join(REPO, f), "rb") as a, open(os.path.join(self.src, f), "rb") as b:
                self.assertEqual(a.read(), b.read(), f)
        self.assertEqual(sorted(os.listdir(os.path.join(self.src, "daemons", "example-sync"))),
                         sorted(os.listdir(TEMPLATE)))

    def test_syncctl_knows_it(self):
        p = self.syncctl("--help")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"DAEMON is [^\n]*example-sync[^\n]*\(or [^\n]*example_sync")
        self.assertIn("  example [ARGS]\n      The example daemon's own subcommand.", p.stdout)
        self.assertIn("the example's own check", p.stdout)
        p = self.syncctl("example", "x")
        self.assertEqual((p.returncode, p.stdout), (0, "example-sync: hello from syncctl (1 argument)\n"), p.stderr)
        # Not running: status says so, with the socket it tried.
        p = self.syncctl("status", "example-sync")
        self.assertEqual(p.returncode, 5, p.stderr)
        self.assertEqual(p.stdout, "example-sync  not running\n")
        self.assertIn("example-sync is not running (no one answers on %s/example-sync.sock)" % self.wd.run,
                      p.stderr)
        p = self.syncctl("status")
        self.assertIn("example-sync  not running\n", p.stdout)
        p = self.syncctl("runs", "--sync-type", "nope")
        self.assertEqual(p.returncode, 2)
        self.assertIn("example_sync", p.stderr)

    def test_it_runs_and_doctor_checks_it(self):
        p = self.run_bin("example-sync", "-n", "-c", self.conf)
        self.assertEqual((p.returncode, p.stdout), (0, "configuration OK\n"), p.stderr)
        d = Daemon(os.path.join(self.bin, "example-sync"), self.conf, self.wd)
        self.assertEqual(d.run_once(), 0, d.read_log())
        self.assertEqual(d.read_log().count("g'day"), 3)
        ops = os.path.join(self.wd.state, "ops.db")
        self.assertEqual(query(ops, "SELECT sync_type, status, records_in FROM sync_runs"),
                         [("example_sync", "complete", 3)])
        p = self.syncctl("--json", "doctor", "example-sync")
        jobs = json.loads(p.stdout)["jobs"]
        self.assertEqual([(j["daemon"], j["example"], j["last_run"]["status"]) for j in jobs],
                         [("example-sync", "example_sync", "complete")], p.stdout)
        p = self.syncctl("--json", "doctor")
        self.assertIn("example-sync", [j["daemon"] for j in json.loads(p.stdout)["jobs"]])

    def test_its_schedule_and_units_come_from_its_folder(self):
        units = os.path.join(self.build, "systemd")
        with open(os.path.join(units, "example-sync-run.timer")) as f:
            timer = f.read()
        self.assertIn("OnCalendar=*-*-* 06:15:00 Australia/Brisbane\n", timer)
        self.assertIn("Description=Example run (daily 06:15 AEST)\n", timer)
        with open(os.path.join(units, "example-sync.service")) as f:
            service = f.read()
        self.assertIn("Description=Example daemon (a template)\n", service)
        self.assertIn("LoadCredential=example-secret:rtopacks-sync.example-secret\n", service)
        self.assertIn("ExecStart=", service)
        with open(os.path.join(self.build, "schedules", "example-sync.schedule")) as f:
            self.assertIn("on_calendar = *-*-* 06:15:00 Australia/Brisbane", f.read())
        # doctor reads it from the build's schedules folder: the next run comes from its calendar.
        conf = write_config(self.wd.file("sched.conf"), base_config(self.wd, None, {
            "paths": {"schedules_dir": os.path.join(self.build, "schedules")}}))
        d = Daemon(os.path.join(self.bin, "example-sync"), conf, self.wd)
        self.assertEqual(d.run_once(), 0, d.read_log())
        p = self.run_bin("syncctl", "-c", conf, "--json", "doctor", "example-sync")
        job = json.loads(p.stdout)["jobs"][0]
        self.assertEqual(job["daemon"], "example-sync", p.stderr)
        self.assertRegex(job.get("next_local", ""), r"06:15", p.stdout)

    def test_its_own_section_and_key(self):
        p = self.run_bin("example-sync", "--help-config")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("[example-sync]", p.stdout)
        self.assertIn(";greeting = hello", p.stdout)
        self.assertIn(";repeat = 1", p.stdout)
        with open(self.wd.file("bad.conf"), "w") as f:
            f.write("[paths]\nstate_dir = %s\n[example-sync]\nrepeat = 11\nno_such_key = 1\n" % self.wd.state)
        p = self.run_bin("example-sync", "-n", "-c", self.wd.file("bad.conf"))
        self.assertEqual(p.returncode, 5)
        self.assertIn("bad.conf:4: [example-sync] repeat: 11 is out of range (1 to 10)", p.stderr)
        self.assertIn("no_such_key", p.stderr)
        # A section nobody registered is still an error (the list of sections is the daemons', not "anything").
        with open(self.wd.file("other.conf"), "w") as f:
            f.write("[paths]\nstate_dir = %s\n[no-such-sync]\nrepeat = 1\n" % self.wd.state)
        p = self.syncctl("-c", self.wd.file("other.conf"), "status")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no-such-sync", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
