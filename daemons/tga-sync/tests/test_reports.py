#!/usr/bin/python3
"""What a tga-sync run reports must be true (issue 12, items 2-4): the high-water mark is exactly the plan's end (a
change 1 ms after it is fetched by the next cycle, even with overlap = 0); organisations that are not RTOs
(GetDetails i:type Organisation2) are kept with their kind and counted and mailed apart from the RTOs; and a
completion mail switched off (notify = no) is not an error on the notify step.
"""

import json
import unittest

import tgalib
from harness import query, runs

# A plan end with a fraction of a second: a mark rounded to whole seconds would differ from it.
END = "2026-01-05T00:00:00.25Z"


class ReportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tgalib.share_fake(cls, "tgarepfake", "--frozen-clock", now=END, smtp=False)
        cls.env = tgalib.Env(cls.fake, None, name="tgarep", overlap="0s", notify=False)
        assert cls.env.run_once() == 0, cls.env.daemon.read_log()[-4000:]

    @classmethod
    def tearDownClass(cls):
        cls.env.cleanup()

    def job_state(self):
        return json.loads(query(self.env.ops, "SELECT job_state FROM tga_sync_cursor")[0][0])

    def test_1_notify_no_is_not_an_error(self):
        r = runs(self.env.ops, "tga_sync")[0]
        self.assertEqual(r["status"], "complete")
        self.assertEqual(query(self.env.ops, "SELECT status, error FROM sync_steps WHERE run_id = ? AND"
                               " step = 'notify'", (r["run_id"],)), [("complete", None)])
        self.assertIsNone(r["error"])
        self.assertIn("no completion mail: notify = no", self.env.daemon.read_log())

    def test_2_high_water_mark_is_the_plan_end(self):
        env, fake = self.env, self.fake
        self.assertEqual(self.job_state()["hwm"], END)
        self.assertEqual(self.job_state()["del_hwm"], END)
        # A change stamped 1 ms after the plan's end, seen by the next cycle (overlap 0).
        quals = sorted(c["Code"] for c in tgalib.fake_dump(fake)["TrainingComponents"]
                       if c["ComponentType"] == "Qualification")
        fake.post("/_fake/clock", {"now": "2026-01-05T00:00:00.251Z"})
        ans = fake.post("/_fake/mutate", {"action": "update", "kind": "qualification", "code": quals[0],
                                          "title": "Certificate II in Late Changes"})
        self.assertEqual(ans["changes"], {"qualification": {"update": [quals[0]]}})
        fake.post("/_fake/clock", {"now": "2026-01-05T00:01:00Z"})
        self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-3000:])
        self.assertIn("cycle plan: changes from %s to 2026-01-05T00:01:00Z (incremental)" % END,
                      env.daemon.read_log())
        self.assertEqual(query(env.corpus, "SELECT title, updated_date FROM tga_components WHERE code = ?",
                               (quals[0],)), [("Certificate II in Late Changes", "2026-01-05T00:00:00.251Z")])
        self.assertEqual(tgalib.compare(env.corpus, tgalib.fake_dump(fake)), {})
        summary, changes = tgalib.summary(env.ops)
        self.assertEqual(summary["components"]["Qualification"]["updated"], 1)
        # The operator's window is whole seconds, rounded outwards; the mark stays exact.
        self.assertEqual(summary["window"], {"from": "2026-01-05T00:00:00Z", "to": "2026-01-05T00:01:00Z"})
        self.assertEqual(self.job_state()["hwm"], "2026-01-05T00:01:00Z")



class OrganisationKindTest(unittest.TestCase):
    """OrganisationService lists every organisation; those that are not RTOs are not reported as RTOs."""

    @classmethod
    def setUpClass(cls):
        tgalib.share_fake(cls, "tgaorgfake")
        cls.env = tgalib.Env(cls.fake, cls.smtp, name="tgaorg")

    @classmethod
    def tearDownClass(cls):
        cls.env.cleanup()

    def mail_body(self, n):
        msg = self.smtp.wait(n)[n - 1]["msg"]
        return msg.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")

    def test_1_full_cycle_counts_them_apart(self):
        env, fake = self.env, self.fake
        others = [fake.post("/_fake/mutate", {"action": "add", "kind": "organisation"})["changes"]["organisation"]
                  ["add"][0] for _ in range(3)]
        dump = tgalib.fake_dump(fake)
        n_rtos = sum(1 for o in dump["Organisations"] if o["Kind"] == "Rto3")
        self.assertEqual(len(dump["Organisations"]), n_rtos + 3)
        self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-3000:])
        self.assertEqual(tgalib.compare(env.corpus, dump), {})
        self.assertEqual(query(env.corpus, "SELECT kind, count(*) FROM tga_rtos GROUP BY kind ORDER BY kind"),
                         [("Organisation2", 3), ("RTO", n_rtos)])
        summary, changes = tgalib.summary(env.ops)
        self.assertEqual(summary["rtos"]["added"], n_rtos)
        self.assertEqual(summary["organisations"]["added"], 3)
        self.assertEqual(sorted((x["code"], x["kind"]) for x in summary["organisations"]["added_list"]),
                         sorted((c, "Organisation2") for c in others))
        self.assertNotIn(others[0], {x["code"] for x in summary["rtos"]["added_list"]})
        body = self.mail_body(1)
        self.assertRegex(body, r"\n  RTOs +%d +0 +0\n" % n_rtos)
        self.assertRegex(body, r"\n  Other organisations +3 +0 +0\n")
        self.assertRegex(body, r"\nOther organisations added \(3\):\n  \+ %s +.+ \(Organisation2\)\n" % min(others))
        type(self).others = sorted(others)

    def test_2_changes_to_them(self):
        env, fake = self.env, self.fake
        upd, gone = self.others[0], self.others[1]
        fake.post("/_fake/mutate", {"action": "update", "kind": "organisation", "code": upd})
        fake.post("/_fake/mutate", {"action": "delete", "kind": "organisation", "code": gone})
        self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-3000:])
        self.assertEqual(tgalib.compare(env.corpus, tgalib.fake_dump(fake)), {})
        summary, changes = tgalib.summary(env.ops)
        self.assertEqual((summary["rtos"]["added"], summary["rtos"]["updated"], summary["rtos"]["removed"]),
                         (0, 0, 0))
        o = summary["organisations"]
        self.assertEqual((o["added"], o["updated"], o["removed"]), (0, 1, 1))
        self.assertEqual([x["code"] for x in o["updated_list"]], [upd])
        self.assertEqual([x["code"] for x in o["removed_list"]], [gone])
        self.assertEqual(changes, 2)
        body = self.mail_body(2)
        self.assertRegex(body, r"\n  Other organisations +0 +1 +1\n")
        self.assertIn("\n  - %s " % gone, body)


if __name__ == "__main__":
    unittest.main(verbosity=2)
