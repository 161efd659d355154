#!/usr/bin/python3
"""tga-sync with source = rest (issue 8) against the fake public REST API, beside the SOAP source against the fake
SOAP services, both fakes serving the same register (small scale, same seed, same frozen clock).

1. A first cycle of each: the two rtopacks.db are identical table by table (tgalib.compare_sources: every column
   except the few that differ by the nature of the source, each justified there), and the REST one equals the
   register.  The same change summary on both run rows.
2. The same changes in both fakes (every kind: updates, additions, deletions, supersession, scope, a random mix),
   then a second cycle of each (SOAP incremental, REST a full crawl): identical again; REST soft-deleted what is gone
   (operation NotFound); the same change summary; the REST mail says where the data came from.
3. The no-change probe: a REST cycle right after a complete one asks /api/metadata only (no search, no detail) and
   is recorded and mailed as "no change".
4. An export sync without data changes (the sync time moves, nothing else): the cycle reads every record's detail
   but no unit grid and no scope (their UpdatedDate is the stored one), and changes nothing.
5. A stored record the register does not have (and a Unit stored under the wrong type): the crawl finds the gap in
   its partition, confirms each by its own request (404: soft-deleted; 200: corrected), and the guard against mass
   removals stops a cycle that would soft-delete more than rest_max_removals.
"""

import json
import os
import sqlite3
import unittest

import tgalib
from harness import SmtpSink, Workdir, query, runs

NOW = "2026-01-05T00:00:00Z"
LATER = "2026-02-10T00:00:00Z"


def summary_content(s):
    """The change summary without what names the source or its clock (the window ends at the server's time for
    SOAP and at the data export sync time for REST; tombstones are the SOAP service's own list; the REST crawl's
    completeness against the API's totals)."""
    return {k: v for k, v in s.items() if k not in ("window", "tombstones", "source", "data_sync", "completeness")}


class SourceEqualityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fwd = Workdir("tgarestfakes")
        cls.soap_fake = tgalib.start_fake(cls.fwd, "--frozen-clock", now=NOW)
        cls.rest_fake = tgalib.start_rest_fake(cls.fwd, "--frozen-clock", now=NOW)
        cls.smtp = SmtpSink()
        cls.soap = tgalib.Env(cls.soap_fake, None, name="tgaeqsoap", summary_list_max=500, notify=False)
        cls.rest = tgalib.RestEnv(cls.rest_fake, cls.smtp, name="tgaeqrest", summary_list_max=500)

    @classmethod
    def tearDownClass(cls):
        cls.soap_fake.stop()
        cls.rest_fake.stop()
        cls.smtp.stop()
        cls.soap.cleanup()
        cls.rest.cleanup()
        cls.fwd.cleanup()

    def mail(self, n):
        m = self.smtp.wait(n)[n - 1]["msg"]
        return str(m["Subject"]), m.get_body(preferencelist=("plain",)).get_content()

    def cycle_both(self):
        self.assertEqual(self.soap.run_once(), 0, self.soap.daemon.read_log()[-3000:])
        self.rest_fake.post("/_fake/stats/reset")
        self.assertEqual(self.rest.run_once(), 0, self.rest.daemon.read_log()[-3000:])
        self.assertEqual(tgalib.compare_sources(self.soap.corpus, self.rest.corpus), {})
        self.assertEqual(tgalib.compare_rest(self.rest.corpus, tgalib.fake_dump(self.rest_fake)), {})
        s_soap, c_soap = tgalib.summary(self.soap.ops)
        s_rest, c_rest = tgalib.summary(self.rest.ops)
        self.assertEqual(summary_content(s_rest), summary_content(s_soap))
        self.assertEqual(c_rest, c_soap)
        self.assertEqual(s_rest["source"], "rest")
        comp = s_rest["completeness"]
        self.assertEqual(comp.get("n_shortfalls", 0), 0, comp)
        self.assertTrue(all(t["read"] >= t["total"] for t in comp["search"].values()), comp)
        return s_rest, c_rest

    def test_1_first_cycle(self):
        # Both fakes serve one register.
        self.assertEqual(tgalib.fake_dump(self.soap_fake)["Organisations"],
                         tgalib.fake_dump(self.rest_fake)["Organisations"])
        summary, changes = self.cycle_both()
        self.assertGreater(changes, 1000)
        self.assertTrue(summary["window"]["read_all"])
        stats = tgalib.rest_stats(self.rest_fake)
        # No scope request without a componentType (it would lose the granted qualifications), no isImplicit==false.
        self.assertEqual(stats["quirks"], {}, stats["quirks"])
        self.assertEqual(stats["by_status"], {"200": stats["requests"]}, stats["by_status"])
        subject, body = self.mail(1)
        self.assertEqual(subject, "[tga-sync] cycle complete \u2014 %d changes" % changes)
        self.assertIn("Source:  the training.gov.au REST API, data export sync time", body)
        # No account: the log names the API and no user.
        log = self.rest.daemon.read_log()
        self.assertIn("TGA REST API: %s/api (public, no credentials" % self.rest_fake.url, log)

    def test_2_after_the_same_changes(self):
        dump = tgalib.fake_dump(self.rest_fake)
        specs, picked = tgalib.changes_of_every_kind(dump, fraction=0.05)
        comps, orgs, quals, units = picked.comps, picked.orgs, picked.quals, picked.units
        for fake in (self.soap_fake, self.rest_fake):
            fake.post("/_fake/clock", {"now": LATER})
            answers = [fake.post("/_fake/mutate", s)["changes"] for s in specs]
            # The changes are stamped at LATER; the cycle's clock must be past them (the SOAP plan ends at "now").
            fake.post("/_fake/clock", {"advance": 60})
        self.assertEqual(self.rest_fake.get("/api/metadata")["dataExportSynchronisationDateTime"], LATER)
        summary, changes = self.cycle_both()
        deleted = {units[0], quals[2]}
        removed = {x["code"] for t in summary["components"].values() for x in t["removed_list"]}
        self.assertLessEqual(deleted, removed)
        self.assertIn(orgs[2]["Code"], {x["code"] for x in summary["rtos"]["removed_list"]})
        rows = query(self.rest.corpus, "SELECT code, deleted_operation, deleted_at FROM tga_components WHERE code IN"
                     " (?, ?)", tuple(sorted(deleted)))
        self.assertEqual(sorted((r[0], r[1]) for r in rows), sorted((c, "NotFound") for c in deleted))
        # Soft-deleted as of the data export sync time that no longer had them.
        self.assertEqual({r[2] for r in rows}, {LATER})
        subject, body = self.mail(2)
        self.assertEqual(subject, "[tga-sync] cycle complete \u2014 %d changes" % changes)
        for c in deleted:
            self.assertRegex(body, r"\n  - %s " % c)
        # The crawl read every record's detail (and a 404 for each one gone), but the unit grids and scopes only
        # of the records whose UpdatedDate moved.
        after = tgalib.fake_dump(self.rest_fake)
        stats = tgalib.rest_stats(self.rest_fake)
        n_removed = sum(t["removed"] for t in summary["components"].values())
        self.assertEqual(stats["by_endpoint"]["training"], len(after["TrainingComponents"]) + n_removed)
        self.assertEqual(stats["by_endpoint"]["organisation"], len(after["Organisations"]) + summary["rtos"]["removed"])
        moved = [c for c in after["TrainingComponents"] if comps.get(c["Code"], {}).get("UpdatedDate") != c["UpdatedDate"]
                 and c["ComponentType"] in ("Qualification", "SkillSet", "AccreditedCourse")]
        self.assertEqual(stats["by_endpoint"]["training/unitgrid"], sum(len(c["Releases"]) for c in moved))
        before_orgs = {o["Code"]: o["UpdatedDate"] for o in dump["Organisations"]}
        moved_orgs = [o for o in after["Organisations"] if before_orgs.get(o["Code"]) != o["UpdatedDate"]]
        self.assertEqual(stats["by_endpoint"]["organisation/scopesummary"], len(moved_orgs))
        details = tgalib.step_details(self.rest.ops)
        self.assertEqual(details["sync_training"]["unchanged_skipped"],
                         sum(1 for c in after["TrainingComponents"]
                             if comps.get(c["Code"], {}).get("UpdatedDate") == c["UpdatedDate"]))

    def test_3_no_change_probe(self):
        self.rest_fake.post("/_fake/stats/reset")
        self.assertEqual(self.rest.run_once(), 0, self.rest.daemon.read_log()[-3000:])
        stats = tgalib.rest_stats(self.rest_fake)
        self.assertEqual(stats["by_op"], {"metadata": 1}, stats["by_op"])
        summary, changes = tgalib.summary(self.rest.ops)
        self.assertTrue(summary["no_change"])
        self.assertEqual(changes, 0)
        steps = tgalib.step_details(self.rest.ops)
        for phase in ("sync_training", "sync_orgs", "sweep_deletions"):
            self.assertIn("no change", steps[phase]["_error"] or "", steps[phase])
        self.assertEqual([r["status"] for r in runs(self.rest.ops, "tga_sync")][-1], "complete")
        subject, body = self.mail(3)
        self.assertEqual(subject, "[tga-sync] cycle complete \u2014 0 changes")
        self.assertIn("No change at training.gov.au: the REST API's data export sync time is still %s" % LATER, body)
        self.assertEqual(tgalib.compare_sources(self.soap.corpus, self.rest.corpus), {})

    def test_4_export_sync_without_changes(self):
        before = tgalib.source_tables(self.rest.corpus)
        self.rest_fake.post("/_fake/mutate", {"action": "touch_metadata"})
        self.rest_fake.post("/_fake/stats/reset")
        self.assertEqual(self.rest.run_once(), 0, self.rest.daemon.read_log()[-3000:])
        stats = tgalib.rest_stats(self.rest_fake)
        dump = tgalib.fake_dump(self.rest_fake)
        self.assertEqual(stats["by_op"]["training"], len(dump["TrainingComponents"]))
        self.assertEqual(stats["by_op"]["organisation"], len(dump["Organisations"]))
        self.assertNotIn("unitgrid", stats["by_op"])
        self.assertNotIn("scope", stats["by_op"])
        summary, changes = tgalib.summary(self.rest.ops)
        self.assertEqual(changes, 0, json.dumps(summary))
        self.assertNotIn("no_change", summary)
        self.assertEqual(tgalib.source_tables(self.rest.corpus), before)

    def test_5_gaps_in_a_partition_and_the_removal_guard(self):
        env = RestEnvCopy(self.rest, "tgagaps")
        try:
            dump = tgalib.fake_dump(self.rest_fake)
            unit = sorted(c["Code"] for c in dump["TrainingComponents"] if c["ComponentType"] == "Unit")[3]
            con = sqlite3.connect(env.corpus)
            with con:
                # Records the register has not got (never deleted upstream: the crawl alone must notice them), and a
                # unit stored as a skill set (the skill set partition does not list it; the unit one does).
                for code, ctype in (("ZZZ9999", "Unit"), ("AAA0001", "SkillSet")):
                    con.execute("INSERT INTO tga_components (code, component_type, title, added_in, changed_in, run)"
                                " VALUES (?, ?, 'Ghost', 1, 1, 1)", (code, ctype))
                con.execute("UPDATE tga_components SET component_type = 'SkillSet' WHERE code = ?", (unit,))
                con.execute("INSERT INTO tga_rtos (code, legal_name, added_in, changed_in, run, scope_rows)"
                            " VALUES ('99999', 'Ghost RTO', 1, 1, 1, 0)")
            con.close()
            copied = {r["run_id"] for r in runs(env.ops, "tga_sync")}
            # The guard: the third record gone (the RTO) is one too many; its page is not written.
            env.set_keys(rest_max_removals=2)
            self.assertEqual(env.run_once(), 1)
            self.assertIn("more than rest_max_removals = 2", runs(env.ops, "tga_sync")[-1]["error"])
            self.assertEqual(query(env.corpus, "SELECT deleted_at FROM tga_rtos WHERE code = '99999'"), [(None,)])
            # Raised, the next run resumes the cycle at the failed page and finishes it.
            env.set_keys(rest_max_removals=1000)
            self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-3000:])
            self.assertEqual([r["trigger"] for r in runs(env.ops, "tga_sync")][-1], "resume")
            self.assertEqual(tgalib.compare_rest(env.corpus, dump), {})
            rows = query(env.corpus, "SELECT code, component_type, deleted_operation FROM tga_components WHERE code"
                         " IN ('ZZZ9999', 'AAA0001', ?) ORDER BY code", (unit,))
            self.assertEqual(rows, [("AAA0001", "SkillSet", "NotFound"), (unit, "Unit", None),
                                    ("ZZZ9999", "Unit", "NotFound")])
            self.assertEqual(query(env.corpus, "SELECT deleted_operation FROM tga_rtos WHERE code = '99999'"),
                             [("NotFound",)])
            self.assertEqual(detail_total(env.ops, "sync_training", "candidates", copied), 3)
            self.assertEqual(detail_total(env.ops, "sync_orgs", "removed", copied), 1)
        finally:
            env.cleanup()


