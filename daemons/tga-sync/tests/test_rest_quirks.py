#!/usr/bin/python3
"""source = rest against the REST API's documented quirks and faults (reference section 6; the fake's README):

  * 417 above the largest page size, and 429 / 5xx on repeated failure: the page size is halved (and grows back);
    a 429 waits its Retry-After;
  * the offset cap: the crawl goes on by code before reaching it (rest_offset_cap), or after the API refuses an
    offset (a lower cap than configured), for searches and for scope pages;
  * the HTTP 500 on scope filters that select explicit rows with isImplicit==false: never sent (explicit only is
    includeImplicitItems=false), and implicit only works too;
  * malformed, truncated, reset and HTML answers: requested again (an RTO's scope from its start);
  * no account needed: no username, no password; the SOAP source still requires its username;
  * a cycle keeps its source: a configuration switched in the middle of a cycle fails the run with a message.
Each cycle ends with the register in rtopacks.db (tgalib.compare_rest).
"""

import os
import signal
import time
import unittest

import tgalib
from harness import Daemon, Workdir, base_config, cursor, query, runs, write_config


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


class RestQuirksTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tgalib.share_fake(cls, "tgarestquirks", start=tgalib.start_rest_fake, smtp=False)
        cls.defaults = cls.fake.get("/_fake/config")
        cls.dump = tgalib.fake_dump(cls.fake)

    def setUp(self):
        self.fake.post("/_fake/fault/clear")
        self.fake.post("/_fake/config", self.defaults)
        self.fake.post("/_fake/stats/reset")
        self.envs = []

    def tearDown(self):
        self.fake.post("/_fake/fault/clear")
        self.fake.post("/_fake/config", self.defaults)
        for e in self.envs:
            e.cleanup()

    def cycle(self, name, **keys):
        env = tgalib.RestEnv(self.fake, None, name=name, notify=False, **keys)
        self.envs.append(env)
        t0 = time.monotonic()
        self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-4000:])
        env.elapsed = time.monotonic() - t0
        self.assertEqual(tgalib.compare_rest(env.corpus, self.dump), {})
        return env

    def test_page_size_halving_on_417_429_and_5xx(self):
        # 417: the fake's largest page is 30 (ours: 50 search results, 100 scope rows).  429 on every organisation
        # search of 50, and 5xx on every training search of 25 and scope page of 50: each answered by halving
        # once the retries are spent.  The first search meets a 429 with Retry-After: 1 and waits it.
        self.fake.post("/_fake/config", {"max_page_size": 30})
        self.fake.post("/_fake/fault", {"op": "search_organisation", "kind": "http429", "count": -1,
                                        "match": "pageSize=25", "retry_after": 0})
        self.fake.post("/_fake/fault", {"op": "search_training", "kind": "http503", "count": -1,
                                        "match": "pageSize=25&"})
        self.fake.post("/_fake/fault", {"op": "scope", "kind": "http500", "count": -1, "match": "pageSize=25&"})
        self.fake.post("/_fake/fault", {"op": "metadata", "kind": "http429", "count": 1, "retry_after": 1})
        env = self.cycle("tga417")
        stats = tgalib.rest_stats(self.fake)
        self.assertGreaterEqual(stats["quirks"]["oversize_page"], 3, stats["quirks"])
        for kind in ("http429", "http503", "http500"):
            self.assertGreaterEqual(stats["faults_injected"].get(kind, 0), 1, stats["faults_injected"])
        self.assertGreaterEqual(env.elapsed, 1.0)   # the Retry-After of the first 429
        details = tgalib.step_details(env.ops)
        self.assertGreaterEqual(details["sync_training"]["page_halvings"], 2)
        self.assertGreaterEqual(details["sync_orgs"]["page_halvings"], 2)
        log = env.daemon.read_log()
        self.assertIn("pages of 12 from now on (was 25)", log)
        self.assertIn("scope pages of 12 rows from now on", log)

    def test_offset_cap_before_and_after_the_api_refuses(self):
        self.fake.post("/_fake/config", {"offset_cap": 60})
        # Configured to the API's cap: the crawl goes on by code before any offset is refused.
        env = self.cycle("tgacap1", rest_page_size=20, rest_offset_cap=60)
        stats = tgalib.rest_stats(self.fake)
        self.assertNotIn("offset_cap", stats["quirks"], stats["quirks"])
        details = tgalib.step_details(env.ops)
        self.assertGreater(details["sync_training"]["offset_splits"], 0)
        self.assertIn("Code%20gt%20%27", read(self.fake.log_path))
        # Configured higher than the API's: the refusal (400) is the cue, for searches and scope pages alike.
        self.fake.post("/_fake/stats/reset")
        env = self.cycle("tgacap2", rest_page_size=20)
        stats = tgalib.rest_stats(self.fake)
        self.assertGreaterEqual(stats["quirks"]["offset_cap"], 2, stats["quirks"])
        self.assertGreaterEqual(stats["by_status"]["400"], 2)
        log = env.daemon.read_log()
        self.assertIn("going on with the codes after", log)
        self.assertIn("going on after code", log)
        # The API's cap answered as HTTP 500: retried, halved to the smallest page, then taken as the cap.
        self.fake.post("/_fake/config", {"offset_cap": 60, "offset_cap_status": 500})
        self.fake.post("/_fake/stats/reset")
        env = self.cycle("tgacap3", rest_page_size=20, rest_scope_page_size=1000)
        self.assertGreaterEqual(tgalib.rest_stats(self.fake)["quirks"]["offset_cap"], 1)
        self.assertIn("pages of 10 from now on", env.daemon.read_log())

    def check_scope(self, env, keep):
        want = sorted((o["Code"], s["NrtCode"], int(s["IsImplicit"])) for o in self.dump["Organisations"]
                      for s in o["Scopes"] if keep(s))
        have = sorted(query(env.corpus, "SELECT rto_code, nrt_code, is_implicit FROM tga_rto_scope WHERE"
                                   " removed_in IS NULL"))
        self.assertEqual(have, want)
        self.assertGreater(len(have), 100)

    def test_explicit_or_implicit_scope_without_the_500(self):
        others = "ShowLocations ShowRegistrationPeriods ShowResponsibleLegalPersons ShowTradingNames ShowUrls"
        for name, flags, keep in (("tgaexpl", "ShowExplicitScope", lambda s: not s["IsImplicit"]),
                                  ("tgaimpl", "ShowImplicitScope", lambda s: s["IsImplicit"])):
            with self.subTest(flags=flags):
                self.fake.post("/_fake/stats/reset")
                env = tgalib.RestEnv(self.fake, None, name=name, notify=False,
                                     organisation_details=flags + " " + others)
                self.envs.append(env)
                self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-4000:])
                diffs = tgalib.compare_rest(env.corpus, self.dump)
                self.assertEqual(set(diffs), {"tga_rto_scope"})
                self.check_scope(env, keep)
                stats = tgalib.rest_stats(self.fake)
                self.assertEqual(stats["quirks"], {}, stats["quirks"])
                self.assertEqual(set(stats["by_status"]), {"200"})
        log = read(self.fake.log_path)
        self.assertIn("includeImplicitItems=false", log)
        self.assertIn("isImplicit%3D%3Dtrue", log)
        self.assertNotIn("isImplicit%3D%3Dfalse", log)

    def test_bad_answers_are_requested_again(self):
        for op, kind in (("training", "malformed"), ("unitgrid", "reset"), ("search_organisation", "html"),
                         ("organisation", "truncate"), ("scope", "malformed"), ("metadata", "malformed")):
            self.fake.post("/_fake/fault", {"op": op, "kind": kind, "count": 1, "skip": 3 if op == "scope" else 0})
        env = self.cycle("tgabad")
        stats = tgalib.rest_stats(self.fake)
        self.assertEqual(sum(stats["faults_injected"].values()), 6, stats["faults_injected"])
        log = env.daemon.read_log()
        self.assertIn("does not parse", log)
        self.assertIn("reading it again from the start", log)      # the RTO whose scope page was malformed
        self.assertEqual(tgalib.step_details(env.ops)["sync_orgs"]["restarts"], 1)
        # A page that stays malformed fails its step, then the run, naming the request; the cursor stays.
        self.fake.post("/_fake/fault", {"op": "search_training", "kind": "malformed", "count": -1, "skip": 2})
        env = tgalib.RestEnv(self.fake, None, name="tgabad2", notify=False)
        self.envs.append(env)
        self.assertEqual(env.run_once(), 1)
        err = runs(env.ops, "tga_sync")[-1]["error"]
        self.assertRegex(err, r"TGA REST search/training \[Type/Id eq 4\] offset 0, 50 per page: malformed "
                              r"response: .* \(after 3 attempts\)")
        self.assertEqual(cursor(env.ops, "tga_sync")["cycle_phase"], "sync_training")

    def test_no_account_needed_and_soap_still_needs_one(self):
        wd = Workdir("tganoacct")
        try:
            cfg = base_config(wd, None, {"tga-sync": {"source": "soap", "base_url": self.fake.url}})
            path = write_config(wd.file("sync.conf"), cfg)
            env = tgalib.RestEnv(self.fake, None, name="tganoacct2", notify=False)
            self.envs.append(env)
            soap = Daemon("tga-sync", path, wd)
            self.assertNotEqual(soap.run_once(), 0)
            self.assertIn("[tga-sync] username (not set): required with source = soap", soap.read_log())
            self.assertEqual(soap.read_log().count("[tga-sync] username"), 1)     # the key, named once
            # REST: no username and no password anywhere, and none is looked for.
            self.assertNotIn("username", read(env.config))
            self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-3000:])
            self.assertNotIn("password", env.daemon.read_log())
        finally:
            wd.cleanup()

    def test_a_cycle_keeps_its_source(self):
        env = tgalib.RestEnv(self.fake, None, name="tgaswitch", notify=False)
        self.envs.append(env)
        self.assertEqual(env.run_once(env={"RTOPACKS_CRASH_AT": "tga_training_written:2"}), -signal.SIGKILL)
        pw = env.wd.file("tga-password")
        with open(pw, "w") as f:
            f.write("x")
        os.chmod(pw, 0o600)
        soap = {"source": "soap", "base_url": self.fake.url + "/Deewr.Tga.Webservices", "username": "u",
                "password_file": pw, "step_retries": 0}
        write_config(env.config, base_config(env.wd, None, {"tga-sync": soap}))
        self.assertEqual(env.run_once(), 1)
        self.assertIn("this cycle began with source = rest and the configuration now says source = soap",
                      runs(env.ops, "tga_sync")[-1]["error"])
        self.assertEqual(cursor(env.ops, "tga_sync")["cycle_phase"], "sync_training")


if __name__ == "__main__":
    unittest.main(verbosity=2)
