#!/usr/bin/python3
"""Crash torture of qb-reconcile (issue 7, item 1): SIGKILL at random moments and at random crash points of a cycle
against the fake QuickBooks (half each), a restart after every kill, and at the end every table of ops.db compared,
by content, with an uninterrupted cycle on the same data; the fake's ledger shows every DocNumber created once, and
no mail is sent twice.

The data: a first cycle (not tortured) pushes 6 invoices; then, as people would in QuickBooks, one is paid in full,
one in part, one voided, one deleted and one's amount changed; billing adds 24 new invoices (4 customers, two of
them new) and changes one synced invoice.  The tortured cycle then refreshes the token, pushes 25 invoices in
batches of 4 (customer lookups and creates, DocNumber lookups, creates, one sparse update) and reconciles by change
data capture (payments, void, deletion, changed amount: reconcile issues), and mails the operator about the new
issues (digest = yes also makes the first cycle mail, so every cycle sends one mail that could be sent twice).  Requests are paced (500 a minute), so the cycle lasts a few
seconds and the random kills land inside it.

Each tortured env is a fresh one (its own fake QuickBooks, the same first cycle and changes); when a cycle ends
before the next kill falls, its end state is checked then and the next kills go to a fresh env
(torture.fresh_env_per_cycle).

What is not compared, and why (everything else is, row by row):
  * QuickBooks ids (qb_invoice_id, qb_customer_id, the issues' qb_invoice_id) are the fake's: the invoices are
    created concurrently (max_in_flight 4), so the same invoice can get another Id in another env.  They are
    translated to what they name (the DocNumber of that QuickBooks invoice, the DisplayName of that customer), so
    an id that points at the wrong invoice is still a difference.
  * our times (created_at, updated_at, qb_last_attempt_at, qb_synced_at, first/last_seen_at, resolved_at) and
    QuickBooks' (qb_updated_at, paid_at: the fake's clock runs), run and cycle ids, and qb_connection's times and
    last intuit_tid (random per response): replaced by a marker, so NULL against set still counts.
  * qb_reconcile_issues.id (the order in which issues were inserted) and qb_connection.install_id (random per
    ops.db, by design): dropped.
  * sync_runs, sync_steps, the cursor and the outbox are compared through endstate.ops_state(): the final run's
    status, phase and result JSON, every earlier run of the cycle stale, the cursor (its reconcile times are
    QuickBooks' clock: marked), each mail's subject, status and body minus the lines naming runs and times.

TORTURE_KILLS sets the number of kills (default 6; scripts/reliability runs 50), TORTURE_SEED the seed (printed).
"""

import json
import os
import re
import sqlite3
import sys
import time
import unittest
from unittest import mock

from qbd1env import D1Env, billing_schema, d1_mismatches
from qbenv import QBEnv, result
from harness import SmtpSink, query
from endstate import MARK, mail_body, normalised, ops_state
from crash import run_torture

KEYS = {"digest": True, "push_batch": 4}
TIMES = ("created_at", "updated_at", "qb_last_attempt_at", "qb_synced_at", "qb_updated_at", "paid_at",
         "first_seen_at", "last_seen_at", "resolved_at", "first_cycle_id",
         "qb_connection.connected_at", "qb_connection.access_expires_at", "qb_connection.refresh_expires_at",
         "qb_connection.refresh_hard_expires_at", "qb_connection.last_refresh_at",
         "qb_connection.last_heartbeat_at", "qb_connection.last_heartbeat_ok", "qb_connection.last_intuit_tid",
         "qb_connection.pending_state_expires_at")
# The mails show the token expiries and the last heartbeat: times.
ISO_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"
# Compared through ops_state(), or per run.
OPS_RUN_TABLES = ("sync_runs", "sync_steps", "mail_outbox", "qb_reconcile_cursor", "sync_alerts")