def detail_total(ops, phase, key, not_runs=()):
    """A step detail counter summed over every committed step of a phase, in every run but not_runs."""
    total = 0
    for run_id, detail in query(ops, "SELECT run_id, detail FROM sync_steps WHERE step = ? AND status = 'complete'",
                                (phase,)):
        if run_id not in not_runs:
            total += (json.loads(detail) if detail else {}).get(key, 0)
    return total


class RestEnvCopy(tgalib.RestEnv):
    """A REST environment that starts as a copy of another's databases (ops.db and rtopacks.db together: the
    corpus checkpoint ties them), with the no-change probe off (the copy is as current as its original)."""

    def __init__(self, other, name):
        super().__init__(other.fake, None, name=name, notify=False, rest_probe="no")
        self.keys = {"notify": False, "rest_probe": "no"}
        os.makedirs(os.path.dirname(self.corpus), exist_ok=True)
        for a, b in ((other.corpus, self.corpus), (other.ops, self.ops)):
            src = sqlite3.connect(a)
            dst = sqlite3.connect(b)
            src.backup(dst)
            src.close()
            dst.close()

    def set_keys(self, **keys):
        self.keys.update(keys)
        from harness import base_config, write_config
        tga = {"source": "rest", "rest_base_url": self.fake.url + "/api", "epoch": tgalib.EPOCH,
               "rest_page_size": 50, "rest_scope_page_size": 100, "step_backoff": "50ms",
               "step_backoff_max": "200ms", "step_retries": 1}
        tga.update(self.keys)
        write_config(self.config, base_config(self.wd, None, {"tga-sync": tga}))


if __name__ == "__main__":
    unittest.main(verbosity=2)
