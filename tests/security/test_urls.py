#!/usr/bin/python3
"""Every upstream URL key goes through one URL policy, and `-n` refuses what start-up refuses (issue 13, items 1
and 8).

URL policy: no userinfo (http://127.0.0.1@HOST/ goes to HOST), https everywhere except a host that is literally
loopback (127.0.0.0/8, ::1, localhost): "127.anything" and "localhost.anything" are names DNS resolves anywhere.
Each daemon's URL keys are tried with `-n` (nothing is sent: 192.0.2.2 and *.invalid appear only in configs that
must be refused).  The userinfo bypass is also run for real with --once against "another host", a listener on
127.0.0.2 that records whether anything (the TGA password) arrived.

-n: a missing, empty, oversized or directory password_file, a missing username for the SOAP source, a missing
client secret, a bad cricos timezone_offset, and an SMTP password file that is missing: each is refused by -n (exit
5) with the message start-up gives, the key named once.
"""

import os
import unittest

from harness import Daemon, Workdir, base_config, run_bin, write_config
from url_upstreams import Recorder

SECRET = "UrlPolicyPw-S3cr3t-51c0"
QB_CLIENT_ID = "ABfakeQBOclient0000000000000000000000000000000000"


class Base(unittest.TestCase):
    def setUp(self):
        self.wd = Workdir("urls")
        self.addCleanup(self.wd.cleanup)
        self.pw = self.secret("tga-password", SECRET)
        self.qb_secret = self.secret("qb-client-secret", "QbSecret-" + SECRET)
        self.n = 0

    def secret(self, name, value, mode=0o600):
        path = self.wd.file(name)
        with open(path, "w") as f:
            f.write(value + "\n")
        os.chmod(path, mode)
        return path

    def good(self, daemon):
        return {
            "tga-sync": {"base_url": "https://ws.example.invalid/Deewr.Tga.Webservices", "username": "WebService.Read",
                         "password_file": self.pw},
            "cricos-sync": {"base_url": "https://data.example.invalid/data"},
            "qb-reconcile": {"client_id": QB_CLIENT_ID, "client_secret_file": self.qb_secret,
                             "token_file": self.wd.file("qb-tokens.json")},
        }[daemon]

    def config(self, daemon, keys=None, drop=(), extra=None):
        own = dict(self.good(daemon), **(keys or {}))
        for k in drop:
            own.pop(k, None)
        self.n += 1
        sections = base_config(self.wd, None, dict({daemon: own}, **(extra or {})))
        return write_config(self.wd.file("c%d.conf" % self.n), sections)

    def check_refused(self, daemon, config, *needles):
        p = run_bin(daemon, "-n", "-c", config)
        self.assertEqual(p.returncode, 5, "%s -n accepted it:\n%s%s" % (daemon, p.stdout, p.stderr))
        self.assertNotIn("configuration OK", p.stdout)
        for n in needles:
            self.assertIn(n, p.stderr)
        self.assertNotIn(SECRET, p.stderr)
        return p.stderr


class UrlPolicyTest(Base):
    def test_good_configs_pass(self):
        for daemon in ("tga-sync", "cricos-sync", "qb-reconcile"):
            with self.subTest(daemon=daemon):
                p = run_bin(daemon, "-n", "-c", self.config(daemon))
                self.assertEqual((p.returncode, p.stdout), (0, "configuration OK\n"), p.stderr)
        p = run_bin("tga-sync", "-n", "-c", self.config("tga-sync", {"base_url": "http://127.0.0.1:1/x",
                                                                 "rest_base_url": "http://[::1]:2/api"}))
        self.assertEqual(p.returncode, 0, p.stderr)
        p = run_bin("qb-reconcile", "-n", "-c", self.config("qb-reconcile", {"token_url": "http://localhost:3/t"}))
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_bypasses_of_the_loopback_exception_are_refused(self):
        bad = ["http://127.0.0.1@192.0.2.2:8080/x", "http://127.evil.invalid:8080/x", "http://127.0.0.1.invalid/x",
               "http://localhost.evil.invalid/x", "http://192.0.2.2:8080/x", "http://localhost:1@192.0.2.2/x"]
        keys = {"tga-sync": ("base_url", "rest_base_url"), "cricos-sync": ("base_url",),
                "qb-reconcile": ("token_url", "authorize_url", "api_base_url", "redirect_uri")}
        for daemon, names in keys.items():
            for key in names:
                for url in bad:
                    with self.subTest(daemon=daemon, key=key, url=url):
                        err = self.check_refused(daemon, self.config(daemon, {key: url}), "[%s] %s: " % (daemon, key))
                        self.assertEqual(err.count("[%s] %s" % (daemon, key)), 1, err)   # the key, named once
                        if "@" in url:
                            self.assertIn("user name or password before '@'", err)
                            self.assertIn("it would go to 192.0.2.2", err)
                        else:
                            self.assertIn("must be https://", err)

    def test_plain_http_token_url_to_another_host(self):
        # The client secret and the refresh token would go in clear: refused (only -n: nothing may reach 192.0.2.2).
        self.check_refused("qb-reconcile", self.config("qb-reconcile", {
            "token_url": "http://192.0.2.2:8080/oauth2/v1/tokens/bearer"}),
            "[qb-reconcile] token_url: 'http://192.0.2.2:8080/oauth2/v1/tokens/bearer' must be https://")

    def test_smtp_without_tls_only_to_a_loopback_relay(self):
        cfg = self.config("cricos-sync", extra={"smtp": {"url": "smtp://mail.example.invalid:25", "tls": "none"}})
        self.check_refused("cricos-sync", cfg, "[smtp] tls: none sends the mails (and the SMTP password) in clear")
        cfg = self.config("cricos-sync", extra={"smtp": {"url": "smtp://user:pw@mail.example.invalid:587"}})
        self.check_refused("cricos-sync", cfg, "[smtp] url: the URL holds a user name or password")
        cfg = self.config("cricos-sync", extra={"smtp": {"url": "smtp://mail.example.invalid:587",
                                                         "tls": "starttls"}})
        self.assertEqual(run_bin("cricos-sync", "-n", "-c", cfg).returncode, 0)

    def test_userinfo_bypass_sends_nothing_to_the_other_host(self):
        other = Recorder("127.0.0.2")
        self.addCleanup(other.stop)
        cfg = self.config("tga-sync", {"base_url": "http://127.0.0.1@127.0.0.2:%d/Deewr.Tga.Webservices" % other.port,
                                       "retries": 0, "step_retries": 0, "notify": False})
        self.check_refused("tga-sync", cfg, "it would go to 127.0.0.2")
        rc = Daemon("tga-sync", cfg, self.wd).run_once(timeout=60)
        self.assertEqual(rc, 5)
        self.assertEqual(other.connections, 0, other.seen()[:2000])


