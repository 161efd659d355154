#!/usr/bin/python3
"""Who may write the configuration and read the secrets (issue 13, item 5).

The configuration decides where the credentials go, so a configuration file that another user can write, or that
another non-root user owns, is refused: by the daemons (at start and with -n) and by syncctl, each time with the
file and the fix in the message.  A secret file named in the configuration (password_file, client_secret_file) is
refused when its group or other users have any access to it.  Root-owned 0640/0644 and the daemon's own 0600 files
pass.  (The tests run as root: "another user" is nobody, uid 65534.)
"""

import os
import unittest

from harness import Workdir, base_config, run_bin, write_config

NOBODY = 65534


@unittest.skipUnless(os.geteuid() == 0, "needs root to give files to another user")
class ConfigFileTest(unittest.TestCase):
    def setUp(self):
        self.wd = Workdir("cfgfiles")
        self.addCleanup(self.wd.cleanup)

    def config(self, name, mode=0o644, uid=0, gid=0, extra=None):
        own = {"test-sync": {"url": "http://127.0.0.1:1/", "retries": 0, "step_retries": 0}}
        sections = base_config(self.wd, None, dict(own, **(extra or {})))
        path = write_config(self.wd.file(name), sections)
        os.chown(path, uid, gid)
        os.chmod(path, mode)
        return path

    def assert_refused(self, path, *needles):
        for args in (["-n", "-c", path], ["-f", "--once", "-c", path]):
            p = run_bin("test-sync", *args)
            self.assertEqual(p.returncode, 5, "%s: %s" % (args, p.stderr))
            for n in needles:
                self.assertIn(n, p.stderr)
            self.assertIn(path, p.stderr)

    def test_config_file_others_can_write_is_refused(self):
        path = self.config("world.conf", 0o646)
        self.assert_refused(path, "writable by every user (mode 0646)", "chmod 0640 %s" % path)
        # syncctl reads the same file (socket paths): it refuses it too.
        p = run_bin("syncctl", "-c", path, "status")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("writable by every user", p.stderr)

    def test_config_file_its_group_can_write_is_refused_unless_root_group(self):
        path = self.config("group.conf", 0o664, gid=NOBODY)
        self.assert_refused(path, "writable by its group (mode 0664)")
        ok = self.config("rootgroup.conf", 0o664, gid=0)
        p = run_bin("test-sync", "-n", "-c", ok)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_config_file_owned_by_another_user_is_refused(self):
        path = self.config("nobody.conf", 0o644, uid=NOBODY)
        self.assert_refused(path, "owned by uid %d, neither root nor this program's user" % NOBODY,
                            "chown root %s" % path)

    def test_root_owned_config_readable_by_the_daemons_group_passes(self):
        path = self.config("good.conf", 0o640, gid=NOBODY)
        p = run_bin("test-sync", "-n", "-c", path)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "configuration OK\n")

    def test_secret_file_open_to_group_or_others_is_refused(self):
        pw = self.wd.file("smtp.pw")
        with open(pw, "w") as f:
            f.write("pw-S3cr3t-for-the-mailer\n")
        path = self.config("secret.conf", extra={"smtp": {"url": "smtp://127.0.0.1:1", "tls": "none",
                                                          "username": "u", "password_file": pw}})
        for mode, who in ((0o640, "its group"), (0o604, "every user"), (0o620, "its group"), (0o644, "every user")):
            with self.subTest(mode=oct(mode)):
                os.chmod(pw, mode)
                p = run_bin("test-sync", "-f", "--once", "-c", path)
                self.assertEqual(p.returncode, 5, p.stderr)
                self.assertIn("secret.conf:", p.stderr)
                self.assertIn("[smtp] password_file: %s is open to %s (mode %04o): a secret file is for its owner "
                              "only; chmod 0600 %s" % (pw, who, mode, pw), p.stderr)
                self.assertNotIn("S3cr3t", p.stderr)
        for mode in (0o600, 0o400):
            with self.subTest(mode=oct(mode)):
                os.chmod(pw, mode)
                p = run_bin("test-sync", "-f", "--once", "-c", path)
                self.assertNotIn("password_file", p.stderr)
                self.assertNotIn("secret file", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
