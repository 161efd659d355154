#!/usr/bin/python3
"""Redirects never carry a credential to another origin (issue 13, item 2).

With follow_redirects = yes, an upstream on 127.0.0.1 answers 307 to "another host": an HTTPS server on 127.0.0.2
whose certificate the client trusts (ca_file), so that only the policy can stop the request, not TLS.  That server
records every connection; it must see none, and the SOAP body with the UsernameToken, the Authorization header and
the form with the client secret must reach nothing but the configured origin.  Redirects within the origin are
followed, and logged.  Also: a redirect to file://, to http:// on another port, with userinfo, and a loop.
"""

import json
import os
import subprocess
import unittest

from harness import BIN, Daemon, Workdir, base_config, query, runs, write_config
from url_upstreams import Recorder, Redirector, make_cert

SECRET = "RedirPw-S3cr3t-7d41e0"
BEARER = "Authorization: Bearer tok-S3cr3t-bearer-0042"
BASIC = "Authorization: Basic " + "Y2xpZW50OlMzY3IzdA=="


def probe(url, *args):
    p = subprocess.run([os.path.join(BIN, "http-probe"), url, "--retries", "0"] + list(args), capture_output=True,
                       text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("http-probe failed: %s" % p.stderr)
    return json.loads(p.stdout), p.stderr


class RedirectProbeTest(unittest.TestCase):
    """One request through common/http.c (http-probe) per case."""

    @classmethod
    def setUpClass(cls):
        cls.wd = Workdir("redir")
        cls.cert, cls.key = make_cert(cls.wd.path)
        cls.other = Recorder("127.0.0.2", tls=(cls.cert, cls.key))
        cls.other_plain = Recorder("127.0.0.2")
        cls.rule = None
        cls.origin = Redirector(lambda path: cls.rule(path))

    @classmethod
    def tearDownClass(cls):
        cls.origin.stop()
        cls.other.stop()
        cls.other_plain.stop()
        cls.wd.cleanup()

    def setUp(self):
        for s in (self.origin, self.other, self.other_plain):
            with s.lock:
                s.requests.clear()
                s.connections = 0

    def assert_nothing_elsewhere(self):
        self.assertEqual(self.other.connections, 0, self.other.seen())
        self.assertEqual(self.other_plain.connections, 0, self.other_plain.seen())

    def test_307_to_another_origin_is_refused_with_body_and_headers_kept_home(self):
        for status in (307, 308, 302, 301, 303):
            with self.subTest(status=status):
                self.setUp()
                type(self).rule = staticmethod(lambda path, s=status: (s, self.other.url + path))
                out, err = probe(self.origin.url + "/svc", "--follow", "--ca-file", self.cert, "--post",
                                 "<UsernameToken><Password>%s</Password></UsernameToken>" % SECRET,
                                 "--header", BEARER, "--header", BASIC)
                self.assertIn("redirect (HTTP %d) to %s/svc refused" % (status, self.other.url), out["error"])
                self.assertIn("leaves the configured origin http://127.0.0.1:%d" % self.origin.port, out["error"])
                self.assertEqual(out["attempts"], 1)
                self.assert_nothing_elsewhere()

    def test_not_following_is_still_the_default(self):
        type(self).rule = staticmethod(lambda path: (307, self.other.url + path))
        out, _ = probe(self.origin.url + "/svc", "--post", "body", "--ca-file", self.cert)
        self.assertIn("unexpected redirect (HTTP 307)", out["error"])
        self.assert_nothing_elsewhere()

    def test_other_port_scheme_and_file_are_other_origins(self):
        cases = [
            ("http://127.0.0.2:%d/x" % self.other_plain.port, "refused"),
            ("http://127.0.0.1:%d/x" % self.other_plain.port, "refused"),          # same host, another port
            ("https://127.0.0.1:%d/x" % self.origin.port, "refused"),              # another scheme
            ("file:///etc/passwd", "refused"),
            ("http://user:pw@127.0.0.1:%d/moved" % self.origin.port, "user name or password"),
        ]
        for location, want in cases:
            with self.subTest(location=location):
                self.setUp()
                type(self).rule = staticmethod(lambda path, loc=location: (302, loc))
                out, _ = probe(self.origin.url + "/svc", "--follow", "--header", BEARER)
                self.assertIsNotNone(out["error"], out)
                self.assertIn(want, out["error"])
                self.assertNotIn("root:", out["error"])
                self.assert_nothing_elsewhere()
                self.assertEqual(self.origin.requests, [])

    def test_same_origin_redirect_is_followed_and_logged(self):
        type(self).rule = staticmethod(lambda path: None if path.startswith("/moved") else (307, "/moved?page=2"))
        out, err = probe(self.origin.url + "/svc", "--follow", "--post", "payload-1", "--header", BEARER)
        self.assertIsNone(out["error"], out)
        self.assertEqual(out["status"], 200)
        self.assertEqual([(r["method"], r["path"], r["body"]) for r in self.origin.requests],
                         [("POST", "/moved?page=2", b"payload-1")])
        self.assertIn("following a redirect (HTTP 307) from %s/svc to %s/moved?page=2 (same origin)"
                      % (self.origin.url, self.origin.url), err)
        # 303 (and 301/302 after a POST) go on as a GET without the body, as libcurl and browsers do.
        self.setUp()
        type(self).rule = staticmethod(lambda path: None if path == "/moved" else (303, "/moved"))
        out, _ = probe(self.origin.url + "/svc", "--follow", "--post", "payload-2")
        self.assertIsNone(out["error"], out)
        self.assertEqual([(r["method"], r["body"]) for r in self.origin.requests], [("GET", b"")])

    def test_a_request_url_outside_the_policy_is_not_sent(self):
        # http.c checks every request URL too (defence in depth: config keys are checked when loaded).
        out, _ = probe("http://127.0.0.1@127.0.0.2:%d/x" % self.other_plain.port, "--header", BEARER)
        self.assertIn("not sent: the URL holds a user name or password before '@'", out["error"])
        self.assertEqual(out["attempts"], 0)
        self.assert_nothing_elsewhere()

    def test_a_redirect_loop_ends(self):
        type(self).rule = staticmethod(lambda path: (302, "/a" if path != "/a" else "/b"))
        out, _ = probe(self.origin.url + "/svc", "--follow")
        self.assertIn("more than 5 redirects", out["error"])


class RedirectDaemonTest(unittest.TestCase):
    """tga-sync's SOAP requests carry the TGA password in their body: a 307 elsewhere must not deliver it."""

    def elsewhere(self, certdir, rule=None, **recorder):
        """(the CA file, the other host: a TLS Recorder on 127.0.0.2, the origin: a Redirector with rule, by default
        a 307 to the same path on the other host), both stopped after the test."""
        cert, key = make_cert(certdir)
        other = Recorder("127.0.0.2", tls=(cert, key), **recorder)
        self.addCleanup(other.stop)
        origin = Redirector(rule or (lambda path: (307, other.url + path)))
        self.addCleanup(origin.stop)
        return cert, other, origin

    def test_tga_soap_body_never_reaches_another_host(self):
        wd = Workdir("redir-tga")
        self.addCleanup(wd.cleanup)
        cert, other, origin = self.elsewhere(wd.path)
        pw = wd.file("tga-password")
        with open(pw, "w") as f:
            f.write(SECRET + "\n")
        os.chmod(pw, 0o600)
        config = write_config(wd.file("sync.conf"), base_config(wd, None, {
            "tga-sync": {"base_url": origin.url + "/Deewr.Tga.Webservices", "username": "WebService.Read",
                         "password_file": pw, "follow_redirects": True, "ca_file": cert, "retries": 0,
                         "step_retries": 0, "step_backoff": "50ms", "notify": False}}))
        d = Daemon("tga-sync", config, wd)
        rc = d.run_once(timeout=120)
        log = d.read_log()
        self.assertEqual(rc, 1, log[-3000:])
        self.assertEqual(other.connections, 0, other.seen()[:2000])
        self.assertNotIn(SECRET.encode(), other.seen())
        run = runs(os.path.join(wd.state, "ops.db"))[-1]
        self.assertEqual(run["status"], "failed")
        self.assertIn("redirect (HTTP 307) to %s/Deewr.Tga.Webservices" % other.url, run["error"])
        self.assertIn("refused", run["error"])
        self.assertIn("redirect (HTTP 307) to %s" % other.url, log)
        self.assertNotIn(SECRET, log)

    def test_public_upstreams_follow_no_redirect_elsewhere_or_to_file(self):
        # cricos-sync (CKAN) and tga-sync's REST source send no credential, but a redirect elsewhere or to file://
        # is refused all the same: the run fails naming it, and nothing is written.
        wd = Workdir("redir-pub")
        self.addCleanup(wd.cleanup)
        target = {}
        cert, other, origin = self.elsewhere(wd.path, lambda path: (302, target["loc"](path)),
                                             body=b'{"success": true, "result": {}}')
        common = {"follow_redirects": True, "ca_file": cert, "retries": 0, "step_retries": 0, "notify": False}
        daemons = [("cricos-sync", "cricos_sync", {"base_url": origin.url + "/data"}),
                   ("tga-sync", "tga_sync", {"source": "rest", "rest_base_url": origin.url + "/api"})]
        for daemon, sync_type, keys in daemons:
            for name, loc in (("another host", lambda path: other.url + path),
                              ("file://", lambda path: "file:///etc/passwd")):
                with self.subTest(daemon=daemon, to=name):
                    target["loc"] = loc
                    state = wd.file("state-%s-%d" % (daemon, len(name)))
                    os.makedirs(state)
                    config = write_config(wd.file("%s-%d.conf" % (daemon, len(name))), base_config(wd, None, {
                        "paths": {"state_dir": state}, daemon: dict(common, **keys)}))
                    d = Daemon(daemon, config, wd)
                    self.assertEqual(d.run_once(timeout=120), 1, d.read_log()[-3000:])
                    run = runs(os.path.join(state, "ops.db"), sync_type)[-1]
                    self.assertEqual(run["status"], "failed")
                    self.assertIn("redirect (HTTP 302) to %s" % loc("/x").rsplit("/", 1)[0], run["error"])
                    self.assertIn("refused", run["error"])
                    self.assertNotIn("root:", run["error"])
                    self.assertEqual(other.connections, 0, other.seen()[:2000])
                    self.assertEqual(query(os.path.join(state, "ops.db"), "SELECT SUM(records_out) FROM sync_runs"),
                                     [(0,)])

    def test_qb_token_refresh_and_api_calls_never_reach_another_host(self):
        # The token request carries Basic client_id:secret and the refresh token; API calls carry the Bearer token.
        from qbenv import QBEnv
        certs = Workdir("redir-qb-cert")
        self.addCleanup(certs.cleanup)
        cert, other, origin = self.elsewhere(certs.path)
        env = QBEnv("redir-qb", token_url=origin.url + "/oauth2/v1/tokens/bearer", api_base_url=origin.url,
                    follow_redirects=True, ca_file=cert, retries=0, step_retries=0)
        self.addCleanup(env.wd.cleanup)
        self.addCleanup(env.fake.stop)
        rc, result = env.once()
        log = env.daemon.read_log()
        self.assertEqual(other.connections, 0, other.seen()[:2000])
        self.assertTrue(env.secrets)
        for secret in env.secrets:         # the client secret and every token the store held
            self.assertNotIn(secret.encode(), other.seen())
        self.assertIn("redirect (HTTP 307) to %s/oauth2/v1/tokens/bearer refused" % other.url, log)
        self.assertIsNotNone(result, log[-3000:])
        self.assertFalse(result["heartbeat"], result)     # the refresh failed: the heartbeat says so


if __name__ == "__main__":
    unittest.main(verbosity=2)
