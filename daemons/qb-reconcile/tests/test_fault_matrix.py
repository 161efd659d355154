#!/usr/bin/python3
"""The fault matrix of qb-reconcile (issue 7, item 2): one fault at a time during a cycle against the fake
QuickBooks, on each of its two upstreams (the accounting API and the OAuth token endpoint), each with the outcome
docs/qb-reconcile.md defines.  qb-reconcile does not fail its run for an upstream fault: the run completes and its
result says what happened, `{"status":"ok"|"degraded",...,"heartbeat":...}`:
  * API: a transient fault is retried (same requestid: QuickBooks replays instead of creating twice) and the result
    is ok; a lasting one leaves the invoices `failed` with the error in qb_last_error and the result degraded
    (failed = N); a 401 refreshes the token once and sends the same request; a 429 waits for Retry-After.
  * token endpoint: the refresh is retried at most once (never after a 500); a refresh that fails leaves the
    heartbeat false (the result degraded, the error in qb_connection.last_error) and the push goes on with the
    access token in hand; invalid_grant marks the connection reconnect_required, pushes nothing and mails the
    operator once.
  * storage and mail, as for every daemon: a full disk fails the run with its error in the run row, a locked ops.db
    is waited for and retried, a mail server that is down leaves the mail queued.
After each case ops.db passes PRAGMA integrity_check, and a run without the fault reaches the end state of an
uninterrupted cycle: every invoice synced once (the ledger shows each DocNumber once), the same QuickBooks invoices
and customers behind our ids, the connection as before.  Prints a table: case, outcome (the run's status, or the
result's for a complete run), time to outcome, and the error where qb-reconcile records it.

rtopacks.db: qb-reconcile does not use it (its data is all in ops.db), so that case is a row saying so.
Timeouts are short here (low_speed_time 1 s, total_timeout 2 s, one HTTP retry), so hangs and drips end in seconds.

The QuickBooks API faults (test_api_faults: the ones that decide whether an invoice is created once) run in both
billing modes: FaultMatrixTest with billing in ops.db, D1FaultMatrixTest with billing in the fake D1 (qbd1env.py),
whose end state also holds D1's side (every invoice synced in D1 with QuickBooks' Id and SyncToken).  The other
cases run in local mode only: the token endpoint's faults fall in the heartbeat, before the D1 pull, and leave the
push as in local mode; mail, a locked ops.db and a full disk are the engine's, the same whatever holds billing (and
D1's own faults are test_d1_billing's).
"""

import json
import os
import shutil
import sys
import time
import unittest

from qbd1env import D1Env, d1_mismatches
from qbenv import QBEnv, result
from harness import SmtpSink, refused_port, query, runs, wait_for
from endstate import normalised
from faultmatrix import print_table
from matrixkit import SKIPPED, SmallDisk, hold_write_lock, met_the_lock, run_cases, when_phase

SYNC = "qb_reconcile"
N = 3
KEYS = {"retries": 1, "backoff": "100ms", "backoff_max": "300ms", "connect_timeout": "1s", "low_speed_time": "1s",
        "total_timeout": "1500ms", "step_retries": 1, "step_backoff": "300ms", "step_backoff_max": "300ms",
        "requests_per_minute": 500, "push_batch": 30}
# Our times, QuickBooks' (its clock runs), and per-response ids: marked (NULL kept).
TIMES = ("created_at", "updated_at", "qb_last_attempt_at", "qb_synced_at", "qb_updated_at", "paid_at",
         "first_seen_at", "last_seen_at", "resolved_at", "first_cycle_id", "connected_at", "access_expires_at",
         "refresh_expires_at", "refresh_hard_expires_at", "last_refresh_at", "last_heartbeat_at",
         "last_heartbeat_ok", "last_intuit_tid", "pending_state_expires_at")


