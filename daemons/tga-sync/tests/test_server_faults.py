#!/usr/bin/python3
"""tga-sync when the TGA service itself fails now and then (issue 12, item 1).

WCF answers a failure of the service with HTTP 500 and a SOAP fault a:InternalServiceFault (or s:Server).  That is
transient: the request is retried with backoff like any 5xx (docs/tga-sync.md, Errors).  A fault about the request
(InvalidSecurity, ActionNotSupported, DeserializationFailed, a ValidationFault) cannot pass on a retry and fails the
run at once, after one request.  And when a request does fail for good, the step retry does not search again the
empty windows the step had already walked: they are committed as progress first.
"""

import sys
import time
import unittest

import tgalib
from harness import Workdir, query, runs

# The daemon's default retries (4 per request, 3 per step), with waits short enough for a test.
FAST = {"retries": 4, "backoff": "10ms", "backoff_max": "50ms", "step_retries": 3, "step_backoff": "20ms",
        "step_backoff_max": "50ms", "notify": False}


def searches(fake, service="Training"):
    return fake.get("/_fake/stats")["by_service_op"].get("%s.SearchByModifiedDate" % service, 0)


class RandomServerFaultTest(unittest.TestCase):
    """1% and 10% of every request answered with a:InternalServiceFault: a fresh full cycle and an incremental
    cycle complete and hold the register."""

    def cycle_pair(self, rate, seed):
        wd = Workdir("tgasfake")
        fake = tgalib.start_fake(wd)
        env = tgalib.Env(fake, None, name="tgasf", **FAST)
        try:
            fake.fault("*", "server_fault", count=-1, rate=rate, seed=seed)
            t0 = time.monotonic()
            self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-4000:])
            t1 = time.monotonic()
            self.assertEqual(tgalib.compare(env.corpus, tgalib.fake_dump(fake)), {})
            fake.post("/_fake/mutate", {"action": "random", "fraction": 0.05, "seed": seed})
            t2 = time.monotonic()
            self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-4000:])
            t3 = time.monotonic()
            self.assertEqual(tgalib.compare(env.corpus, tgalib.fake_dump(fake)), {})
            stats = fake.get("/_fake/stats")
            self.assertGreater(stats["soap_faults"].get("InternalServiceFault", 0), 0, stats)
            self.assertEqual([r["status"] for r in runs(env.ops, "tga_sync")], ["complete", "complete"])
            # Retried request by request: the HTTP layer says so, with the fault's status.
            self.assertRegex(env.daemon.read_log(), r"TGA \w+Service\.\w+.*: HTTP 500; retry 1 of 4")
            print("%g%% faults: full cycle %.1fs, incremental %.1fs; %d faults in %d requests; step retries %d"
                  % (rate * 100, t1 - t0, t3 - t2, stats["soap_faults"]["InternalServiceFault"], stats["requests"],
                     env.daemon.read_log().count("step failed")), file=sys.stderr)
            return stats["soap_faults"]["InternalServiceFault"], stats["requests"]
        finally:
            fake.stop()
            env.cleanup()
            wd.cleanup()

    def test_one_percent(self):
        self.cycle_pair(0.01, 3)

    def test_ten_percent(self):
        faults, requests = self.cycle_pair(0.10, 5)
        self.assertGreater(faults, 20)


class OneFake(unittest.TestCase):
    """A fake TGA server for the class, without faults or counts before each test."""

    @classmethod
    def setUpClass(cls):
        cls.wd = Workdir("tgaonefake")
        cls.fake = tgalib.start_fake(cls.wd)

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()
        cls.wd.cleanup()

    def setUp(self):
        self.fake.post("/_fake/fault/clear")
        self.fake.post("/_fake/stats/reset")

    def tearDown(self):
        self.fake.post("/_fake/fault/clear")


