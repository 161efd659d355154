#!/usr/bin/python3
"""qb-reconcile tokens: a rotated token is stored before it is used, two processes refreshing at once do not break
the connection, invalid_grant (confirmed once after invalid_grant_recheck) -> heartbeat false, reconnect_required,
a degraded run (exit 10) and one mail, and `syncctl qb connect` restores it; a single invalid_grant of an outage
raises no alarm; a token endpoint down (500) degrades the run and says until when the refresh token works.
Tokens and the client secret never show up in logs, ops.db, mails or syncctl output."""

import json
import os
import signal
import stat
import unittest
import urllib.parse

from qbenv import QBEnv, result, sha12, no_redirect_get, wait_for, query, slow_factor
from harness import SmtpSink, ctl

RECONNECT_SUBJECT = "[qb-reconcile] QuickBooks needs reconnecting"


def current_chain(env):
    return [c for c in env.fake.get("/_fake/tokens")["chains"] if c["current"]][0]


class TokenTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.smtp = SmtpSink()

    @classmethod
    def tearDownClass(cls):
        cls.smtp.stop()

    def test_rotation_is_stored_before_use(self):
        env = QBEnv("qbrot", fake_args=("--rotate", "always"))
        try:
            first = env.note_tokens()
            env.customer(1, "Rotation RTO")
            env.invoice(1, 1, "R-1")
            # Killed right after the new pair was stored: nothing has used it yet, and it is on disk.
            rc, _ = env.once(env={"RTOPACKS_CRASH_AT": "qbr_tokens_stored:1"})
            self.assertEqual(rc, -signal.SIGKILL)
            stored = env.note_tokens()
            self.assertNotEqual(stored["refresh_token"], first["refresh_token"])
            self.assertEqual(sha12(stored["refresh_token"]), current_chain(env)["refresh_sha12"])
            self.assertEqual(stat.S_IMODE(os.stat(env.token_file).st_mode), 0o600)
            self.assertEqual(set(env.stats()["by_op"]), {"token"})
            self.assertRegex(stored["refresh_token_hard_expires_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            # The next run refreshes with the stored token (the old one is dead): no invalid_grant.
            rc, res = env.once()
            self.assertEqual((rc, res), (0, result(synced=1)), env.daemon.read_log()[-3000:])
            tok = env.stats()["token"]
            self.assertEqual(tok.get("refresh_token.invalid_grant", 0), 0)
            self.assertEqual(tok["refresh_token.ok"], 2)
            self.assertEqual(sha12(env.note_tokens()["refresh_token"]), current_chain(env)["refresh_sha12"])
            conn = env.conn()
            self.assertEqual(conn["state"], "connected")
            self.assertEqual(conn["refresh_hard_expires_at"], env.note_tokens()["refresh_token_hard_expires_at"])
            self.assertEqual(env.leaked(), [])
        finally:
            env.cleanup()

    def test_two_processes_refreshing_at_once(self):
        a = QBEnv("qbtwoa", fake_args=("--rotate", "always"))
        b = QBEnv("qbtwob", fake=a.fake, token_file=a.token_file, seed_tokens=False)
        try:
            # Each refresh takes a second at the token endpoint, so the two overlap.
            a.fault("token", "slow", 2, delay=1)
            a.daemon.start()
            b.daemon.start()
            ra = ctl(a.daemon.socket_path(), "trigger")
            rb = ctl(b.daemon.socket_path(), "trigger")
            self.assertTrue(ra["ok"] and rb["ok"], (ra, rb))

            def done(env):
                r = query(env.ops, "SELECT status, summary FROM sync_runs")
                return r and r[0][0] != "running" and r[0]
            for env in (a, b):
                st, summary = wait_for(lambda: done(env), timeout=30 * slow_factor(), what="the run")
                self.assertEqual(st, "complete")
                self.assertEqual(json.loads(summary), result())
            self.assertEqual(a.daemon.stop(), 0)
            self.assertEqual(b.daemon.stop(), 0)
            tok = a.stats()["token"]
            self.assertEqual(tok.get("refresh_token.invalid_grant", 0), 0, tok)
            self.assertEqual(tok["refresh_token.ok"], 2)
            self.assertEqual(tok["rotations"], 2)
            chain = current_chain(a)
            self.assertEqual(chain["status"], "active")
            self.assertEqual(sha12(a.note_tokens()["refresh_token"]), chain["refresh_sha12"])
            # The second waited for the first's lock and used the token the first stored.
            log = a.daemon.read_log() + b.daemon.read_log()
            self.assertEqual(log.count("tokens refreshed and stored"), 2)
            # And the connection still works for both.
            for env in (a, b):
                rc, res = env.once()
                self.assertEqual((rc, res), (0, result()))
            self.assertEqual(a.leaked() + b.leaked(), [])
        finally:
            b.cleanup()
            a.cleanup()

    def test_invalid_grant_then_reconnect(self):
        env = QBEnv("qbgrant", smtp=self.smtp)
        try:
            env.customer(1, "Reconnect RTO")
            env.invoice(1, 1, "G-1")
            sent = len(self.smtp.received())
            env.mutate({"action": "revoke"})        # the company disconnected the app: the chain is dead
            rc, res = env.once()
            # Not a success: the run ends degraded (exit 10) and its row says what to do.
            self.assertEqual((rc, res), (10, result("degraded", heartbeat=False)), env.daemon.read_log()[-3000:])
            run = env.sql("SELECT status, error FROM sync_runs ORDER BY started_at DESC, rowid DESC LIMIT 1")[0]
            self.assertEqual(run[0], "degraded")
            self.assertIn("QuickBooks needs reconnecting (`syncctl qb connect`)", run[1])
            self.assertIn("refused twice", run[1])
            conn = env.conn()
            self.assertEqual(conn["state"], "reconnect_required")
            self.assertIn("invalid_grant", conn["last_error"])
            # Confirmed once before the alarm: two refusals, invalid_grant_recheck apart.
            self.assertEqual(env.stats()["token"]["refresh_token.invalid_grant"], 2)
            self.assertIsNone(conn["last_heartbeat_ok"])
            self.assertIsNotNone(conn["last_heartbeat_at"])
            # Nothing was pushed and nothing counted against the invoice.
            self.assertEqual(env.inv(1)["status"], "pending")
            self.assertEqual(env.inv(1)["attempts"], 0)
            self.assertEqual(env.ledger()["total_created"], 0)
            mails = self.smtp.wait(sent + 1)[sent:]
            self.assertEqual(str(mails[0]["msg"]["Subject"]), RECONNECT_SUBJECT)
            body = mails[0]["msg"].get_content()
            self.assertIn("syncctl qb connect", body)
            # The mail says what was seen: both refusals, with Intuit's description and intuit_tid.
            self.assertRegex(body, r"refused twice, 0\.3s apart \(first at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, HTTP 400 "
                                   r"invalid_grant \"Incorrect or invalid refresh token\" \(intuit_tid [^)]+\); then at")
            # Another cycle: tried once more (one recheck, no loop), still no second mail.
            queued = query(env.ops, "SELECT count(*) FROM mail_outbox")[0][0]
            rc, res = env.once()
            self.assertEqual((rc, res), (10, result("degraded", heartbeat=False)))
            self.assertEqual(env.stats()["token"]["refresh_token.invalid_grant"], 4)
            # The cycle has exited (--once delivers its mail first): it queued no second mail.
            self.assertEqual(query(env.ops, "SELECT count(*) FROM mail_outbox")[0][0], queued)
            self.assertEqual([str(m["msg"]["Subject"]) for m in self.smtp.received()[sent:]], [RECONNECT_SUBJECT])
            r = env.ctl("qb", "status")
            self.assertIn("reconnect_required", r.stdout)
            self.assertIn("syncctl qb connect", r.stdout)

            # Reconnect: the authorize URL, the operator approves, the code comes back and is exchanged once.
            env.daemon.start()
            r = env.ctl("qb", "connect")
            self.assertEqual(r.returncode, 0, r.stderr)
            url = [w for w in r.stdout.split() if w.startswith(env.fake.url + "/connect/oauth2?")][0]
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
            self.assertEqual(q["response_type"], ["code"])
            self.assertEqual(q["redirect_uri"], ["https://rtopacks.test/qb/callback"])
            self.assertGreaterEqual(len(q["state"][0]), 30)
            status, location = no_redirect_get(url)
            self.assertEqual(status, 302)
            back = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
            code, realm, state = back["code"][0], back["realmId"][0], back["state"][0]
            env.secrets.add(code)
            self.assertEqual(state, q["state"][0])
            r = env.ctl("qb", "connect", "--state", "0" * 48, "--code", code, "--realm", realm)
            self.assertNotEqual(r.returncode, 0)       # a state we did not issue: refused, code not spent
            r = env.ctl("qb", "connect", "--code", code, "--realm", realm, "--state", state)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr + env.daemon.read_log()[-2000:])
            self.assertIn("connected", r.stdout)
            self.assertEqual(env.stats()["token"]["authorization_code.ok"], 1)
            r = env.ctl("qb", "connect", "--url", location)     # the same answer again: exchanged only once
            self.assertNotEqual(r.returncode, 0)
            self.assertEqual(env.stats()["token"].get("authorization_code.ok"), 1)
            self.assertEqual(env.stats()["token"].get("authorization_code.invalid_grant", 0), 0)
            self.assertEqual(env.conn()["state"], "connected")
            self.assertEqual(env.conn()["connection_generation"], 1)
            self.assertEqual(stat.S_IMODE(os.stat(env.token_file).st_mode), 0o600)
            env.note_tokens()
            self.assertEqual(env.daemon.stop(), 0)
            # The next heartbeat is true and the invoice goes out.
            rc, res = env.once()
            self.assertEqual((rc, res), (0, result(synced=1)), env.daemon.read_log()[-3000:])
            self.assertEqual(env.sql("SELECT status, error FROM sync_runs ORDER BY started_at DESC, rowid DESC"
                                     " LIMIT 1")[0], ("complete", None))
            self.assertEqual(env.conn()["state"], "connected")
            self.assertIsNotNone(env.conn()["last_heartbeat_ok"])
            leaks = env.leaked([m["raw"] for m in self.smtp.received()])
            self.assertEqual(leaks, [])
            self.assertGreaterEqual(len(env.secrets), 6)    # client secret, code, several tokens
        finally:
            env.cleanup()

    def test_one_invalid_grant_in_an_outage_is_confirmed_not_alarmed(self):
        env = QBEnv("qbblip", smtp=self.smtp)
        try:
            env.customer(1, "Outage RTO")
            env.invoice(1, 1, "O-1")
            sent = len(self.smtp.received())
            # One 400 invalid_grant from the token endpoint; the chain itself stays valid (an Intuit outage).
            env.fault("token", "invalid_grant", 1)
            rc, res = env.once()
            self.assertEqual((rc, res), (0, result(synced=1)), env.daemon.read_log()[-3000:])
            tok = env.stats()["token"]
            self.assertEqual((tok["refresh_token.invalid_grant"], tok["refresh_token.ok"]), (1, 1))
            conn = env.conn()
            self.assertEqual(conn["state"], "connected")
            self.assertIsNotNone(conn["last_heartbeat_ok"])
            self.assertEqual(env.sql("SELECT count(*) FROM mail_outbox")[0][0], 0, "no reconnect alarm")
            self.assertEqual(self.smtp.received()[sent:], [])
            log = env.daemon.read_log()
            self.assertIn("asked once more in 0.3s before QuickBooks is declared disconnected", log)
            self.assertIn("was transient; the connection is fine", log)
            self.assertEqual(env.leaked(), [])
        finally:
            env.cleanup()

    def test_token_endpoint_500_degrades_the_run_and_says_until_when(self):
        env = QBEnv("qbhb500", smtp=self.smtp)
        try:
            env.customer(1, "Heartbeat RTO")
            env.invoice(1, 1, "H-1")
            rc, res = env.once()
            self.assertEqual((rc, res), (0, result(synced=1)))
            rolling = env.conn()["refresh_expires_at"]
            sent = len(self.smtp.received())
            env.invoice(2, 1, "H-2")
            env.fault("token", "http500", -1)
            # The push goes on with the access token still valid, but the run is not OK.
            rc, res = env.once()
            self.assertEqual((rc, res), (10, result("degraded", synced=1, heartbeat=False)),
                             env.daemon.read_log()[-3000:])
            status, error = env.sql("SELECT status, error FROM sync_runs ORDER BY started_at DESC, rowid DESC"
                                    " LIMIT 1")[0]
            self.assertEqual(status, "degraded")
            self.assertRegex(error, r"^the heartbeat failed \(token endpoint: .*HTTP 500")
            self.assertIn("the refresh token still works until %s" % rolling, error)
            mails = self.smtp.wait(sent + 1)[sent:]
            self.assertTrue(str(mails[0]["msg"]["Subject"]).startswith("[qb-reconcile] needs attention: "))
            body = mails[0]["msg"].get_content()
            self.assertRegex(body, r"Needs attention: the heartbeat failed \(token endpoint: .*HTTP 500")
            self.assertIn("the refresh token still works until %s" % rolling, body)
            r = env.ctl("runs", "--sync-type", "qb_reconcile")
            self.assertIn("degraded", r.stdout)
            self.assertEqual(env.leaked([m["raw"] for m in self.smtp.received()]), [])
        finally:
            env.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
