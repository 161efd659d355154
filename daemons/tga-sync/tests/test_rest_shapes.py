#!/usr/bin/python3
"""source = rest against the shapes public clients see of the live API (issue 18), served by the fake's variants:

  * the metadata's sync time under the evidenced name (dataExportSynchronisationDateTime) and the reference's;
  * list totals as count, totalCount, both, neither (and the evidenced mix: search count + totalCount, scope count);
  * a server that serves fewer rows than pageSize asks (a page cap below the page size);
  * empty 200 pages before the total (from some offset on; once; for good);
  * addresses in the evidenced shape (address{state, country}) and ABNs with spaces (the fake's default).

For every variant the cycle either completes with rtopacks.db equal to what the fake serves (tgalib.compare_rest), or
ends partial (exit 3) / failed (exit 1) with the shortfall named on its step row, its run summary and its mail.  An
exit 0 with rows missing fails the test (outcome()).
"""

import threading
import time
import unittest

import tgalib
from harness import query, runs


class RestShapesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tgalib.share_fake(cls, "tgarestshapes", start=tgalib.start_rest_fake)
        cls.defaults = cls.fake.get("/_fake/config")
        cls.dump = tgalib.fake_dump(cls.fake)
        cls.mails = 0

    def setUp(self):
        self.fake.post("/_fake/fault/clear")
        self.fake.post("/_fake/config", self.defaults)
        self.envs = []

    def tearDown(self):
        self.fake.post("/_fake/fault/clear")
        self.fake.post("/_fake/config", self.defaults)
        for e in self.envs:
            e.cleanup()

    def env(self, name, mail=False, **keys):
        e = tgalib.RestEnv(self.fake, self.smtp if mail else None, name=name, notify=mail, **keys)
        self.envs.append(e)
        return e

    def outcome(self, env):
        """Run one cycle: (exit status, last run, its step rows, its summary).  Exit 0 must mean every row served is
        stored; 3 (partial) and 1 (failed) must name what is missing."""
        rc = env.run_once()
        run = runs(env.ops, "tga_sync")[-1]
        steps = query(env.ops, "SELECT step, status, rejected, error FROM sync_steps WHERE run_id = ? ORDER BY rowid",
                      (run["run_id"],))
        summary, _ = tgalib.summary(env.ops, run["run_id"])
        diffs = tgalib.compare_rest(env.corpus, self.dump)
        log = env.daemon.read_log()[-4000:]
        if rc == 0:
            self.assertEqual(run["status"], "complete", log)
            self.assertEqual(diffs, {}, "exit 0 with rtopacks.db not equal to what is served\n" + log)
        elif rc == 3:
            self.assertEqual(run["status"], "partial", log)
            self.assertTrue(any(s[1] == "partial" and s[3] and "shortfall" in s[3] for s in steps), steps)
        else:
            self.assertEqual((rc, run["status"]), (1, "failed"), log)
            self.assertTrue(run["error"], run)
        return rc, run, steps, summary

    def complete(self, name, **keys):
        rc, run, steps, summary = self.outcome(self.env(name, **keys))
        self.assertEqual(rc, 0, (run, steps))
        comp = summary["completeness"]
        self.assertEqual(comp.get("n_shortfalls", 0), 0, comp)
        for part, t in comp["search"].items():
            if t["total"] >= 0:
                self.assertGreaterEqual(t["read"], t["total"], (part, t))
        return summary

    # ------------------------------------------------------------------------------------------------ the variants

    def test_metadata_names(self):
        for name in ("dataExportSynchronisationDateTime", "dataExportSyncDateTime"):
            with self.subTest(name=name):
                self.fake.post("/_fake/config", {"metadata_name": name})
                self.complete("tgashapemeta")

    def test_totals(self):
        for mode in ("evidenced", "count", "totalCount", "both", "neither"):
            with self.subTest(totals=mode):
                self.fake.post("/_fake/config", {"totals": mode})
                summary = self.complete("tgashapetotals")
                scope = summary["completeness"]["scope"]
                self.assertGreater(scope["rtos"], 0)
                self.assertEqual(scope.get("rows_missing", 0), 0)

    def test_page_cap_below_page_size(self):
        # The server serves 7 rows whatever pageSize asks (ours: 50 search results, 100 scope rows): before issue
        # 18 the crawl stopped after the first short page and exited 0.
        for mode in ("evidenced", "neither"):
            with self.subTest(totals=mode):
                self.fake.post("/_fake/config", {"totals": mode, "page_cap": 7})
                self.complete("tgashapecap")

    def test_empty_pages_before_the_total(self):
        # From offset 100 on every page is an empty 200 (with its total): taken as an offset cap, the crawl goes on
        # after the last code read, for the searches and for the scope pages.
        self.fake.post("/_fake/config", {"empty_from": 100})
        self.complete("tgashapeempty")
        # Once (one page, then the server recovers): asked again.
        self.fake.post("/_fake/config", {"empty_from": -1})
        self.fake.post("/_fake/fault", {"op": "search_training", "kind": "empty", "count": 1, "skip": 2})
        self.fake.post("/_fake/fault", {"op": "scope", "kind": "empty", "count": 1, "skip": 3})
        self.complete("tgashapeempty1")

    def test_persistent_search_shortfall_is_partial_and_named(self):
        # Every first page of the units is empty, with its total: the crawl asks again, cannot go on by code (no
        # code read yet), and ends the type short.  The run is partial and says so; the next cycle reads them.
        units = sum(1 for c in self.dump["TrainingComponents"] if c["ComponentType"] == "Unit")
        self.fake.post("/_fake/fault", {"op": "search_training", "kind": "empty", "count": -1,
                                        "match": "offset=0&filter=Type%2FId%20eq%204&"})
        e = self.env("tgashapeshort", mail=True)
        rc, run, steps, summary = self.outcome(e)
        self.assertEqual(rc, 3)
        step = [s for s in steps if s[0] == "sync_training"][-1]
        self.assertEqual(step[1], "partial")
        self.assertIn("search [Unit]: 0 of %d records listed, %d missing" % (units, units), step[3])
        self.assertEqual([s[1] for s in steps if s[0] == "sync_orgs"][-1], "complete")  # its own phase only
        comp = summary["completeness"]
        self.assertEqual(comp["search"]["Unit"], {"total": units, "read": 0})
        self.assertEqual(comp["n_shortfalls"], 1)
        self.assertIn("search [Unit]", comp["shortfalls"][0])
        self.assertEqual(query(e.corpus, "SELECT count(*) FROM tga_components WHERE component_type = 'Unit'"),
                         [(0,)])
        type(self).mails += 1
        m = self.smtp.wait(self.mails)[self.mails - 1]["msg"]
        body = m.get_body(preferencelist=("plain",)).get_content()
        self.assertIn("Completeness", body)
        self.assertIn("search [Unit]: 0 of %d records listed" % units, body)
        # The upstream recovers: the next cycle reads what was missing and completes.
        self.fake.post("/_fake/fault/clear")
        rc, run, steps, summary = self.outcome(e)
        self.assertEqual(rc, 0, steps)

    def test_persistent_scope_shortfall_is_partial_and_named(self):
        # One RTO's scope pages are all empty (with their totals): read again from its start three times, then
        # kept as read (nothing removed for not being seen), named, and fetched again next cycle.
        rto = max(self.dump["Organisations"], key=lambda o: o["ScopeCount"])
        self.fake.post("/_fake/fault", {"op": "scope", "kind": "empty", "count": -1,
                                        "match": "/organisation/%s/scope" % rto["Code"]})
        e = self.env("tgashapescope")
        rc, run, steps, summary = self.outcome(e)
        self.assertEqual(rc, 3)
        step = [s for s in steps if s[0] == "sync_orgs"][-1]
        self.assertIn("RTO %s: %d scope rows missing" % (rto["Code"], rto["ScopeCount"]), step[3])
        scope = summary["completeness"]["scope"]
        self.assertEqual((scope["short_rtos"], scope["rows_missing"]), (1, rto["ScopeCount"]))
        self.assertEqual(query(e.corpus, "SELECT count(*) FROM tga_rto_scope WHERE rto_code = ?", (rto["Code"],)),
                         [(0,)])
        self.fake.post("/_fake/fault/clear")
        rc, run, steps, summary = self.outcome(e)
        self.assertEqual(rc, 0, steps)

    def test_scope_total_moving_with_count_only(self):
        # With the total only as count (unicorn-cms's reading), an RTO whose scope changes between its pages is read
        # again from its start: before issue 18 only totalCount was read and the guard never fired.
        self.fake.post("/_fake/config", {"totals": "count"})
        units = {c["Code"] for c in self.dump["TrainingComponents"] if c["ComponentType"] == "Unit"}
        rto = max(self.dump["Organisations"],
                  key=lambda o: sum(1 for x in o["Scopes"] if x["NrtCode"] in units))
        held = {x["NrtCode"] for x in rto["Scopes"]}
        self.assertGreater(len(units & held), 10)
        # Hold the RTO's second page of units until the register has moved under it.
        self.fake.post("/_fake/fault", {"op": "scope", "kind": "slow", "delay": 5, "count": 1,
                                        "match": "/organisation/%s/scope?offset=10&pageSize=10&filters=componentType"
                                                 "%%3D%%3Dunit" % rto["Code"]})
        e = self.env("tgashapemove", rest_scope_page_size=10)
        result = {}
        t = threading.Thread(target=lambda: result.update(rc=e.run_once()))
        t.start()
        try:
            deadline = time.monotonic() + 120
            while self.fake.get("/_fake/fault") and time.monotonic() < deadline:
                time.sleep(0.05)  # waiting for the positive signal: the held page has been asked for
            self.fake.post("/_fake/mutate", {"action": "scope", "code": rto["Code"],
                                             "add": sorted(units - held)[:3]})
        finally:
            t.join()
        self.assertEqual(result.get("rc"), 0, e.daemon.read_log()[-3000:])
        log = e.daemon.read_log()
        self.assertIn("scope went from", log)
        self.assertIn("reading it again from the start", log)
        self.assertEqual(tgalib.compare_rest(e.corpus, tgalib.fake_dump(self.fake)), {})
        type(self).dump = tgalib.fake_dump(self.fake)  # the register has moved for the tests after this one

    def test_evidenced_addresses_and_abns(self):
        # The fake's default: address{state: "NSW", country: "Australia"} and ABNs "12 345 678 901"; stored as the
        # SOAP source stores them (StateCode "01", SACC 1101, digits only), which compare_rest checks row by row.
        e = self.env("tgashapeaddr")
        self.assertEqual(self.outcome(e)[0], 0)
        self.assertEqual(query(e.corpus, "SELECT count(*) FROM tga_rto_locations WHERE state_code IS NULL"), [(0,)])
        self.assertGreater(query(e.corpus, "SELECT count(*) FROM tga_rto_locations")[0][0], 0)
        self.assertEqual(query(e.corpus, "SELECT count(*) FROM tga_rtos WHERE abn GLOB '*[^0-9]*'"), [(0,)])


if __name__ == "__main__":
    unittest.main()