class FatalFaultTest(OneFake):
    """Faults about the request fail the run at once: one request, no HTTP retry, no step retry."""

    def fails_at_once(self, faultcode, message, **keys):
        env = tgalib.Env(self.fake, None, name="tgafatal", **dict(FAST, **keys))
        try:
            self.assertEqual(env.run_once(), 1, env.daemon.read_log()[-3000:])
            r = runs(env.ops, "tga_sync")[-1]
            self.assertEqual((r["status"], r["phase"]), ("failed", "init"))
            self.assertIn(message, r["error"])
            stats = self.fake.get("/_fake/stats")
            self.assertEqual(stats["soap_faults"], {faultcode: 1}, stats)
            self.assertEqual(stats["requests"], 1, stats)
            self.assertEqual(query(env.ops, "SELECT attempts FROM sync_steps WHERE run_id = ? AND step = 'init'",
                                   (r["run_id"],)), [(1,)])
        finally:
            env.cleanup()

    def test_invalid_security(self):
        self.fake.fault("GetServerTime", "auth", count=-1)
        self.fails_at_once("InvalidSecurity", "TGA rejected the credentials")

    def test_validation_fault(self):
        self.fake.fault("GetServerTime", "soap_fault", count=-1, code="Refused", text="Refused by validation.")
        self.fails_at_once("Client", "SOAP fault s:Client (HTTP 500): Refused by validation. [ValidationFault: "
                           "Refused: Refused by validation.]")

    def test_deserialization_failed(self):
        self.fake.fault("GetServerTime", "soap_fault", count=-1, fault="DeserializationFailed")
        self.fails_at_once("DeserializationFailed", "SOAP fault a:DeserializationFailed (HTTP 500)")

    def test_action_not_supported(self):
        # Another contract's namespace: the SOAPAction names no operation of this service.
        self.fails_at_once("ActionNotSupported", "SOAP fault a:ActionNotSupported (HTTP 500)",
                           namespace="http://training.gov.au/services/12/")


class PersistentServerFaultTest(OneFake):
    """A service that keeps failing: every request retried, then every step, then the run fails naming the fault."""

    def test_persistent_server_fault(self):
        self.fake.fault("GetServerTime", "server_fault", count=-1)
        env = tgalib.Env(self.fake, None, name="tgapersist", **FAST)
        try:
            self.assertEqual(env.run_once(), 1, env.daemon.read_log()[-3000:])
            r = runs(env.ops, "tga_sync")[-1]
            self.assertEqual((r["status"], r["phase"]), ("failed", "init"))
            self.assertRegex(r["error"], r"^init: TGA TrainingComponentService\.GetServerTime: SOAP fault "
                             r"a:InternalServiceFault \(HTTP 500, after 5 attempts\): The server was unable to process "
                             r"the request due to an internal error\..* \(gave up after 4 attempts\)$")
            # retries = 4 per request, step_retries = 3: 4 steps of 5 requests.
            self.assertEqual(self.fake.get("/_fake/stats")["soap_faults"], {"InternalServiceFault": 20})
        finally:
            env.cleanup()


class EmptyWindowsKeptTest(unittest.TestCase):
    """A search that fails for good after empty windows: the step's retry starts at the window that failed."""

    def test_step_retry_does_not_search_the_empty_windows_again(self):
        wd = Workdir("tgaewfake")
        # Nothing in the register changed after 2026-01-01 (the fake's base data predates it), so from that epoch
        # with one-hour windows every window is empty: 96 of them up to the frozen clock, all in one or two steps.
        fake = tgalib.start_fake(wd, "--frozen-clock", now="2026-01-05T00:00:00Z")
        keys = dict(FAST, epoch="2026-01-01T00:00:00Z", window="1h", max_window="1h", retries=2)
        ref = tgalib.Env(fake, None, name="tgaewref", **keys)
        env = tgalib.Env(fake, None, name="tgaew", **keys)
        try:
            self.assertEqual(ref.run_once(), 0, ref.daemon.read_log()[-3000:])
            n_ref = searches(fake)
            self.assertEqual(n_ref, 96, str(fake.get("/_fake/stats")) + tgalib.json.dumps(tgalib.step_details(ref.ops)))
            fake.post("/_fake/stats/reset")
            # The 11th search fails all 3 attempts (retries = 2).
            fake.fault("SearchByModifiedDate", "server_fault", count=3, after=10, service="Training")
            self.assertEqual(env.run_once(), 0, env.daemon.read_log()[-3000:])
            self.assertEqual(fake.get("/_fake/stats")["soap_faults"], {"InternalServiceFault": 3})
            # Every window searched once, plus the three failed attempts: none of the first ten again.
            self.assertEqual(searches(fake), n_ref + 3)
            self.assertEqual(tgalib.step_details(env.ops)["sync_training"].get("empty_windows_kept"), 10)
            self.assertRegex(env.daemon.read_log(), r"sync_training: TGA TrainingComponentService\.SearchByModifiedDate"
                             r" \[2026-01-01T10:00:00Z, 2026-01-01T11:00:00Z\) page 1: SOAP fault a:InternalServiceFault"
                             r" \(HTTP 500, after 3 attempts\): .*; the 10 empty windows searched before it are kept")
        finally:
            fake.stop()
            ref.cleanup()
            env.cleanup()
            wd.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