class TortureData:
    """The first cycle and the changes after it (the same in every env, in either billing mode)."""

    def __init__(self, **kw):
        self.smtp = SmtpSink()
        super().__init__("qbtort", smtp=self.smtp, **KEYS, **kw)
        try:
            self.setup()
        except BaseException:
            self.smtp.stop()
            self.cleanup()
            raise

    def setup(self):
        """The first cycle and the changes after it (the same in every env)."""
        self.customer(1, "Torture Test RTO Pty Ltd")
        self.customer(2, "O'Brien & Daughters Training")
        for i in range(1, 7):
            self.invoice(i, 1 + i % 2, "TT-%03d" % i, lines=((1, 10000 + 100 * i, "essential"),))
        rc, res = self.once()
        assert (rc, res) == (0, result(synced=6)), (rc, res, self.daemon.read_log()[-3000:])
        self.mutate({"action": "payment", "doc_number": "TT-001"})
        self.mutate({"action": "payment", "doc_number": "TT-002", "amount": 50})
        self.mutate({"action": "void_invoice", "doc_number": "TT-003"})
        self.mutate({"action": "delete_invoice", "doc_number": "TT-004"})
        self.mutate({"action": "edit_invoice", "doc_number": "TT-005", "amount": 777})
        self.customer(3, "Kookaburra Skills Centre")
        self.customer(4, "Nguy\u1ec5n Training Pty Ltd")
        for i in range(7, 31):
            self.invoice(i, 1 + i % 4, "TT-%03d" % i, lines=((2, 5000 + i, "essential"), (1, 2500, None)))
        # Billing changes a synced invoice: the push sends a sparse update (never a second invoice).
        self.change_synced_invoice()
        self.seq0 = query(self.ops, "SELECT seq FROM qb_reconcile_cursor")[0][0]


class Env(TortureData, QBEnv):
    """billing_source = local."""

    def change_synced_invoice(self):
        self.sql("UPDATE billing_invoice_lines SET quantity = 3, amount_cents = 3 * unit_price_cents"
                 " WHERE invoice_id = 6")
        self.sql("UPDATE billing_invoices SET total_cents = (SELECT sum(amount_cents) FROM billing_invoice_lines"
                 " WHERE invoice_id = 6), qb_sync_status = 'pending' WHERE id = 6")


class D1TortureEnv(TortureData, D1Env):
    """billing_source = d1 (its own fake D1): billing's change is made in D1, with a new updated_at as billing
    must give every edit (docs/qb-reconcile.md, "Billing in D1")."""

    def change_synced_invoice(self):
        self.dsql("UPDATE billing_invoice_lines SET quantity = 3, amount_cents = 3 * unit_price_cents"
                  " WHERE invoice_id = 6;\n"
                  "UPDATE billing_invoices SET total_cents = (SELECT sum(amount_cents) FROM billing_invoice_lines"
                  " WHERE invoice_id = 6), qb_sync_status = 'pending', updated_at = '2026-11-30T00:00:00Z'"
                  " WHERE id = 6")


