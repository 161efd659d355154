#!/usr/bin/python3
"""The daemon skeleton's command line: -n, --help, --help-config, --version, configuration errors with FILE:LINE,
secrets from files or systemd credentials (never argv, never logged), and the journald log format."""

import os
import subprocess
import unittest

from harness import Daemon, Server, SmtpSink, Workdir, base_config, query, write_config, REPO, BIN

ITEMS_SERVER = os.path.join(REPO, "tests", "kit", "items_server.py")
TESTD = os.path.join(BIN, "test-sync")


def run(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([TESTD] + list(args), capture_output=True, text=True, timeout=60, env=e)


class DaemonCliTest(unittest.TestCase):
    def setUp(self):
        self.wd = Workdir("cli")

    def tearDown(self):
        self.wd.cleanup()

    def test_check_config(self):
        good = write_config(self.wd.file("good.conf"), base_config(self.wd, None, {"test-sync": {"url": "http://127.0.0.1:1/"}}))
        p = run("-n", "-c", good)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "configuration OK\n")
        with open(self.wd.file("bad.conf"), "w") as f:
            f.write("[paths]\nstate_dir = %s\n[test-sync]\npage_size = 0\nurl = ftp://x\n[smtp]\ntls = maybe\n"
                    % self.wd.state)
        p = run("-n", "-c", self.wd.file("bad.conf"))
        self.assertEqual(p.returncode, 5)
        self.assertIn("bad.conf:4: [test-sync] page_size: 0 is out of range (1 to 1000)", p.stderr)
        self.assertIn("bad.conf:5: [test-sync] url: expected an https:// URL, got 'ftp://x'", p.stderr)
        self.assertIn("bad.conf:7: [smtp] tls: expected one of starttls|implicit|none, got 'maybe'", p.stderr)
        self.assertIn("configuration not valid", p.stderr)
        p = run("-n", "-c", self.wd.file("missing.conf"))
        self.assertEqual(p.returncode, 5)
        self.assertIn("missing.conf: cannot open", p.stderr)

    def test_help_version_and_config_sample(self):
        p = run("--help")
        self.assertEqual(p.returncode, 0)
        for opt in ("-c FILE", "-f", "-n", "--once", "--help-config", "Exit status with --once"):
            self.assertIn(opt, p.stdout)
        self.assertRegex(run("--version").stdout, r"^test-sync \d+\.\d+\.\d+\n$")
        sample = run("--help-config").stdout
        for section in ("[paths]", "[control]", "[smtp]", "[http]", "[test-sync]"):
            self.assertIn(section, sample)
        self.assertIn(";step_retries = 3", sample)
        self.assertEqual(run("--bogus").returncode, 2)
        self.assertEqual(run("extra-argument").returncode, 2)

    def test_secrets_come_from_files_or_credentials_and_never_leak(self):
        items = Server(ITEMS_SERVER, "--items", "5", wd=self.wd)
        secret = "pw-Zq8vYt3LmW0x"
        with open(self.wd.file("smtp.pw"), "w") as f:
            f.write(secret + "\n")
        os.chmod(self.wd.file("smtp.pw"), 0o600)
        # A mail server that refuses: the failure text goes to the log, the run row and the step row.
        cfg = base_config(self.wd, 1, {"test-sync": {"url": items.url},
                                       "smtp": {"username": "sync", "password_file": self.wd.file("smtp.pw")}})
        config = write_config(self.wd.file("sync.conf"), cfg)
        d = Daemon("test-sync", config, self.wd)
        self.assertEqual(d.run_once(), 0)
        ops = os.path.join(self.wd.state, "ops.db")
        dump = repr(query(ops, "SELECT * FROM sync_runs")) + repr(query(ops, "SELECT * FROM sync_steps")) + \
            repr(query(ops, "SELECT * FROM mail_outbox"))
        self.assertNotIn(secret, d.read_log())
        self.assertNotIn(secret, dump)
        self.assertNotIn(secret, open(config).read())
        # With systemd's LoadCredential=, the credential wins over the file named in the config.  The file stays in
        # place with another password, and the mail server accepts only the credential's: the mail gets through
        # only if the daemon logged in with the credential, and it never tried the file's password.
        creds = self.wd.file("creds")
        os.mkdir(creds)
        with open(os.path.join(creds, "smtp-password"), "w") as f:
            f.write("pw-from-credential-store")
        smtp = SmtpSink(logins={"sync": "pw-from-credential-store"})
        self.addCleanup(smtp.stop)
        cfg["smtp"]["url"] = "smtp://127.0.0.1:%d" % smtp.port
        write_config(config, cfg)
        self.assertEqual(d.run_once(env={"CREDENTIALS_DIRECTORY": creds}), 0, d.read_log())
        # Two mails: this run's and the one the first run left queued.
        self.assertEqual(len(smtp.wait(2)), 2)
        self.assertEqual(set(smtp.auth_attempts), {("sync", "pw-from-credential-store")})
        self.assertEqual(query(ops, "SELECT DISTINCT status FROM mail_outbox"), [("sent",)])
        # Without the credential the file's password is the one sent (and this server refuses it).
        self.assertEqual(d.run_once(), 0, d.read_log())
        self.assertIn(("sync", secret), smtp.auth_attempts)
        self.assertEqual(len(smtp.received()), 2)
        os.remove(self.wd.file("smtp.pw"))
        # No credential and no file: the daemon refuses to start and says how to give the secret.
        p = run("-f", "--once", "-c", config)
        self.assertEqual(p.returncode, 5)
        self.assertIn("smtp.pw", p.stderr)
        items.stop()

    def test_world_readable_secret_is_refused(self):
        # A secret file named in the config is for its owner only (issue 13, item 5): tests/security/
        # test_config_files.py has the other modes.
        with open(self.wd.file("smtp.pw"), "w") as f:
            f.write("pw-readable-by-all")
        os.chmod(self.wd.file("smtp.pw"), 0o644)
        cfg = base_config(self.wd, None, {"test-sync": {"url": "http://127.0.0.1:1/"},
                                          "smtp": {"username": "u", "password_file": self.wd.file("smtp.pw")}})
        config = write_config(self.wd.file("sync.conf"), cfg)
        p = run("-f", "--once", "-c", config)
        self.assertEqual(p.returncode, 5, p.stderr)
        self.assertIn("smtp.pw is open to every user (mode 0644): a secret file is for its owner only; chmod 0600",
                      p.stderr)

    def test_journald_log_lines_carry_a_priority(self):
        # Under systemd, JOURNAL_STREAM names the stream connected to stderr: "<N>message" lines, no time.
        good = write_config(self.wd.file("good.conf"), base_config(self.wd, None, {
            "test-sync": {"url": "http://127.0.0.1:1/", "retries": 0, "step_retries": 0}}))
        log = self.wd.file("journal.log")
        with open(log, "w") as f:
            st = os.fstat(f.fileno())
            subprocess.run([TESTD, "-f", "--once", "-c", good], stdout=subprocess.DEVNULL, stderr=f, timeout=60,
                           env=dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino)))
        lines = open(log).read().splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<[3-7]>")
        self.assertTrue(any(line.startswith("<4>") for line in lines), lines)   # the failed run warns
        self.assertTrue(any(line.startswith("<6>") for line in lines), lines)


if __name__ == "__main__":
    unittest.main(verbosity=2)