class CheckRunsStartupChecksTest(Base):
    def startup_refuses_too(self, daemon, config, needle):
        p = run_bin(daemon, "-f", "--once", "-c", config)
        self.assertEqual(p.returncode, 5, p.stderr)
        self.assertIn(needle, p.stderr)

    def test_password_file_problems(self):
        os.mkdir(self.wd.file("pwdir"))
        empty = self.secret("empty", "")
        big = self.secret("big", "x" * 70000)
        cases = [(self.wd.file("missing"), "cannot open %s" % self.wd.file("missing")),
                 (empty, "%s is empty" % empty), (big, "%s is larger than 65536 bytes" % big),
                 (self.wd.file("pwdir"), "%s is not a regular file" % self.wd.file("pwdir"))]
        for path, needle in cases:
            with self.subTest(path=path):
                cfg = self.config("tga-sync", {"password_file": path})
                err = self.check_refused("tga-sync", cfg, "[tga-sync] password_file: " + needle)
                self.assertEqual(err.count("[tga-sync] password_file"), 1, err)
                self.startup_refuses_too("tga-sync", cfg, needle)
        cfg = self.config("tga-sync", drop=("password_file",))
        self.check_refused("tga-sync", cfg, "[tga-sync] password_file is not set and there is no systemd credential "
                           "'tga-password'")

    def test_username_required_for_soap_not_for_rest(self):
        cfg = self.config("tga-sync", drop=("username",))
        err = self.check_refused("tga-sync", cfg, "[tga-sync] username (not set): required with source = soap")
        self.assertEqual(err.count("[tga-sync] username"), 1, err)
        self.startup_refuses_too("tga-sync", cfg, "required with source = soap")
        cfg = self.config("tga-sync", {"source": "rest"}, drop=("username", "password_file"))
        self.assertEqual(run_bin("tga-sync", "-n", "-c", cfg).returncode, 0)

    def test_qb_client_secret_and_settings(self):
        cfg = self.config("qb-reconcile", {"client_secret_file": self.wd.file("missing")})
        self.check_refused("qb-reconcile", cfg, "[qb-reconcile] client_secret_file: cannot open")
        cfg = self.config("qb-reconcile", {"default_item": "abc"})
        self.check_refused("qb-reconcile", cfg, "default_item: 'abc' is not a QuickBooks Item Id")
        # -n creates nothing: the token directory under state_dir is made at start, not by a check.
        cfg = self.config("qb-reconcile", drop=("token_file",))
        self.assertEqual(run_bin("qb-reconcile", "-n", "-c", cfg).returncode, 0)
        self.assertFalse(os.path.exists(os.path.join(self.wd.state, "qb-reconcile")))

    def test_cricos_settings(self):
        cfg = self.config("cricos-sync", {"timezone_offset": "AEST"})
        self.check_refused("cricos-sync", cfg, "[cricos-sync] timezone_offset: 'AEST' is not a UTC offset")

    def test_smtp_password_file(self):
        cfg = self.config("cricos-sync", extra={"smtp": {"url": "smtp://127.0.0.1:1", "tls": "none",
                                                         "username": "u", "password_file": self.wd.file("nope")}})
        self.check_refused("cricos-sync", cfg, "[smtp] password_file: cannot open")


if __name__ == "__main__":
    unittest.main(verbosity=2)