class Env(QBEnv):
    """A fresh workdir, its own fake QuickBooks (limits on) and token store, N pending invoices of 2 customers."""

    def __init__(self, smtp_port, state_dir=None, **keys):
        self.smtp_port = smtp_port

        class Sink:
            port = smtp_port
        super().__init__("qbfm", smtp=Sink, **dict(KEYS, **keys))
        try:
            self.prepare(state_dir)
        except BaseException:
            self.cleanup()
            raise

    def prepare(self, state_dir):
        if state_dir:
            # ops.db and the token store on another file system: the state directory becomes a link to it.
            for name in os.listdir(self.wd.state):
                shutil.move(os.path.join(self.wd.state, name), state_dir)
            os.rmdir(self.wd.state)
            os.symlink(state_dir, self.wd.state)
        self.corpus = None
        self.reference = None
        self.customer(1, "Matrix Test RTO Pty Ltd")
        self.customer(2, "O'Connor Skills Centre")
        for i in range(1, N + 1):
            self.invoice(i, 1 + i % 2, "FM-%03d" % i, lines=((1, 10000 + i, "essential"),))

    def rewrite(self, **changes):
        """Change config keys: key=value in [qb-reconcile], section__key=value in another section."""
        with open(self.config) as f:
            lines = f.read().split("\n")
        out, section = [], None
        for ln in lines:
            if ln.startswith("["):
                section = ln.strip("[]")
            key = ln.split("=", 1)[0].strip()
            for k, v in changes.items():
                sec, _, name = k.rpartition("__")
                if (sec or "qb-reconcile") == section and name == key:
                    ln = "%s = %s" % (key, v)
            out.append(ln)
        with open(self.config, "w") as f:
            f.write("\n".join(out))

    def result(self, run=None):
        r = run or runs(self.ops, SYNC)[-1]
        s = query(self.ops, "SELECT summary FROM sync_runs WHERE run_id = ?", (r["run_id"],))[0][0]
        return json.loads(s) if s else None

    def state(self):
        """ops.db by content: QuickBooks ids translated to what they name, times marked; qb_request_gen is left
        out (after an attempt QuickBooks refused it moves on by design, so that QuickBooks hears the next attempt);
        runs, steps, cursor and mail are the faulted cycle's (checked by each case).  Plus the fake's ledger: every
        DocNumber created once, live."""
        ledger = self.ledger()
        docs = {x["Id"]: x["DocNumber"] for x in ledger["invoices"]}
        names = {c["Id"]: c["DisplayName"] for c in self.fake.get("/_fake/dump")["Customer"]}
        s = normalised(self.ops, exclude_tables=("sync_runs", "sync_steps", "mail_outbox", "qb_reconcile_cursor",
                                                 "sync_alerts"),
                       mark=TIMES, drop=("qb_reconcile_issues.id", "install_id", "qb_request_gen"),
                       translate={"qb_invoice_id": lambda v, r: None if v is None else docs.get(v, "?" + v),
                                  "qb_customer_id": lambda v, r: None if v is None else names.get(v, "?" + v)})
        s["ledger"] = (["DocNumber", "created", "live"], sorted(
            (d, v["created"], len(v["live"])) for d, v in ledger["doc_numbers"].items()))
        s["ops.cycle_phase"] = (["cycle_phase"], [(query(self.ops, "SELECT cycle_phase FROM qb_reconcile_cursor")
                                                   [0][0],)])
        return s


class D1MatrixEnv(Env, D1Env):
    """Env with billing in D1 (its own fake D1): the same invoices, seeded in D1."""

    # The D1 mode's tables in ops.db: the pull's times and cycle, the write-back queue's, since when runs are
    # mirrored to D1.  d1_outbox (the observatory mirror's queue of run rows) is not compared: runs and times.
    D1_TABLES = ("qb_d1_base", "qb_d1_writeback", "qb_d1_state", "d1_mirror")
    D1_TIMES = ("qb_d1_base.d1_updated_at", "qb_d1_base.cycle_id", "qb_d1_base.pulled_at", "qb_d1_writeback.queued_at",
                "d1_mirror.since")

    def state(self):
        """Env.state() once the write-backs drained, the D1 mode's tables with their times marked, and what in D1
        differs from the ledger (nothing, as in the reference)."""
        self.drain()
        s = super().state()
        s.pop("d1_outbox", None)
        s.update(normalised(self.ops, include_tables=self.D1_TABLES, mark=self.D1_TIMES))
        # The lines' id in ops.db is the copy's own: each pull of an invoice copies its lines again (a failed
        # invoice pulled for its retry gets new ids); they are the same invoice and line_no.
        s.update(normalised(self.ops, include_tables=("billing_invoice_lines",), drop=("billing_invoice_lines.id",)))
        s["d1.mismatches"] = (["mismatch"], [(m,) for m in d1_mismatches(self)])
        return s


