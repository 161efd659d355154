#!/usr/bin/python3
"""tga-sync against the fake TGA SOAP server (small scale): a full cycle, then an incremental one after changes of
every kind, then one with nothing changed.

After each cycle every table equals the fake's register by content (tgalib.compare); deletions are soft; the change
summary on the run row and in the completion mail lists exactly what the fake's mutate calls reported; and a cycle
with nothing changed makes only search requests.
"""

import json
import unittest

import tgalib
from harness import Workdir, query, runs, syncctl

KIND_TYPE = {"training_package": "TrainingPackage", "qualification": "Qualification", "unit": "Unit",
             "skill_set": "SkillSet", "accredited_course": "AccreditedCourse"}


def scope_of(dump):
    out = {}
    for o in dump["Organisations"]:
        for s in o["Scopes"]:
            out[(o["Code"], s["NrtCode"], s["IsImplicit"])] = (s["TrainingComponentType"], s["ExtentCode"],
                                                                s["IsRefused"], s["ScopeDecisionType"],
                                                                s["StartDate"], s["EndDate"])
    return out


def expected_scope(before, after):
    """{rto: [added, removed, changed]} from two dumps."""
    a, b = scope_of(before), scope_of(after)
    out = {}
    for k in b.keys() - a.keys():
        out.setdefault(k[0], [0, 0, 0])[0] += 1
    for k in a.keys() - b.keys():
        out.setdefault(k[0], [0, 0, 0])[1] += 1
    for k in a.keys() & b.keys():
        if a[k] != b[k]:
            out.setdefault(k[0], [0, 0, 0])[2] += 1
    return out


def expected_changes(answers):
    """From /_fake/mutate answers: {type: {"added": set, "updated": set, "removed": set}} and the same for rtos."""
    comps, rtos = {}, {"added": set(), "updated": set(), "removed": set()}
    for ans in answers:
        for kind, acts in ans["changes"].items():
            dst = rtos if kind == "rto" else comps.setdefault(KIND_TYPE[kind],
                                                              {"added": set(), "updated": set(), "removed": set()})
            dst["added"] |= set(acts.get("add", ()))
            dst["updated"] |= set(acts.get("update", ()))
            dst["removed"] |= set(acts.get("delete", ()))
    for d in list(comps.values()) + [rtos]:
        # A code added and changed again in the same cycle is "added"; one deleted is "removed".
        d["updated"] -= d["added"] | d["removed"]
        d["added"] -= d["removed"]
    return comps, rtos


class SyncTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tgalib.share_fake(cls, "tgafake")
        cls.env = tgalib.Env(cls.fake, cls.smtp, name="tgasync", summary_list_max=200)

    @classmethod
    def tearDownClass(cls):
        cls.env.cleanup()

    def last_mail(self, n):
        msgs = self.smtp.wait(n)
        m = msgs[n - 1]["msg"]
        return str(m["Subject"]), m.get_body(preferencelist=("plain",)).get_content()

    def check_summary_lists(self, summary, body, comps, rtos):
        for ctype, exp in comps.items():
            got = summary["components"][ctype]
            for what, mark in (("added", "+"), ("updated", "~"), ("removed", "-")):
                codes = {x["code"] for x in got[what + "_list"]}
                self.assertEqual(codes, exp[what], "%s %s" % (ctype, what))
                self.assertEqual(got[what], len(exp[what]), "%s %s count" % (ctype, what))
                for c in exp[what]:
                    self.assertRegex(body, r"\n  \%s %s " % (mark, c), "mail lists %s %s %s" % (ctype, what, c))
        for ctype, got in summary["components"].items():
            if ctype not in comps:
                self.assertEqual((got["added"], got["updated"], got["removed"]), (0, 0, 0), ctype)
        for what, mark in (("added", "+"), ("updated", "~"), ("removed", "-")):
            self.assertEqual({x["code"] for x in summary["rtos"][what + "_list"]}, rtos[what], "rtos %s" % what)
            for c in rtos[what]:
                self.assertRegex(body, r"\n  \%s %s " % (mark, c))

    def test_1_full_cycle(self):
        env = self.env
        self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-4000:])
        dump = tgalib.fake_dump(self.fake)
        self.assertEqual(tgalib.compare(env.corpus, dump), {})
        r = runs(env.ops, "tga_sync")
        self.assertEqual([x["status"] for x in r], ["complete"])
        summary, changes = tgalib.summary(env.ops)
        n_scope = sum(len(o["Scopes"]) for o in dump["Organisations"])
        self.assertEqual(summary["scope"]["rows_added"], n_scope)
        self.assertEqual(summary["rtos"]["added"], len(dump["Organisations"]))
        by_type = {}
        for c in dump["TrainingComponents"]:
            by_type[c["ComponentType"]] = by_type.get(c["ComponentType"], 0) + 1
        for t, n in by_type.items():
            self.assertEqual(summary["components"][t]["added"], n, t)
        self.assertEqual(changes, len(dump["TrainingComponents"]) + len(dump["Organisations"]) + n_scope)
        subject, body = self.last_mail(1)
        self.assertEqual(subject, "[tga-sync] cycle complete \u2014 %d changes" % changes)
        self.assertIn("sync_orgs", body)
        self.assertIn("Window:", body)
        # The whole register arrived once: tombstones of codes never stored are kept, nothing was soft-deleted.
        self.assertEqual(query(env.corpus, "SELECT count(*) FROM tga_components WHERE deleted_at IS NOT NULL"),
                         [(0,)])
        self.assertEqual(query(env.corpus, "SELECT count(*) FROM tga_deletions")[0][0],
                         len(dump["DeletedTrainingComponents"]) + len(dump["DeletedOrganisations"]))
        # The contract cricos-sync reads.
        cols = [r[1] for r in query(env.corpus, "PRAGMA table_info(tga_components)")]
        for c in ("code", "component_type", "title", "deleted_at"):
            self.assertIn(c, cols)
        type(self).dump0 = dump

    def test_2_incremental_after_changes(self):
        env, fake = self.env, self.fake
        before = self.dump0
        specs, picked = tgalib.changes_of_every_kind(before, package=True)
        quals, units, rto_del = picked.quals, picked.units, picked.orgs[2]["Code"]
        answers = [fake.post("/_fake/mutate", s) for s in specs]
        after = tgalib.fake_dump(fake)
        fake.post("/_fake/stats/reset")
        self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-4000:])
        self.assertEqual(tgalib.compare(env.corpus, after), {})

        # Soft deletes: the rows stay, marked, with their children; the RTO's scope rows are marked removed.
        rows = query(env.corpus, "SELECT code, deleted_operation, deleted_at IS NOT NULL, deleted_in IS NOT NULL"
                     " FROM tga_components WHERE code IN (?, ?) ORDER BY code", (units[0], quals[2]))
        self.assertEqual(sorted(rows), sorted([(units[0], "PhysicalDelete", 1, 1), (quals[2], "LogicalDelete", 1, 1)]))
        self.assertGreater(query(env.corpus, "SELECT count(*) FROM tga_releases WHERE component_code = ?",
                                 (quals[2],))[0][0], 0)
        self.assertEqual(query(env.corpus, "SELECT deleted_at IS NOT NULL FROM tga_rtos WHERE code = ?", (rto_del,)),
                         [(1,)])
        n_del_scope = len(next(o for o in before["Organisations"] if o["Code"] == rto_del)["Scopes"])
        self.assertEqual(query(env.corpus, "SELECT count(*) FROM tga_rto_scope WHERE rto_code = ? AND removed_in"
                               " IS NOT NULL", (rto_del,))[0][0], n_del_scope)

        # The summary (run row) and the mail list exactly what changed.
        summary, changes = tgalib.summary(env.ops)
        exp_comps, exp_rtos = expected_changes(answers)
        subject, body = self.last_mail(2)
        self.check_summary_lists(summary, body, exp_comps, exp_rtos)
        exp_scope = expected_scope(before, after)
        got_scope = {e["code"]: [e["added"], e["removed"], e["changed"]] for e in summary["scope"]["list"]}
        self.assertEqual(got_scope, exp_scope)
        self.assertEqual(summary["scope"]["rows_added"], sum(v[0] for v in exp_scope.values()))
        self.assertEqual(summary["scope"]["rows_removed"], sum(v[1] for v in exp_scope.values()))
        self.assertEqual(summary["scope"]["rows_changed"], sum(v[2] for v in exp_scope.values()))
        for code in exp_scope:
            self.assertIn("\n  %-12s " % code, body)
        total = sum(len(d[w]) for d in list(exp_comps.values()) + [exp_rtos] for w in ("added", "updated", "removed"))
        total += sum(sum(v) for v in exp_scope.values())
        self.assertEqual(changes, total)
        self.assertEqual(subject, "[tga-sync] cycle complete \u2014 %d changes" % total)
        self.assertEqual(summary["tombstones"]["new"], sum(len(a["changes"].get(k, {}).get("delete", ()))
                                                            for a in answers for k in a["changes"]))
        # Only what changed was fetched: GetDetails for the changed records, none for the rest.
        stats = fake.get("/_fake/stats")
        n_changed = sum(len(d["added"] | d["updated"]) for d in list(exp_comps.values()) + [exp_rtos])
        n_changed += len([c for c in exp_scope if c not in exp_rtos["added"] | exp_rtos["updated"]
                          | exp_rtos["removed"]])
        self.assertLessEqual(stats["by_op"].get("GetDetails", 0), n_changed)
        type(self).dump1 = after

    def test_3_nothing_changed_makes_only_searches(self):
        env, fake = self.env, self.fake
        fake.post("/_fake/stats/reset")
        self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-4000:])
        stats = fake.get("/_fake/stats")
        self.assertEqual(set(stats["by_op"]), {"GetServerTime", "SearchByModifiedDate", "SearchDeletedByDeletedDate"},
                         stats["by_op"])
        summary, changes = tgalib.summary(env.ops)
        self.assertEqual(changes, 0, json.dumps(summary))
        subject, body = self.last_mail(3)
        self.assertEqual(subject, "[tga-sync] cycle complete \u2014 0 changes")
        self.assertEqual(tgalib.compare(env.corpus, self.dump1), {})

    def test_4_full_trigger_rereads_and_changes_nothing(self):
        env, fake = self.env, self.fake
        fake.post("/_fake/stats/reset")
        # --once has no --full: the operator's way is the control socket.
        d = env.daemon.start()
        try:
            r = syncctl(env.config, "trigger", "tga-sync", "--full", "--wait", timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        finally:
            self.assertEqual(d.stop(), 0)
        stats = fake.get("/_fake/stats")
        self.assertGreater(stats["by_op"].get("GetDetails", 0), 0)
        summary, changes = tgalib.summary(env.ops)
        self.assertEqual(changes, 0, json.dumps(summary))
        self.assertTrue(summary["window"].get("read_all"))
        self.assertEqual(tgalib.compare(env.corpus, self.dump1), {})


class VersionTest(unittest.TestCase):
    """Another contract version: paths ...ServiceV2.svc, namespace .../services/2/, IncludeLegacyData, and an
    account of our own (the password comes from a file, as LoadCredential would give it)."""

    def test_version_2_with_legacy_flag_and_own_account(self):
        wd = Workdir("tgav2")
        pw = wd.file("server-password")
        with open(pw, "w") as f:
            f.write("s3cret & <xml>")
        fake = tgalib.start_fake(wd, "--version", "2", "--username", "RTOPACKS.Reader", "--password-file", pw)
        env = tgalib.Env(fake, None, name="tgav2", version=2, username="RTOPACKS.Reader", password="s3cret & <xml>",
                         include_legacy_data="false", notify=False)
        try:
            self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-3000:])
            self.assertEqual(tgalib.compare(env.corpus, tgalib.fake_dump(fake)), {})
            self.assertIn("TrainingComponentServiceV2.svc/Training", env.daemon.read_log())
            self.assertEqual(fake.get("/_fake/stats")["soap_faults"], {})
        finally:
            fake.stop()
            env.cleanup()
            wd.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
