#!/usr/bin/python3
"""The HTTP layer, data-driven (tests/foundation/http_cases.json, in the spirit of curl's tests/data): each case
arms a fault on a test server, runs one request through common/http.c (the http-probe program) and checks the
outcome.  Also: a hung upstream fails a daemon's step by timeout instead of hanging the run."""

import json
import os
import subprocess
import time
import unittest

from harness import (Daemon, Server, Workdir, base_config, runs, query, write_config, REPO, BIN)

ITEMS_SERVER = os.path.join(REPO, "tests", "kit", "items_server.py")
CASES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "http_cases.json")


class HttpCases(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(ITEMS_SERVER)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def run_case(self, case):
        self.server.post("/_fake/fault/clear")
        if "fault" in case:
            self.server.post("/_fake/fault", case["fault"])
        url = case.get("url") or self.server.url + case["path"]
        p = subprocess.run([os.path.join(BIN, "http-probe"), url] + case["probe"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        for key, want in case["expect"].items():
            if key.endswith("!~"):
                self.assertNotIn(want, out[key[:-2]] or "", out)
            elif key.endswith("~"):
                self.assertIsNotNone(out[key[:-1]], out)
                self.assertIn(want, out[key[:-1]], out)
            elif key.endswith("<"):
                self.assertLess(out[key[:-1]], want, out)
            elif key.endswith(">"):
                self.assertGreater(out[key[:-1]], want, out)
            else:
                self.assertEqual(out[key], want, "%s: %s" % (key, out))

    def test_cases(self):
        with open(CASES) as f:
            cases = json.load(f)
        for case in cases:
            with self.subTest(case=case["name"]):
                self.run_case(case)
        self.server.post("/_fake/fault/clear")

    def test_hung_upstream_fails_the_step_by_timeout(self):
        wd = Workdir("hang")
        config = write_config(wd.file("sync.conf"), base_config(wd, None, {
            "test-sync": {"url": self.server.url, "low_speed_time": "1s", "retries": 1, "backoff": "50ms",
                          "step_retries": 1, "step_backoff": "50ms"}}))
        self.server.post("/_fake/fault", {"op": "items", "kind": "hang", "count": -1, "hold": 120})
        t0 = time.monotonic()
        rc = Daemon("test-sync", config, wd).run_once(timeout=60)
        elapsed = time.monotonic() - t0
        self.server.post("/_fake/fault/clear")
        self.assertEqual(rc, 1)
        self.assertLess(elapsed, 20)
        r = runs(os.path.join(wd.state, "ops.db"))[-1]
        self.assertEqual(r["status"], "failed")
        self.assertIn("timed out", r["error"])
        self.assertEqual(query(os.path.join(wd.state, "ops.db"),
                               "SELECT status, attempts FROM sync_steps WHERE step = 'fetch_items'"), [("failed", 2)])
        wd.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