class FaultMatrixCases:
    """The reference cycle, the table, the checks and the API faults; a subclass gives env_class (the billing mode)
    and the table's title."""

    env_class = Env
    title = "fault matrix: qb-reconcile (QuickBooks API and OAuth token endpoint, mail, storage)"

    @classmethod
    def setUpClass(cls):
        cls.smtp = SmtpSink()
        ref = cls.env_class(cls.smtp.port)
        try:
            t0 = time.monotonic()
            rc, res = ref.once()
            cls.rows = [("(uninterrupted cycle)", "ok", time.monotonic() - t0, "")]
            assert (rc, res) == (0, result(synced=N)), (rc, res, ref.daemon.read_log()[-3000:])
            cls.reference = ref.state()
        finally:
            ref.cleanup()

    @classmethod
    def tearDownClass(cls):
        print(print_table(cls.rows, cls.title), file=sys.stderr)
        cls.smtp.stop()

    def run_cases(self, cases, env_factory=None):
        for case in cases:
            case.setdefault("disarm", lambda env: env.fake.post("/_fake/fault/clear"))
            # A degraded result ends the run 'degraded' (not a success); an ok one 'complete'.
            case.setdefault("expect", "degraded" if case.get("result", {}).get("status") == "degraded" else
                            "complete")
            check = case.get("check")

            def full_check(env, case, check=check):
                self.check_result(env, case)
                if check:
                    check(env, case)
            case["check"] = full_check
        run_cases(self, cases,
                  env_factory or (lambda case: self.env_class(self.smtp.port, **case.get("keys", {}))), SYNC,
                  self.rows, self.reference)

    def check_result(self, env, case):
        """The result JSON of the faulted run, the table's outcome, and the error where qb-reconcile keeps it."""
        r = runs(env.ops, SYNC)[-1]
        res = env.result(r)
        if case["expect"] in ("complete", "degraded"):
            self.assertEqual(res, case.get("result", result(synced=N)),
                             "%s: %s" % (case["name"], env.daemon.read_log()[-3000:]))
            case["label"] = res["status"]
            self.assertEqual(r["error"] is not None, case["expect"] == "degraded", "%s: a degraded run says why"
                             % case["name"])
        if res and res["failed"]:
            errs = [e[0] for e in query(env.ops, "SELECT qb_last_error FROM billing_invoices WHERE qb_sync_status"
                                                 " = 'failed'")]
            self.assertEqual(len(errs), res["failed"])
            for e in errs:
                self.assertIn(case["error"], e, case["name"])
            case["shown_error"] = "invoice: " + errs[0]
        elif res and not res["heartbeat"]:
            e = env.conn()["last_error"]
            self.assertIn(case["error"], e or "", case["name"])
            case["shown_error"] = "heartbeat: " + e
        # Nothing twice, whatever happened.
        self.assertEqual(env.ledger()["duplicates"], {}, case["name"])

    def degraded(self, failed=0, heartbeat=True, synced=None):
        return result("degraded", synced=N - failed if synced is None else synced, failed=failed,
                      heartbeat=heartbeat)

    def test_api_faults(self):
        def fault(op, kind, count=-1, **kw):
            return lambda env: env.fault(op, kind, count, **kw)

        def replayed(env, case):
            self.assertGreaterEqual(env.stats()["api"].get("replays", 0), 1, "the retry was replayed")
        self.run_cases([
            {"name": "API HTTP 500 (once, create)", "arm": fault("invoice.create", "http500", 1)},
            {"name": "API HTTP 500 after the create (once)",
             "arm": fault("invoice.create", "http500", 1, commit=True), "check": replayed},
            {"name": "API HTTP 503 (always, create)", "arm": fault("invoice.create", "http503"),
             "result": self.degraded(failed=N), "error": "HTTP 503"},
            {"name": "API 429 with Retry-After: 1 (once)", "arm": fault("invoice.create", "http429", 1,
                                                                         retry_after=1),
             "check": lambda env, case: self.assertIn("HTTP 429 with Retry-After", env.daemon.read_log())},
            {"name": "API connection refused", "arm": lambda env: env.rewrite(api_base_url="http://127.0.0.1:%d"
                                                                               % refused_port()),
             "disarm": lambda env: env.rewrite(api_base_url=env.fake.url),
             "result": self.degraded(failed=N), "error": "Failed to connect"},
            {"name": "API connection reset mid-body (once)", "arm": fault("invoice.create", "reset", 1),
             "check": replayed},
            {"name": "API hung connection (once)", "arm": fault("invoice.create", "hang", 1, delay=30)},
            {"name": "API hung connection (always, create)", "arm": fault("invoice.create", "hang", delay=30),
             "result": self.degraded(failed=N), "error": "timed out"},
            {"name": "API slow drip (always, create)", "arm": fault("invoice.create", "drip", interval=0.5),
             "result": self.degraded(failed=N), "error": "timed out"},
            {"name": "API truncated body (once)", "arm": fault("invoice.create", "truncate", 1), "check": replayed},
            {"name": "API truncated body (always, create)", "arm": fault("invoice.create", "truncate"),
             "result": self.degraded(failed=N), "error": "truncated"},
            {"name": "API malformed JSON (once, create)", "arm": fault("invoice.create", "malformed", 1),
             "result": self.degraded(failed=1), "error": "create invoice 1 (FM-001): HTTP 200 with a body that is "
                                                          "not a JSON object (intuit_tid "},
            {"name": "API malformed JSON (always, create)", "arm": fault("invoice.create", "malformed"),
             "result": self.degraded(failed=N), "error": "with a body that is not a JSON object"},
            {"name": "API HTML error page (always, create)", "arm": fault("invoice.create", "html"),
             "result": self.degraded(failed=N), "error": "HTML"},
            {"name": "API unexpected redirect (always, create)", "arm": fault("invoice.create", "redirect"),
             "result": self.degraded(failed=N), "error": "redirect"},
            {"name": "API auth failure (401 once: refresh, resend)", "arm": fault("invoice.create", "auth_401", 1),
             "check": lambda env, case: self.assertEqual(env.stats()["refreshes"], 2)},
        ])