class Subject:
    fresh_env_per_cycle = True
    sync_type = "qb_reconcile"
    env_class = Env

    def __init__(self):
        self.crash_points = []
        self.envs = []

    def new_env(self):
        self.envs.append(self.env_class())
        return self.envs[-1]

    def stop_all(self):
        """Stop every env's fake QuickBooks (an env kept for its mismatch keeps its files, not its process)."""
        for env in self.envs:
            env.fake.stop()

    def discard(self, env):
        env.smtp.stop()
        env.cleanup()

    def state(self, env):
        dump = env.fake.get("/_fake/dump")
        ledger = env.ledger()
        docs = {x["Id"]: x["DocNumber"] for x in ledger["invoices"]}
        names = {c["Id"]: c["DisplayName"] for c in dump["Customer"]}

        def doc(v, row):
            return None if v is None else "invoice %s" % docs.get(v, "?%s" % v)

        def name(v, row):
            return None if v is None else "customer %s" % names.get(v, "?%s" % v)

        def detail(v, row):
            # Issue texts may name QuickBooks ids: name them by DocNumber instead.
            return re.sub(r"\b(invoice|Invoice|Id|id) (\d+)\b",
                          lambda m: "%s %s" % (m.group(1), docs.get(m.group(2), m.group(2))), v) if v else v

        s = normalised(env.ops, exclude_tables=OPS_RUN_TABLES, mark=TIMES,
                       drop=("qb_reconcile_issues.id", "qb_connection.install_id"),
                       translate={"qb_invoice_id": doc, "qb_customer_id": name,
                                  "qb_reconcile_issues.detail": detail})
        s.update(ops_state(env.ops, "qb_reconcile",
                           job_state_fn=lambda j: {k: (MARK if isinstance(v, str) and re.match(r"\d{4}-\d\d-\d\dT", v)
                                                       else v) for k, v in j.items()},
                           mail_fn=lambda m: re.sub(ISO_TIME, "<time>", detail(mail_body(m), None))))
        # The fake's side: every DocNumber once, each live invoice as QuickBooks holds it (ids and times aside).
        s["fake.invoices"] = (["DocNumber", "status", "origin", "TotalAmt", "Balance", "SyncToken", "customer"],
                              sorted((x["DocNumber"], x["status"], x["origin"], x.get("TotalAmt"), x.get("Balance"),
                                      x.get("SyncToken"), names.get(x["CustomerRef"])) for x in ledger["invoices"]))
        return s

    def reference(self):
        env = self.new_env()
        t0 = time.monotonic()
        rc, res = env.once()
        seconds = time.monotonic() - t0
        assert rc == 0 and res["synced"] == 25 and res["status"] == "ok", (rc, res, env.daemon.read_log()[-3000:])
        commits = query(env.ops, "SELECT seq FROM qb_reconcile_cursor")[0][0] - env.seq0
        batches = query(env.ops, "SELECT count(*) FROM billing_invoices WHERE qb_sync_status = 'synced'")[0][0]
        # How often each crash point is passed in the cycle: the engine's at every step and commit, qb-reconcile's
        # after the token store (one refresh) and before each push batch's commit.
        self.crash_points = [("step_begin", commits), ("before_commit", commits), ("after_commit", commits),
                             ("qbr_tokens_stored", 1), ("qbr_push_before_commit", (25 + 3) // 4)]
        state = self.state(env)
        issues = query(env.ops, "SELECT kind FROM qb_reconcile_issues ORDER BY kind")
        sys.stderr.write("reference cycle: %.1fs, %d commits, result %s, issues %s; %d tables and %d rows compared\n"
                         % (seconds, commits, json.dumps(res), [i[0] for i in issues], len(state),
                            sum(len(v[1]) for v in state.values())))
        assert batches >= 25
        self.discard(env)
        return state, seconds

    def duplicates(self, env):
        time.sleep(0.2)
        keys = [str(m["msg"]["X-RTOpacks-Mail-Key"]) for m in env.smtp.received()]
        twice = sum(n - 1 for n in env.ledger()["duplicates"].values())
        return len(keys) - len(set(keys)) + twice


class D1Subject(Subject):
    """The same torture with billing_source = d1: each env has its own fake D1.  The end state is compared once the
    write-backs a kill left behind were delivered (D1Env.drain: the restarted service does it between runs); it
    also holds D1's billing tables, compared like ops.db's, so D1 must end the same as after an uninterrupted
    cycle."""

    env_class = D1TortureEnv
    # ops.db's tables of the D1 mode: the pull's times and cycle, the write-back queue's time, and since when the
    # runs are mirrored to D1 (the observatory mirror starts with the first run that has D1).
    D1_TABLES = ("qb_d1_base", "qb_d1_writeback", "qb_d1_state", "d1_mirror")
    D1_TIMES = ("qb_d1_base.d1_updated_at", "qb_d1_base.cycle_id", "qb_d1_base.pulled_at", "qb_d1_writeback.queued_at",
                "d1_mirror.since")

    def stop_all(self):
        super().stop_all()
        for env in self.envs:
            env.d1.server.stop()

    def state(self, env):
        env.drain()
        s = super().state(env)
        # The D1 mode's own tables in ops.db, with their times marked (super() compared them unmarked).
        s.update(normalised(env.ops, include_tables=self.D1_TABLES, mark=self.D1_TIMES))
        # The lines' id in ops.db is the copy's own (each pull of an invoice copies its lines again).
        s.update(normalised(env.ops, include_tables=("billing_invoice_lines",), drop=("billing_invoice_lines.id",)))
        # Not compared: d1_outbox, the observatory mirror's queue of run rows for D1 (not billing; a restart after a
        # kill at the cycle's end stops before housekeeping sends it, and what it sends are runs and times).
        s.pop("d1_outbox", None)
        # D1's billing tables, through a copy in SQLite so that they are normalised as ops.db's are.
        copy = env.wd.file("d1-billing-copy.db")
        if os.path.exists(copy):
            os.unlink(copy)
        con = sqlite3.connect(copy)
        try:
            con.executescript(billing_schema())
            for t in ("billing_customers", "billing_invoices", "billing_invoice_lines", "qb_reconcile_issues",
                      "qb_connection"):
                rows = env.drows("SELECT * FROM %s" % t)
                for r in rows:
                    con.execute("INSERT OR REPLACE INTO %s (%s) VALUES (%s)"
                                % (t, ", ".join(r), ", ".join("?" * len(r))), tuple(r.values()))
            con.commit()
        finally:
            con.close()
        ledger = env.ledger()
        docs = {x["Id"]: x["DocNumber"] for x in ledger["invoices"]}
        names = {c["Id"]: c["DisplayName"] for c in env.fake.get("/_fake/dump")["Customer"]}
        d1 = normalised(copy, mark=TIMES, drop=("qb_reconcile_issues.id", "qb_connection.install_id"),
                        translate={"qb_invoice_id": lambda v, row: None if v is None else
                                   "invoice %s" % docs.get(v, v),
                                   "qb_customer_id": lambda v, row: None if v is None else
                                   "customer %s" % names.get(v, v)})
        s.update({"d1." + t: v for t, v in d1.items()})
        return s


class TortureTest(unittest.TestCase):
    def test_random_kills(self):
        subject = Subject()
        self.addCleanup(subject.stop_all)
        res, env = run_torture(self, subject, "qb-reconcile")
        self.assertEqual(env.ledger()["duplicates"], {})
        self.assertEqual(env.leaked(), [])
        subject.discard(env)


class D1TortureTest(unittest.TestCase):
    """The random kills with billing in D1: every DocNumber once in QuickBooks, ops.db and D1 as after an
    uninterrupted cycle, and D1's rows saying what QuickBooks holds.  TORTURE_KILLS_D1 sets its kills (default:
    half of TORTURE_KILLS, at least 2), so that it takes no longer than the local torture: each of its kills costs
    more (each env starts a fake D1, and the cycle pulls from it and writes back), and most kills fall in the
    push, which is the same code in both modes."""

    maxDiff = None

    def test_random_kills(self):
        kills = os.environ.get("TORTURE_KILLS_D1") or str(max(2, int(os.environ.get("TORTURE_KILLS", "6")) // 2))
        subject = D1Subject()
        self.addCleanup(subject.stop_all)
        # run_torture() takes its kills from TORTURE_KILLS.
        with mock.patch.dict(os.environ, {"TORTURE_KILLS": kills}):
            res, env = run_torture(self, subject, "qb-reconcile (billing in D1)")
        self.assertEqual(env.ledger()["duplicates"], {})
        self.assertEqual(d1_mismatches(env), [])
        self.assertEqual(env.leaked(), [])
        subject.discard(env)


class ResultAfterResumeTest(unittest.TestCase):
    """Regressions (found by this torture): a cycle killed after its summary step had queued the mail, then resumed,
    ended with a `complete` run whose row had no result JSON (summary NULL, changes 0): `syncctl runs` showed
    nothing for the run that completed the cycle; and `qb-reconcile --once` printed the result as "degraded" (it
    took the run for one that failed before its summary).  The run that resumes a cycle now carries the summary of
    the run it continues (common/observatory.c), and the summary phase's delivery step takes the cycle's result
    from its committed state (daemons/qb-reconcile/phase-summary.c)."""

    def env(self):
        """Two invoices to push, with the digest mail (so that the summary phase queues a mail and delivers it)."""
        smtp = SmtpSink()
        env = QBEnv("qbsum", smtp=smtp, digest=True)
        env.smtp = smtp
        self.addCleanup(Subject.discard, None, env)
        env.customer(1, "Summary Test RTO Pty Ltd")
        env.invoice(1, 1, "SR-001")
        env.invoice(2, 1, "SR-002")
        return env

    def test_the_completing_run_has_the_result(self):
        ref = self.env()
        self.assertEqual(ref.once(), (0, result(synced=2)))
        commits = query(ref.ops, "SELECT seq FROM qb_reconcile_cursor")[0][0]
        env = self.env()
        # The commit before the cycle's last queues the digest mail (cursor "queued:<id>"); kill right after it.
        rc, out = env.once(env={"RTOPACKS_CRASH_AT": "after_commit:%d" % (commits - 2)})
        self.assertEqual(rc, -9)
        cur = query(env.ops, "SELECT cycle_phase, phase_cursor FROM qb_reconcile_cursor")[0]
        self.assertEqual(cur[0], "summary")
        self.assertTrue(cur[1].startswith("queued:"), cur)
        rc, res = env.once()
        self.assertEqual((rc, res), (0, result(synced=2)), env.daemon.read_log()[-3000:])
        rows = query(env.ops, "SELECT status, trigger, changes, summary FROM sync_runs ORDER BY started_at, run_id")
        self.assertEqual([(r[0], r[1]) for r in rows], [("stale", "manual"), ("complete", "resume")])
        self.assertEqual(json.loads(rows[1][3]), result(synced=2), "the completing run has the result")
        self.assertEqual(rows[1][2], 2)
        # One mail for the cycle.
        time.sleep(0.2)
        self.assertEqual(len(env.smtp.received()), 1)

if __name__ == "__main__":
    unittest.main(verbosity=2)
