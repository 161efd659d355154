#!/usr/bin/python3
"""tga-sync's window restart (docs/tga-sync.md, "Windows"): when `Count` on a later page of a SearchByModifiedDate
window differs from page 1's, a record left the window and the later ones moved up a place, so the window is read
again from page 1.  Here a record of a three-page window changes again while the daemon is between page 1 and
page 2 (its modified date moves past the window's end): the daemon must say so, read the window again (the step row
counts window_restarts), complete, and after one more cycle hold exactly the fake's register."""

import json
import subprocess
import unittest

import tgalib
from harness import Workdir, query, runs, wait_for


class WindowRestartTest(unittest.TestCase):
    def setUp(self):
        self.fwd = Workdir("tgafake")
        self.addCleanup(self.fwd.cleanup)
        self.fake = tgalib.start_fake(self.fwd)
        self.addCleanup(self.fake.stop)
        # Pages of 5 and one window for the whole incremental span: 12 changes make a window of three pages.
        self.env = tgalib.Env(self.fake, name="tgawin", page_size=5, window="30d")
        self.addCleanup(self.env.cleanup)

    def searches(self):
        return self.fake.get("/_fake/stats")["by_service_op"].get("Training.SearchByModifiedDate", 0)

    def test_count_change_mid_window_reads_it_again(self):
        env, fake = self.env, self.fake
        self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-3000:])
        dump = tgalib.fake_dump(fake)
        units = sorted(c["Code"] for c in dump["TrainingComponents"] if c["ComponentType"] == "Unit"
                       and c["IsCurrent"])[:12]
        for code in units:
            fake.post("/_fake/mutate", {"action": "update", "kind": "unit", "code": code})
        fake.post("/_fake/stats/reset")
        # Training searches answer slowly, so the mutation below lands while page 2 is still to come.
        fake.fault("SearchByModifiedDate", "slow", count=-1, service="Training", delay=0.5)
        with open(env.daemon.log_path, "ab") as log:
            p = subprocess.Popen(env.daemon.command((), once=True), stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        # The positive signal: the first Training search page of this cycle has been answered.
        wait_for(lambda: self.searches() >= 1, timeout=60, what="page 1 of the Training window")
        fake.post("/_fake/mutate", {"action": "update", "kind": "unit", "code": units[0], "title": "Moved On"})
        self.assertEqual(p.wait(120), 0, env.daemon.read_log()[-3000:])
        log = env.daemon.read_log()
        self.assertRegex(log, r"training window \[[^)]*\): Count went from 12 to 11 while paging: reading it "
                              r"again from page 1")
        r = runs(env.ops, "tga_sync")[-1]
        self.assertEqual(r["status"], "complete")
        restarts = sum(json_detail.get("window_restarts", 0) for json_detail in self.details(env, r["run_id"]))
        self.assertEqual(restarts, 1)
        # The record that moved on is the next cycle's: after it the register is exact.
        fake.post("/_fake/fault/clear")
        self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-3000:])
        self.assertEqual(tgalib.compare(env.corpus, tgalib.fake_dump(fake)), {})

    @staticmethod
    def details(env, run_id):
        return [json.loads(d) for (d,) in query(env.ops, "SELECT detail FROM sync_steps WHERE run_id = ? AND "
                                                         "step = 'sync_training' AND detail IS NOT NULL",
                                                (run_id,))]


if __name__ == "__main__":
    unittest.main(verbosity=2)
