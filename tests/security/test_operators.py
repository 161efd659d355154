#!/usr/bin/python3
"""Operators and the daemons' directories (issue 13, items 3 and 11), on the layout the package makes.

The real sysusers.d file creates the users and groups (as the package does; system users stay, as on an install),
and the real tmpfiles.d file lays out a private root (systemd-tmpfiles --root, with this machine's users).  A
daemon runs as user tga-sync (group rtopacks-sync, umask 0007, as its unit), an operator is a temporary user in
rtopacks-ops, a stranger a temporary user in neither.  Then:

  * the operator can use syncctl (the socket) and read the run history in ops.db, while the daemon writes (WAL)
    and when it is stopped (no -wal file);
  * the operator cannot write ops.db or rtopacks.db, read rtopacks.db, or create, remove or replace anything in the
    state or the runtime directory (so no fake socket);
  * another daemon's user cannot remove or replace the socket either (sticky directory);
  * the stranger can neither connect nor read ops.db;
  * the daemon logs no false "cannot give ... to group" warning (the socket gets the operators' ACL at birth);
  * syncctl run by root refuses a socket that another user put in the daemon's place, and prints none of its
    answer.

On the code before the fix the operator was refused (the layout had no place for a separate group), the socket
warning was logged, and root's syncctl printed the fake daemon's answer.
"""

import grp
import os
import pwd
import shutil
import socket
import sqlite3
import stat
import subprocess
import threading
import unittest

import oskit
from harness import (BIN, REPO, Daemon, Server, Workdir, ctl, runs, wait_for,
                     write_config)

ITEMS_SERVER = os.path.join(REPO, "tests", "kit", "items_server.py")
SYNCCTL = os.path.join(BIN, "syncctl")
SCTL_FAILED, SCTL_DENIED = 1, 7


def as_user(name, fn, group=None):
    """Run fn() in a child process as user name (its groups from /etc/group); return (result, exception name)."""
    pw = pwd.getpwnam(name)

    def become():
        os.initgroups(name, pw.pw_gid)
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)

    def error(e):
        if isinstance(e, OSError):
            return None, "%s:%d" % (type(e).__name__, e.errno)
        return None, type(e).__name__ + ": " + str(e)
    return oskit.in_child(become, lambda: (fn(), None), error)


def run_as(name, argv):
    """A command as user name, with its groups, the daemons' umask."""
    return subprocess.run(["setpriv", "--reuid=" + name, "--regid=%d" % pwd.getpwnam(name).pw_gid, "--init-groups",
                           "--", "/bin/sh", "-c", 'umask 0007; exec "$@"', "sh"] + argv,
                          capture_output=True, text=True, timeout=120)


class UserDaemon(Daemon):
    """test-sync run as tga-sync with the unit's umask, its socket where syncctl looks for tga-sync's."""

    def __init__(self, config, wd, sock):
        super().__init__("test-sync", config, wd)
        self.sock = sock

    def command(self, args, once=False):
        return (["setpriv", "--reuid=tga-sync", "--regid=rtopacks-sync", "--init-groups", "--", "/bin/sh", "-c",
                 'umask 0007; exec "$@"', "sh"] + super().command(args, once))

    def socket_path(self):
        return self.sock


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv") and shutil.which("useradd"),
                     "needs root, setpriv and useradd (creates users)")
class OperatorsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        p = subprocess.run(["systemd-sysusers", os.path.join(REPO, "systemd", "sysusers.conf")],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        tag = "%05d" % (os.getpid() % 100000)
        cls.operator, cls.stranger = "rsop" + tag, "rsst" + tag
        cls.users = []
        for name, groups in ((cls.operator, ["--groups", "rtopacks-ops"]), (cls.stranger, [])):
            subprocess.run(["userdel", name], capture_output=True)
            p = subprocess.run(["useradd", "--no-create-home", "--no-user-group", "--gid", "nogroup",
                                "--shell", "/usr/sbin/nologin"] + groups + [name], capture_output=True, text=True)
            assert p.returncode == 0, p.stderr
            cls.users.append(name)
        cls.items = Server(ITEMS_SERVER, "--items", "30")

    @classmethod
    def tearDownClass(cls):
        cls.items.stop()
        for name in cls.users:
            subprocess.run(["userdel", name], capture_output=True)

    def setUp(self):
        self.wd = Workdir("ops")
        self.root = self.wd.path
        os.chmod(self.root, 0o755)
        os.makedirs(os.path.join(self.root, "etc"))
        for f in ("passwd", "group"):
            shutil.copy("/etc/" + f, os.path.join(self.root, "etc", f))
        self.tmpfiles()
        self.state = os.path.join(self.root, "var/lib/rtopacks-sync")
        self.rundir = os.path.join(self.root, "run/rtopacks-sync")
        self.ops = os.path.join(self.state, "ops.db")
        self.corpus = os.path.join(self.state, "rtopacks.db")
        self.sock = os.path.join(self.rundir, "tga-sync.sock")
        self.config = os.path.join(self.root, "etc/rtopacks-sync/sync.conf")
        write_config(self.config, {
            "paths": {"state_dir": self.state, "spool_dir": self.state, "metrics_dir": self.wd.file("nometrics"),
                      "busy_timeout": "5s"},
            "control": {"socket_dir": self.rundir, "operators_group": "rtopacks-ops"},
            "test-sync": {"url": self.items.url, "page_size": 10, "socket": self.sock},
        })
        os.chown(self.config, 0, grp.getgrnam("rtopacks-sync").gr_gid)
        os.chmod(self.config, 0o640)
        self.tmpfiles()     # the ACL line for sync.conf, as the postinst does once the file exists
        self.d = UserDaemon(self.config, self.wd, self.sock).start()

    def tearDown(self):
        if self.d.alive():
            self.d.stop()
        self.wd.cleanup()

    def tmpfiles(self):
        p = subprocess.run(["systemd-tmpfiles", "--root=" + self.root, "--create",
                            os.path.join(REPO, "systemd", "tmpfiles.conf")], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)

    def syncctl_as(self, user, *args):
        return run_as(user, [SYNCCTL, "-c", self.config] + list(args))

    def run_a_cycle(self):
        r = ctl(self.sock, "trigger")
        self.assertTrue(r["ok"], r)
        wait_for(lambda: runs(self.ops) and runs(self.ops)[-1]["status"] == "complete", timeout=60,
                 what="the run to complete")

    def test_layout(self):
        st = os.stat(self.rundir)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o3770, "setgid and sticky, not writable by others")
        self.assertEqual(stat.S_IMODE(os.stat(self.state).st_mode), 0o2770)
        self.assertEqual(stat.S_IMODE(os.stat(self.ops).st_mode), 0o664)
        self.assertEqual(stat.S_IMODE(os.stat(self.corpus).st_mode), 0o660)
        s = os.lstat(self.sock)
        self.assertTrue(stat.S_ISSOCK(s.st_mode))
        self.assertEqual(s.st_uid, pwd.getpwnam("tga-sync").pw_uid)
        self.assertEqual(stat.S_IMODE(s.st_mode), 0o660)
        self.assertIn("system.posix_acl_access", os.listxattr(self.sock), "the socket got the operators' ACL")

    def test_no_false_group_warning(self):
        log = self.d.read_log()
        self.assertNotIn("cannot give", log)
        self.assertNotIn("operators_group", log)

    def test_operator_uses_syncctl_and_reads_history(self):
        self.run_a_cycle()
        p = self.syncctl_as(self.operator, "status", "tga-sync")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # While the daemon runs, ops.db is in WAL mode with -wal and -shm that the operator may read.
        self.assertTrue(os.path.exists(self.ops + "-wal"))
        for f in (self.ops + "-wal", self.ops + "-shm"):
            self.assertEqual(stat.S_IMODE(os.stat(f).st_mode), 0o664, f)
        p = self.syncctl_as(self.operator, "runs")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("test_sync", p.stdout)
        run_id = runs(self.ops)[-1]["run_id"]
        p = self.syncctl_as(self.operator, "steps", run_id)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # With every daemon stopped there is no -wal, and the directory is not the operator's to create one in.
        self.assertEqual(self.d.stop(), 0, self.d.read_log())
        self.assertFalse(os.path.exists(self.ops + "-wal"))
        p = self.syncctl_as(self.operator, "runs")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(run_id, p.stdout)
        self.assertFalse(os.path.exists(self.ops + "-wal"), "a reader created a file in the state directory")

    def test_operator_writes_nothing(self):
        self.run_a_cycle()
        ops, corpus, state, rundir, sock = self.ops, self.corpus, self.state, self.rundir, self.sock

        def write_ops():
            con = sqlite3.connect(ops, timeout=2)
            con.execute("DELETE FROM sync_runs")
            con.commit()

        def fake_socket():
            s = socket.socket(socket.AF_UNIX)
            s.bind(os.path.join(rundir, "cricos-sync.sock"))

        cases = {
            "open ops.db for writing": lambda: os.open(ops, os.O_RDWR),
            "write ops.db with SQLite": write_ops,
            "read rtopacks.db": lambda: os.open(corpus, os.O_RDONLY),
            "create a file in the state directory": lambda: os.open(os.path.join(state, "x"), os.O_CREAT | os.O_WRONLY),
            "remove the lock file": lambda: os.unlink(os.path.join(state, "test-sync.lock")),
            "create a file in the runtime directory": lambda: os.open(os.path.join(rundir, "x"),
                                                                      os.O_CREAT | os.O_WRONLY),
            "remove the socket": lambda: os.unlink(sock),
            "bind a fake socket": fake_socket,
        }
        for what, fn in cases.items():
            with self.subTest(what):
                result, err = as_user(self.operator, fn)
                self.assertIsNotNone(err, "the operator could %s" % what)
        self.assertEqual(runs(self.ops)[-1]["status"], "complete")
        self.assertTrue(stat.S_ISSOCK(os.lstat(self.sock).st_mode))

    def test_another_daemon_cannot_replace_the_socket(self):
        sock, rundir = self.sock, self.rundir

        def replace():
            s = socket.socket(socket.AF_UNIX)
            fake = os.path.join(rundir, "fake.sock")
            s.bind(fake)
            try:
                os.rename(fake, sock)
            finally:
                os.unlink(fake)

        for fn in (lambda: os.unlink(sock), replace):
            result, err = as_user("cricos-sync", fn)
            self.assertEqual(err, "PermissionError:1", "the sticky bit keeps tga-sync's socket its own")
        self.assertTrue(ctl(self.sock, "status")["ok"])

    def test_stranger_is_kept_out(self):
        # sync.conf is not the stranger's to read: a copy of it, so that only the socket's permissions answer.
        conf = self.wd.file("stranger.conf")
        shutil.copy(self.config, conf)
        os.chmod(conf, 0o644)
        p = run_as(self.stranger, [SYNCCTL, "-c", conf, "status", "tga-sync"])
        self.assertEqual(p.returncode, SCTL_DENIED, p.stdout + p.stderr)
        result, err = as_user(self.stranger, lambda: os.open(self.ops, os.O_RDONLY))
        self.assertIsNotNone(err, "a stranger read ops.db")

    def test_syncctl_refuses_a_socket_of_another_user(self):
        """The attack of the issue: a socket in the daemon's place, answering with escape sequences."""
        self.d.stop()
        open_dir = self.wd.file("open")
        os.makedirs(open_dir)
        os.chmod(open_dir, 0o1777)      # a directory anyone may write: what the check is there for
        conf = write_config(self.wd.file("open.conf"), {"control": {"socket_dir": open_dir}})
        fake = os.path.join(open_dir, "tga-sync.sock")
        ready = os.path.join(open_dir, "fake.ready")
        server = r'''
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
s.listen(4)
open(sys.argv[2], "w").close()
while True:
    c, _ = s.accept()
    c.recv(65536)
    reply = {"v": 1, "ok": True, "result": {"daemon": "tga-sync", "state": "FAKE\x1b[2J\x1b[31mpwned",
             "run_id": "FAKE"}}
    c.sendall((json.dumps(reply) + "\n").encode())
    c.close()
'''
        proc = subprocess.Popen(["setpriv", "--reuid=" + self.stranger, "--regid=nogroup", "--clear-groups",
                                 "/usr/bin/python3", "-c", server, fake, ready])
        try:
            wait_for(lambda: os.path.exists(ready), what="the fake daemon to listen")
            p = subprocess.run([SYNCCTL, "-c", conf, "status", "tga-sync"], capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(p.returncode, SCTL_FAILED, p.stdout + p.stderr)
            self.assertNotIn("FAKE", p.stdout + p.stderr)
            self.assertNotIn("\x1b", p.stdout + p.stderr)
            self.assertIn("belongs to uid %d (%s)" % (pwd.getpwnam(self.stranger).pw_uid, self.stranger), p.stderr)
            self.assertIn("not tga-sync's socket", p.stderr)
        finally:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    unittest.main(verbosity=2)