class FaultMatrixTest(FaultMatrixCases, unittest.TestCase):
    """billing_source = local: every case."""

    def test_token_endpoint_faults(self):
        def fault(kind, count=-1, **kw):
            return lambda env: env.fault("token", kind, count, **kw)
        hb_false = self.degraded(heartbeat=False)
        self.run_cases([
            # Armed once: a retry would get a token and make the heartbeat true, so this proves "not retried".
            {"name": "token HTTP 500 (once: not retried)",
             "arm": lambda env: (env.fake.post("/_fake/stats/reset"), env.fault("token", "http500", 1)),
             "result": hb_false,
             "error": "500", "check": self.one_token_request},
            {"name": "token HTTP 503 (once: retried)", "arm": fault("http503", 1)},
            {"name": "token HTTP 503 (always)", "arm": fault("http503"), "result": hb_false, "error": "503"},
            {"name": "token 429 with Retry-After: 1 (once)", "arm": fault("http429", 1, retry_after=1)},
            {"name": "token connection refused", "arm": lambda env: env.rewrite(token_url="http://127.0.0.1:%d/t"
                                                                                 % refused_port()),
             "disarm": lambda env: env.rewrite(token_url=env.fake.url + "/oauth2/v1/tokens/bearer"),
             "result": hb_false, "error": "Failed to connect"},
            {"name": "token connection reset mid-body (always)", "arm": fault("reset"), "result": hb_false,
             "error": "connection failed"},
            {"name": "token hung connection (always)", "arm": fault("hang", delay=30), "result": hb_false,
             "error": "timed out"},
            {"name": "token slow drip (always)", "arm": fault("drip", interval=0.5), "result": hb_false,
             "error": "timed out"},
            {"name": "token truncated body (always)", "arm": fault("truncate"), "result": hb_false,
             "error": "truncated"},
            {"name": "token malformed JSON (always)", "arm": fault("malformed"), "result": hb_false,
             "error": "answered 200 without a usable JSON object"},
            {"name": "token HTML error page (always)", "arm": fault("html"), "result": hb_false, "error": "HTML"},
            {"name": "token unexpected redirect (always)", "arm": fault("redirect"), "result": hb_false,
             "error": "redirect"},
            {"name": "token invalid_grant once (an outage): confirmed, no alarm", "arm": fault("invalid_grant", 1),
             "check": lambda env, case: self.assertEqual(query(env.ops, "SELECT subject FROM mail_outbox"), [])},
            {"name": "token auth failure (invalid_grant, twice)", "arm": fault("invalid_grant", 2),
             "result": result("degraded", synced=0, heartbeat=False), "error": "invalid_grant",
             "check": self.reconnect_required},
        ])

    def one_token_request(self, env, case):
        self.assertEqual(env.stats()["by_op"].get("token"), 1, "the token endpoint was asked exactly once")
        self.assertFalse(env.result()["heartbeat"])

    def reconnect_required(self, env, case):
        self.assertEqual(env.conn()["state"], "reconnect_required")
        self.assertEqual(env.ledger()["total_created"], 0, "nothing is pushed without a connection")
        self.assertEqual([env.inv(i)["status"] for i in range(1, N + 1)], ["pending"] * N)
        self.assertEqual(query(env.ops, "SELECT subject FROM mail_outbox"),
                         [("[qb-reconcile] QuickBooks needs reconnecting",)])

    def test_mail_server_down(self):
        def check(env, case):
            self.assertEqual(query(env.ops, "SELECT status FROM mail_outbox"), [("pending",)])

        def delivered(env, case):
            d = env.daemon.start()
            try:
                wait_for(lambda: query(env.ops, "SELECT count(*) FROM mail_outbox WHERE status = 'pending'")
                         == [(0,)], timeout=30, what="the queued mail to be sent")
            finally:
                self.assertEqual(d.stop(), 0)
        # digest = yes: every cycle mails its result.
        self.run_cases([{"name": "SMTP server down", "keys": {"digest": True, "housekeeping_interval": "300ms"},
                         "arm": lambda env: env.rewrite(smtp__url="smtp://127.0.0.1:%d" % refused_port()),
                         "disarm": lambda env: env.rewrite(smtp__url="smtp://127.0.0.1:%d" % env.smtp_port),
                         "check": check, "after": delivered}])

    def test_ops_db_locked_by_another_writer(self):
        holders = []

        def lock(env):
            # During the push (creates slowed down), another process's transaction holds ops.db's write lock until
            # a commit of the daemon's waited busy_timeout (500 ms) for it and failed: then the retry gets through.
            env.rewrite(push_batch=1, paths__busy_timeout="500ms")
            env.fault("invoice.create", "slow", -1, delay=0.3)
            holders.append(when_phase(env.ops, SYNC, "push",
                                      lambda: holders.append(hold_write_lock(env.ops, 10, met_the_lock(env)))))

        def unlock(env):
            holders[0].join()
            self.assertEqual(len(holders), 2, "the lock was taken during the push")
            holders[1].wait()
            env.fake.post("/_fake/fault/clear")

        def check(env, case):
            self.assertGreater(query(env.ops, "SELECT max(attempts) FROM sync_steps")[0][0], 0,
                               "the locked commit was retried")
        self.run_cases([{"name": "ops.db locked by another writer", "arm": lock, "disarm": unlock, "check": check}])

    def test_corpus_read_only(self):
        # qb-reconcile keeps everything in ops.db (billing tables, cursor, runs): no rtopacks.db to make read-only.
        self.rows.append(("rtopacks.db read-only", "n/a", 0.0,
                          "qb-reconcile does not use rtopacks.db (all its data is in ops.db)"))

    def test_disk_full(self):
        disk = SmallDisk("8m")
        if disk.error:
            self.rows.append(("disk full", SKIPPED, 0.0, "cannot mount a tmpfs here: %s" % disk.error))
            self.skipTest("cannot mount a small tmpfs here: %s" % disk.error)
        self.addCleanup(disk.close)
        fillers = []

        def fill(env):
            # When the push starts (creates slowed down, one invoice per batch), the file system fills up, leaving
            # 12 KiB: the next commits fail.
            env.rewrite(push_batch=1)
            env.fault("invoice.create", "slow", -1, delay=0.3)
            fillers.append(when_phase(env.ops, SYNC, "push", disk.fill))

        def free(env):
            fillers[0].join()
            disk.free()
            env.fake.post("/_fake/fault/clear")

        def factory(case):
            disk.empty()
            return Env(self.smtp.port, state_dir=disk.path)
        self.run_cases([{"name": "disk full (an 8 MB filesystem)", "arm": fill, "disarm": free, "expect": "failed",
                         "error": "full",
                         # The slow creates only pace the push so that the disk fills mid-phase; when the fill lands
                         # before the first create, none is slowed. The disk is the fault under test: the run must
                         # fail with "full".
                         "unfired": True}], env_factory=factory)


class D1FaultMatrixTest(FaultMatrixCases, unittest.TestCase):
    """billing_source = d1: the QuickBooks API faults (see the module's docstring for the others)."""

    env_class = D1MatrixEnv
    title = "fault matrix: qb-reconcile with billing in D1 (QuickBooks API)"


if __name__ == "__main__":
    unittest.main(verbosity=2)
