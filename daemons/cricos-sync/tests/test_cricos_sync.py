#!/usr/bin/python3
"""cricos-sync against the fake data.gov.au CKAN: editions, change reports, resume after SIGKILL, the TGA link.

Acceptance (issue 4): the first edition is synced and equal to the fake's content; a second edition with
additions, changes and removals gives exactly those in the run's summary and the email; an unchanged edition makes
no data requests beyond init; SIGKILL mid-courses and restart resumes at its offset and ends identical.
"""

import signal
import unittest

from env import share_upstreams
from cricoslib import (TABLES, Env, db_rows, diff, expected, last_run, query, start_fake, stop_fake,
                       step_detail, summary)
from harness import ctl, cursor, runs, settled_mails, wait_for


def mail_key(m):
    return str(m["msg"]["X-RTOpacks-Mail-Key"])


def body(m):
    return m["msg"].get_content()


class CricosSyncTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        share_upstreams(cls, start_fake, stop_fake)

    def setUp(self):
        f = self.fake
        f.post("/_fake/fault/clear")
        for action in ({"action": "edition", "edition": 1}, {"action": "bom_field", "mode": "strip"},
                       {"action": "blanks", "mode": "null"}, {"action": "page_delay", "seconds": 0, "per_1000": 0}):
            f.post("/_fake/mutate", action)
        f.post("/_fake/stats/reset")

    def completion_mail(self, env, before):
        """The one completion mail of the last cycle."""
        cycle = query(env.ops, "SELECT cycle_id FROM sync_runs ORDER BY started_at DESC, run_id DESC LIMIT 1")[0][0]
        key = "cricos_sync/complete/%s" % cycle

        ms = settled_mails(self.smtp, key, env.ops, before)
        self.assertEqual(len(ms), 1)
        return ms[0]

    def tga_table_exists(self, env):
        return bool(query(env.corpus, "SELECT 1 FROM sqlite_master WHERE name = 'tga_components'"))

    # --- the editions --------------------------------------------------------------------------------------------

    def test_first_edition_then_changes_then_unchanged(self):
        env = Env(self.fake, self.smtp, name="cricos-ed")
        dump = self.fake.get("/_fake/dump")
        sent = len(self.smtp.received())
        self.assertEqual(env.daemon.run_once(), 0, env.daemon.read_log())
        env.assert_matches(self, dump, "after edition 1")
        run = last_run(env.ops)
        self.assertEqual(run["status"], "complete", run)
        exp, stats = expected(dump)

        # Quirks counted per column in the step rows, as the oracle counts them.
        self.assertTrue(stats["unparseable"], "the fake's edition 1 has unparseable money values")
        for (t, hdr), n in stats["unparseable"].items():
            det = step_detail(env.ops, run["run_id"], "sync_" + t)
            self.assertEqual(det.get("unparseable." + hdr), n, (t, hdr, det))
        self.assertEqual(step_detail(env.ops, run["run_id"], "sync_institutions").get("blank_rows"),
                         stats["blank"]["institutions"])
        self.assertEqual(step_detail(env.ops, run["run_id"], "sync_course_locations").get("duplicate_rows"),
                         stats["duplicates"]["course_locations"])
        # Expired=Yes is kept as a flag.
        self.assertTrue(query(env.corpus, "SELECT count(*) FROM cricos_courses WHERE expired = 1")[0][0] > 0)

        s = summary(env.ops, run["run_id"])
        self.assertTrue(s["new_edition"] and s["first_sync"], s)
        total = 0
        for t in TABLES:
            self.assertEqual(s["tables"][t]["new"], len(exp[t]), t)
            self.assertEqual(s["tables"][t]["rows"], len(exp[t]), t)
            total += len(exp[t])
        unp = {"%s.%s" % k: v for k, v in stats["unparseable"].items()}
        self.assertEqual(s["unparseable"], unp)
        link = s["link"]
        if not self.tga_table_exists(env):
            self.assertIn("tga_components does not exist yet", link["note"])
        with_code = sum(1 for r in exp["courses"].values() if r["vet_national_code"])
        self.assertEqual((link["courses_with_code"], link["unmatched"], link["matched"]), (with_code, with_code, 0))
        m = self.completion_mail(env, sent)
        self.assertEqual(str(m["msg"]["Subject"]), "[cricos-sync] cycle complete \u2014 %d changes" % total)
        self.assertIn("First sync of the CRICOS register", body(m))
        self.assertIn("Tuition Fee", body(m))

        # Editions 2, 3, 4: providers renamed/added/removed (all tables), courses only, providers only.
        prev, prev_state = exp, self.fake.get("/_fake/state")
        for n in (2, 3, 4):
            with self.subTest(edition=n):
                self.fake.post("/_fake/mutate", {"action": "edition", "edition": n})
                self.fake.post("/_fake/stats/reset")
                state = self.fake.get("/_fake/state")
                dump = self.fake.get("/_fake/dump")
                sent = len(self.smtp.received())
                self.assertEqual(env.daemon.run_once(), 0, env.daemon.read_log())
                env.assert_matches(self, dump, "after edition %d" % n)
                cur, _ = expected(dump)
                ch = diff(prev, cur)
                run = last_run(env.ops)
                s = summary(env.ops, run["run_id"])
                self.assertTrue(s["new_edition"])
                self.assertNotIn("first_sync", s)
                changes = 0
                for t in TABLES:
                    for kind in ("new", "changed", "removed"):
                        self.assertEqual(s["tables"][t][kind], len(ch[t][kind]), (n, t, kind, ch[t][kind]))
                        changes += len(ch[t][kind])
                self.assertGreater(changes, 0)
                self.assertEqual(query(env.ops, "SELECT changes FROM sync_runs WHERE run_id = ?",
                                       (run["run_id"],))[0][0], changes)
                # Exactly those items, by code and name.
                for kind in ("new", "changed"):
                    self.assertEqual(sorted(i["code"] for i in s["tables"]["institutions"].get(kind + "_items", [])),
                                     sorted(ch["institutions"][kind]))
                    self.assertEqual(sorted(i["code"] for i in s["tables"]["courses"].get(kind + "_items", [])),
                                     sorted(ch["courses"][kind]))
                    self.assertEqual(sorted((i["code"], i["name"]) for i in
                                            s["tables"]["locations"].get(kind + "_items", [])),
                                     sorted((cur["locations"][k]["provider_code"], cur["locations"][k]["location_name"])
                                            for k in ch["locations"][kind]))
                self.assertEqual(sorted(i["code"] for i in s["tables"]["institutions"].get("removed_items", [])),
                                 sorted(ch["institutions"]["removed"]))
                self.assertEqual(sorted(i["code"] for i in s["tables"]["courses"].get("removed_items", [])),
                                 sorted(ch["courses"]["removed"]))
                # Removed rows are soft-deleted, not gone.
                for t in TABLES:
                    gone = db_rows(env.corpus, t, present=False)
                    for k in ch[t]["removed"]:
                        self.assertIn(k, gone, (t, k))
                self.assertEqual(query(env.corpus, "SELECT count(*) FROM cricos_courses WHERE removed_cycle IS NOT "
                                                   "NULL AND deleted_at IS NULL")[0][0], 0)
                # Only the resources that changed were read.
                read = set(self.fake.get("/_fake/stats")["datastore_pages"])
                changed = {t for t in TABLES if state["versions"][t] != prev_state["versions"][t]}
                self.assertEqual(read, changed, "edition %d" % n)
                # The mail lists them.
                m = self.completion_mail(env, sent)
                self.assertEqual(str(m["msg"]["Subject"]), "[cricos-sync] cycle complete \u2014 %d change%s" % (
                    changes, "" if changes == 1 else "s"))
                text = body(m)
                for kind, mark in (("new", "+"), ("changed", "~")):
                    for k in ch["institutions"][kind]:
                        self.assertIn("%s %-8s %s" % (mark, k, cur["institutions"][k]["institution_name"]), text)
                    for k in ch["courses"][kind]:
                        self.assertIn("%s %-8s %s" % (mark, k, cur["courses"][k]["course_name"]), text)
                for k in ch["institutions"]["removed"]:
                    self.assertIn("- %-8s %s" % (k, prev["institutions"][k]["institution_name"]), text)
                for k in ch["courses"]["removed"]:
                    self.assertIn("- %-8s %s" % (k, prev["courses"][k]["course_name"]), text)
                prev, prev_state = cur, state

        # Unchanged: init only, recorded and mailed as "no new edition".
        self.fake.post("/_fake/stats/reset")
        sent = len(self.smtp.received())
        self.assertEqual(env.daemon.run_once(), 0, env.daemon.read_log())
        st = self.fake.get("/_fake/stats")
        self.assertEqual(st["by_op"], {"package_show": 1}, st)
        self.assertEqual(st["datastore_pages"], {})
        run = last_run(env.ops)
        s = summary(env.ops, run["run_id"])
        self.assertFalse(s["new_edition"])
        self.assertEqual(query(env.ops, "SELECT changes FROM sync_runs WHERE run_id = ?", (run["run_id"],))[0][0], 0)
        self.assertIn("no new edition", query(env.ops, "SELECT error FROM sync_steps WHERE run_id = ? AND step = "
                                                       "'init'", (run["run_id"],))[0][0])
        m = self.completion_mail(env, sent)
        self.assertEqual(str(m["msg"]["Subject"]), "[cricos-sync] cycle complete \u2014 0 changes")
        self.assertIn("No new CRICOS edition", body(m))
        env.assert_matches(self, self.fake.get("/_fake/dump"), "after the unchanged edition")
        # A re-upload of identical bytes (new last_modified, same hash) is not a new edition either.
        self.fake.post("/_fake/mutate", {"action": "touch", "resource": "courses"})
        self.fake.post("/_fake/stats/reset")
        self.assertEqual(env.daemon.run_once(), 0)
        self.assertEqual(self.fake.get("/_fake/stats")["datastore_pages"], {})
        self.assertFalse(summary(env.ops)["new_edition"])
        env.wd.cleanup()

    def test_bom_field_kept_and_empty_strings_give_the_same_rows(self):
        a = Env(self.fake, None, name="cricos-bom-a", notify=False)
        self.assertEqual(a.daemon.run_once(), 0, a.daemon.read_log())
        self.fake.post("/_fake/mutate", {"action": "bom_field", "mode": "keep"})
        self.fake.post("/_fake/mutate", {"action": "blanks", "mode": "empty"})
        dump = self.fake.get("/_fake/dump")
        self.assertTrue(dump["fields"]["locations"][0].startswith("\ufeff"), "the fake serves the BOM'd header")
        b = Env(self.fake, None, name="cricos-bom-b", notify=False)
        self.assertEqual(b.daemon.run_once(), 0, b.daemon.read_log())
        b.assert_matches(self, dump)
        self.assertEqual(a.corpus_dump(), b.corpus_dump())
        a.wd.cleanup()
        b.wd.cleanup()

    # --- crash and resume ----------------------------------------------------------------------------------------

    def test_sigkill_mid_courses_resumes_at_its_offset(self):
        ref = Env(self.fake, None, name="cricos-ref", notify=False, page_size=50)
        self.assertEqual(ref.daemon.run_once(), 0, ref.daemon.read_log())
        reference = ref.corpus_dump()

        env = Env(self.fake, self.smtp, name="cricos-kill", page_size=50)
        sent = len(self.smtp.received())
        # Killed (SIGKILL) after the third courses page is written, before its commit.
        rc = env.daemon.run_once(env={"RTOPACKS_CRASH_AT": "cricos_page_courses:3"})
        self.assertEqual(rc, -signal.SIGKILL, env.daemon.read_log())
        cur = cursor(env.ops, "cricos_sync")
        self.assertEqual((cur["cycle_phase"], cur["phase_cursor"]), ("sync_courses", "offset=100"))
        self.assertEqual(query(env.corpus, "SELECT count(*) FROM cricos_courses")[0][0], 100,
                         "the killed page must not be half-written")
        self.fake.post("/_fake/stats/reset")
        self.assertEqual(env.daemon.run_once(), 0, env.daemon.read_log())
        pages = self.fake.get("/_fake/stats")["datastore_pages"]
        ncourses = self.fake.get("/_fake/state")["resources"]["courses"]["rows"]
        self.assertEqual(pages.get("courses"), (ncourses - 100 + 49) // 50, pages)
        self.assertNotIn("institutions", pages, "the resumed run starts at its offset, not from the beginning")
        self.assertEqual(env.corpus_dump(), reference)
        r = runs(env.ops, "cricos_sync")
        self.assertEqual([x["status"] for x in r], ["stale", "complete"])
        self.assertEqual(r[1]["trigger"], "resume")
        self.assertEqual(r[1]["resumed_from"], r[0]["run_id"])
        # The summary still counts the whole cycle, and one completion mail goes out.
        s = summary(env.ops)
        self.assertEqual(s["tables"]["courses"]["new"], ncourses - 2)
        self.completion_mail(env, sent)

        # An outside SIGKILL while a courses page is in flight, then a daemon that resumes on start.
        env2 = Env(self.fake, None, name="cricos-kill2", notify=False, page_size=50)
        self.fake.fault("datastore_search", "slow", count=1, delay=30, skip=2,
                        resource_id="48cacf69-2082-415e-9595-f17d0c3a4af0")
        d = env2.daemon.start()
        self.assertTrue(ctl(d.socket_path(), "trigger")["ok"])
        wait_for(lambda: cursor(env2.ops, "cricos_sync")["phase_cursor"] == "offset=100", timeout=30,
                 what="two courses pages committed")
        # Kill while page 3 is in flight: the slow fault on it has fired (the fake is holding the request).
        wait_for(lambda: any(f["fired"] for f in self.fake.faults()), what="page 3 in flight")
        d.kill()
        self.fake.post("/_fake/fault/clear")
        d.start()
        wait_for(lambda: cursor(env2.ops, "cricos_sync")["cycle_phase"] == "done", timeout=60,
                 what="the resumed cycle")
        wait_for(lambda: runs(env2.ops)[-1]["status"] == "complete", what="the run row")
        self.assertEqual(d.stop(), 0)
        self.assertEqual(env2.corpus_dump(), reference)
        self.assertEqual([x["status"] for x in runs(env2.ops)], ["stale", "complete"])
        for e in (ref, env, env2):
            e.wd.cleanup()

    # --- the TGA link --------------------------------------------------------------------------------------------

    def test_link_to_tga_components(self):
        import sqlite3
        env = Env(self.fake, None, name="cricos-link", notify=False)
        self.assertEqual(env.daemon.run_once(), 0, env.daemon.read_log())
        exp, _ = expected(self.fake.get("/_fake/dump"))
        codes = sorted({r["vet_national_code"] for r in exp["courses"].values() if r["vet_national_code"]})
        self.assertGreater(len(codes), 3)

        # Before tga-sync has created its table: every code unmatched, and the step and summary say why.
        con = sqlite3.connect(env.corpus)
        had = bool(con.execute("SELECT 1 FROM sqlite_master WHERE name = 'tga_components'").fetchall())
        if had:
            con.execute("ALTER TABLE tga_components RENAME TO tga_components_hidden")
            con.commit()
        self.fake.post("/_fake/mutate", {"action": "edition", "edition": 2})
        self.assertEqual(env.daemon.run_once(), 0, env.daemon.read_log())
        run = last_run(env.ops)
        link = summary(env.ops, run["run_id"])["link"]
        self.assertFalse(link["tga_available"])
        self.assertIn("tga_components does not exist yet", link["note"])
        self.assertEqual(link["unmatched"], link["courses_with_code"])
        self.assertIn("tga_components does not exist yet", query(
            env.ops, "SELECT error FROM sync_steps WHERE run_id = ? AND step = 'link'", (run["run_id"],))[0][0])

        # tga-sync's table (docs/CONTRIBUTING-DAEMONS.md), with a current and a deleted component.
        if had:
            con.execute("ALTER TABLE tga_components_hidden RENAME TO tga_components")
        else:
            con.execute("CREATE TABLE tga_components (code TEXT PRIMARY KEY, component_type TEXT, title TEXT, "
                        "deleted_at TEXT)")
        cols = con.execute("PRAGMA table_info(tga_components)").fetchall()
        for code, title, deleted in ((codes[0], "A", None), (codes[1], "B", "2026-05-01T00:00:00Z")):
            row = {"code": code, "component_type": "Qualification", "title": title, "deleted_at": deleted}
            for _cid, name, typ, notnull, dflt, _pk in cols:
                if name not in row and notnull and dflt is None:
                    row[name] = 0 if "INT" in (typ or "").upper() else ""
            con.execute("INSERT INTO tga_components (%s) VALUES (%s)" % (", ".join(row), ", ".join("?" * len(row))),
                        list(row.values()))
        con.commit()
        con.close()
        self.fake.post("/_fake/mutate", {"action": "edition", "edition": 3})
        self.assertEqual(env.daemon.run_once(), 0, env.daemon.read_log())
        cur, _ = expected(self.fake.get("/_fake/dump"))
        want = {}
        for k, r in cur["courses"].items():
            c = r["vet_national_code"]
            want[k] = None if c is None else "matched" if c == codes[0] else "deleted" if c == codes[1] else \
                "unmatched"
        got = dict(query(env.corpus, "SELECT course_code, tga_link FROM cricos_courses WHERE removed_cycle IS NULL"))
        self.assertEqual(got, want)
        link = summary(env.ops)["link"]
        self.assertTrue(link["tga_available"])
        self.assertNotIn("note", link)
        vals = list(want.values())
        self.assertGreater(vals.count("matched"), 0)
        self.assertEqual((link["matched"], link["deleted"], link["unmatched"]),
                         (vals.count("matched"), vals.count("deleted"), vals.count("unmatched")))
        self.assertNotIn(codes[0], link["unmatched_list"])
        env.wd.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
