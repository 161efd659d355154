#!/usr/bin/python3
"""Secrets never leave the process (issue 7, item 5).

Every daemon runs real cycles against its fake, sharing one state directory as in production, with recognisable
test secrets, through its success and failure paths:

  tga-sync      a full cycle (journald output), a wrong password (InvalidSecurity), and a SOAP fault whose text
                echoes the right password (the redaction of run rows and logs is the last line of defence);
  cricos-sync   a full cycle, its mail through an SMTP server that requires the password;
  test-sync     a cycle whose mail server refuses the SMTP password (and echoes it in its refusal);
  qb-reconcile  not connected, then `syncctl qb connect` (the authorization-code exchange), a cycle with a 401 on
                the invoice create (refresh, same request again), an error body echoing the client secret and the
                tokens, and a revoked connection (invalid_grant, heartbeat false, the reconnect mail).

The secrets: the TGA password (and its XML-escaped form, as it goes into the SOAP body), the wrong one, the SMTP
password (and the AUTH PLAIN / LOGIN encodings), the QuickBooks client secret and the Basic-auth encoding of
client_id:secret, the authorization code, and every access and refresh token the fake hands out (by value, read from
the token store after each step, and by shape, so that a token we never saw is caught too).

None may appear in: the daemons' stderr (plain and journald format), ops.db and rtopacks.db with their -wal (run
rows, step rows, mail_outbox, the billing tables, free pages), the mails received, the Prometheus textfiles, or
syncctl's output (status, runs --json, steps, cursor, qb status, doctor).  The token store and its lock are 0600 in
a 0700 directory the daemon made, and no running daemon has a secret on its command line.
"""

import base64
import json
import os
import re
import sqlite3
import stat
import threading
import unittest
import urllib.error
import urllib.parse
import urllib.request

from cleanups import ClassCleanups
from harness import (REPO, SCHEDULES, Daemon, Server, Workdir, base_config, free_port, query, syncctl,
                     write_config)

FAKES = os.path.join(REPO, "tests", "fakes")
TGA_USER = "WebService.Read"
TGA_PASSWORD = "TgaPw&S3cr3t<e1c4a90"          # & and < make the XML-escaped form differ
TGA_WRONG_PASSWORD = "TgaWrongPw-S3cr3t-55b2d7"
SMTP_USER = "rtopacks-mailer"
SMTP_PASSWORD = "SmtpPw-S3cr3t-91f0d2ab"
QB_CLIENT_ID = "ABfakeQBOclient0000000000000000000000000000000000"
QB_CLIENT_SECRET = "QbClientSecret-S3cr3t-3c8e61f4"
QB_REDIRECT = "https://rtopacks.test/qb/callback"
# Every human-chosen secret above carries this mark, so that a piece of one (a secret cut by a bounded field or a
# "%.60s" before redaction could see it whole) is found too.
MARK = b"S3cr3t"
# Shapes of what fake_qbo.py hands out (gen_refresh, gen_access, gen_code), long enough to be a token, short enough
# to catch a piece of one.
TOKEN_SHAPES = [re.compile(rb"RT1-\d+-H0-\d{8}"),
                re.compile(rb"eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0\.\.[A-Za-z0-9_-]{8}"),
                re.compile(rb"AB11\d{10}[A-Za-z0-9]{8}")]


def xml_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def b64(s):
    return base64.b64encode(s.encode()).decode()


class AuthSmtp:
    """An SMTP server (aiosmtpd) that requires AUTH over plain text; accept=False refuses every login and quotes
    the password it was given in the refusal, as a careless server might."""

    def __init__(self, accept):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.messages, self.logins, self.lock = [], [], threading.Lock()
        sink = self

        def authenticator(server, session, envelope, mechanism, data):
            if not isinstance(data, LoginPassword):
                return AuthResult(success=False, handled=False)
            with sink.lock:
                sink.logins.append(mechanism)
            if accept and data.login == SMTP_USER.encode() and data.password == SMTP_PASSWORD.encode():
                return AuthResult(success=True)
            return AuthResult(success=False, handled=False,
                              message="535 5.7.8 login %s refused with password %s" % (
                                  data.login.decode(errors="replace"), data.password.decode(errors="replace")))

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                with sink.lock:
                    sink.messages.append(envelope.original_content or envelope.content)
                return "250 Message accepted for delivery"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, authenticator=authenticator,
                                     auth_required=True, auth_require_tls=False)
        self.controller.start()

    def received(self):
        with self.lock:
            return list(self.messages)

    def stop(self):
        self.controller.stop()


class SecretsTest(ClassCleanups):
    """One scenario (setUpClass) over all four daemons; each test checks one place secrets must not reach."""

    @classmethod
    def set_up_class(cls):
        cls.scenario()

    # --- the scenario ------------------------------------------------------------------------------------------

    @classmethod
    def secret_file(cls, name, value):
        path = cls.wd.file(name)
        with open(path, "w") as f:
            f.write(value + "\n")
        os.chmod(path, 0o600)
        return path

    @classmethod
    def scenario(cls):
        cls.wd = wd = Workdir("secrets")
        cls.cleanups.append(wd.cleanup)
        cls.outputs = []            # (what, text) of every syncctl call
        cls.tokens = set()          # every token value seen in the store
        cls.codes = set()
        cls.cmdlines = {}
        cls.runs = {}               # what -> exit code of --once

        # Upstreams.
        fake_pw = cls.secret_file("fake-tga-password", TGA_PASSWORD)
        cls.tga = Server(os.path.join(FAKES, "fake_tga_soap.py"), "--scale", "small", "--quiet", "--password-file",
                         fake_pw, wd=wd, name="fake_tga")
        cls.cleanups.append(cls.tga.stop)
        cls.ckan = Server(os.path.join(FAKES, "fake_ckan.py"), "--scale", "small", wd=wd, name="fake_ckan")
        cls.cleanups.append(cls.ckan.stop)
        secret_path = cls.secret_file("qb-client-secret", QB_CLIENT_SECRET)
        cls.qbo = Server(os.path.join(FAKES, "fake_qbo.py"), "--client-secret-file", secret_path, "--currency", "AUD",
                         "--rotate", "always", "--redirect-uri", QB_REDIRECT, wd=wd, name="fake_qbo")
        cls.cleanups.append(cls.qbo.stop)
        cls.items = Server(os.path.join(REPO, "tests", "kit", "items_server.py"), "--items", "12", wd=wd,
                           name="items")
        cls.cleanups.append(cls.items.stop)
        cls.smtp_ok = AuthSmtp(accept=True)
        cls.cleanups.append(cls.smtp_ok.stop)
        cls.smtp_refusing = AuthSmtp(accept=False)
        cls.cleanups.append(cls.smtp_refusing.stop)

        # One configuration for the four daemons, as in production; variants for the failure paths.
        cls.metrics_dir = wd.file("metrics")
        os.makedirs(cls.metrics_dir)
        sections = base_config(wd, cls.smtp_ok.port, {
            "paths": {"metrics_dir": cls.metrics_dir, "schedules_dir": SCHEDULES},
            "smtp": {"username": SMTP_USER, "password_file": cls.secret_file("smtp-password", SMTP_PASSWORD),
                     "queue_retry": "1h"},
            "tga-sync": {"base_url": cls.tga.url + "/Deewr.Tga.Webservices", "username": TGA_USER,
                         "password_file": cls.secret_file("tga-password", TGA_PASSWORD), "epoch": "2025-06-01",
                         "window": "30d", "page_size": 50, "step_retries": 0, "step_backoff": "50ms",
                         "step_backoff_max": "100ms"},
            "cricos-sync": {"base_url": cls.ckan.url + "/data", "page_size": 500, "step_retries": 0,
                            "step_backoff": "50ms", "step_backoff_max": "100ms"},
            "qb-reconcile": {"client_id": QB_CLIENT_ID, "client_secret_file": secret_path,
                             "redirect_uri": QB_REDIRECT, "api_base_url": cls.qbo.url,
                             "token_url": cls.qbo.url + "/oauth2/v1/tokens/bearer",
                             "authorize_url": cls.qbo.url + "/connect/oauth2", "currency": "AUD",
                             "throttle_wait": "1s", "invalid_grant_recheck": "100ms", "step_retries": 0, "step_backoff": "50ms",
                             "step_backoff_max": "100ms", "max_attempts": 3},
            "test-sync": {"url": cls.items.url, "page_size": 5},
        })
        cls.config = write_config(wd.file("sync.conf"), sections)
        wrong = json.loads(json.dumps(sections))
        wrong["tga-sync"]["password_file"] = cls.secret_file("tga-wrong-password", TGA_WRONG_PASSWORD)
        cls.config_wrong_pw = write_config(wd.file("sync-wrong-pw.conf"), wrong)
        refusing = json.loads(json.dumps(sections))
        refusing["smtp"]["url"] = "smtp://127.0.0.1:%d" % cls.smtp_refusing.port
        refusing["smtp"]["retries"] = "0"
        cls.config_refusing = write_config(wd.file("sync-refusing-smtp.conf"), refusing)
        cls.ops = os.path.join(wd.state, "ops.db")
        cls.token_dir = os.path.join(wd.state, "qb-reconcile")
        cls.token_file = os.path.join(cls.token_dir, "qb-tokens.json")

        cls.tga_runs()
        cls.cricos_and_test_sync()
        cls.qb_connect()
        cls.qb_cycles()
        cls.operator_commands()

    @classmethod
    def once(cls, what, name, config=None, env=None):
        cls.runs[what] = Daemon(name, config or cls.config, cls.wd).run_once("-v", env=env)
        return cls.runs[what]

    @classmethod
    def journal_env(cls, name):
        """JOURNAL_STREAM naming the daemon's stderr (its log file, opened for append by run_once)."""
        path = cls.wd.file("%s.log" % name)
        open(path, "ab").close()
        st = os.stat(path)
        return {"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)}

    @classmethod
    def tga_runs(cls):
        env = cls.journal_env("tga-sync")
        cls.once("tga full cycle", "tga-sync", env=env)
        cls.once("tga wrong password", "tga-sync", config=cls.config_wrong_pw)
        # A fault that quotes the password back (no real service should): only redaction stands in the way.  The
        # text is long enough that the fault's 1 KiB string field cuts the password in two.
        text = "The password of %s is not accepted here: " % TGA_USER
        text += "." * (1023 - len(text) - 14) + "'%s'." % TGA_PASSWORD
        cls.tga.fault("GetServerTime", "soap_fault", code="PasswordRejected", text=text)
        cls.once("tga echoed password", "tga-sync", env=env)

    @classmethod
    def cricos_and_test_sync(cls):
        cls.once("cricos full cycle", "cricos-sync")
        cls.once("test-sync, refusing mail server", "test-sync", config=cls.config_refusing)
        # Noted now: test-sync starts again later against the accepting server and delivers this mail then.
        cls.outbox_after_refusal = query(cls.ops, "SELECT status, last_error FROM mail_outbox"
                                                  " WHERE sync_type = 'test_sync'")

    @classmethod
    def ctl(cls, what, *args, expect=None):
        r = syncctl(cls.config, *args)
        cls.outputs.append((what, r.stdout + r.stderr))
        if expect is not None and r.returncode != expect:
            raise AssertionError("syncctl %s: exit %d: %s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    @classmethod
    def note_tokens(cls):
        try:
            with open(cls.token_file) as f:
                t = json.load(f)
        except (OSError, ValueError):
            return None
        cls.tokens.update(t[k] for k in ("access_token", "refresh_token") if t.get(k))
        return t

    @classmethod
    def qb_connect(cls):
        d = Daemon("qb-reconcile", cls.config, cls.wd)
        d.start("-v")
        try:
            r = cls.ctl("qb connect", "qb", "connect", expect=0)
            url = [w for w in r.stdout.split() if w.startswith(cls.qbo.url + "/connect/oauth2?")][0]
            location = cls.no_redirect(url)
            back = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
            code = back["code"][0]
            cls.codes.add(code)
            cls.ctl("qb connect --code", "qb", "connect", "--code", code, "--realm", back["realmId"][0], "--state",
                    back["state"][0], expect=0)
            cls.note_tokens()
            # The other daemons run too, for their command lines and `syncctl status`.
            others = [Daemon(n, cls.config, cls.wd) for n in ("tga-sync", "cricos-sync", "test-sync")]
            try:
                for o in others:
                    o.start()
                for o in [d] + others:
                    with open("/proc/%d/cmdline" % o.proc.pid, "rb") as f:
                        cls.cmdlines[o.name] = f.read()
                cls.ctl("status (running)", "status")
            finally:
                for o in others:
                    o.stop()
        finally:
            d.stop()

    @staticmethod
    def no_redirect(url):
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **kw):
                return None
        try:
            urllib.request.build_opener(NoRedirect).open(url, timeout=10)
        except urllib.error.HTTPError as e:
            if e.code in (301, 302, 303, 307):
                return e.headers["Location"]
            raise
        raise AssertionError("the authorize URL did not redirect")

    @classmethod
    def billing(cls, sql, params=()):
        con = sqlite3.connect(cls.ops, timeout=10)
        try:
            con.execute(sql, params)
            con.commit()
        finally:
            con.close()

    @classmethod
    def invoice(cls, iid, doc):
        now = "2026-11-29T00:00:00Z"
        cls.billing("INSERT INTO billing_invoices (id, customer_id, doc_number, txn_date, due_date, currency,"
                    " total_cents, is_test, created_at, updated_at) VALUES (?, 1, ?, '2026-11-01', '2026-12-01', 'AUD',"
                    " 10000, 0, ?, ?)", (iid, doc, now, now))
        cls.billing("INSERT INTO billing_invoice_lines (invoice_id, line_no, item, description, quantity,"
                    " unit_price_cents, amount_cents) VALUES (?, 1, 'essential', 'Line 1', 1, 10000, 10000)", (iid,))

    @classmethod
    def qb_cycles(cls):
        now = "2026-11-29T00:00:00Z"
        cls.billing("INSERT INTO billing_customers (id, rto_code, display_name, email, is_test, created_at,"
                    " updated_at) VALUES (1, '00001', 'Secret Test RTO', NULL, 0, ?, ?)", (now, now))
        cls.invoice(1, "SEC-1")
        # A 401 on the create: one refresh under the lock, then the same request again.
        cls.qbo.fault("invoice.create", "auth_401")
        cls.once("qb cycle with a 401", "qb-reconcile")
        t = cls.note_tokens()
        # An error body that quotes the client secret and the tokens back (no real service should).
        cls.invoice(2, "SEC-2")
        cls.qbo.fault("invoice.create", "xml_error", code="6000",
                      message="Business Validation Error: client_secret=%s" % QB_CLIENT_SECRET,
                      detail="token %s refresh %s auth Basic %s" % (t["access_token"], t["refresh_token"],
                                                                   b64(QB_CLIENT_ID + ":" + QB_CLIENT_SECRET)))
        cls.once("qb cycle with an echoing error", "qb-reconcile")
        cls.invoices = query(cls.ops, "SELECT qb_sync_status, qb_last_error LIKE '%6000%' FROM billing_invoices"
                                      " ORDER BY id")
        cls.note_tokens()
        # The company revokes the app: invalid_grant, heartbeat false, the reconnect mail.
        cls.qbo.post("/_fake/mutate", {"action": "revoke"})
        cls.once("qb cycle after invalid_grant", "qb-reconcile")
        cls.note_tokens()

    @classmethod
    def operator_commands(cls):
        # `qb retry` answers with the invoice's stored error (the one that quoted the secrets back).
        d = Daemon("qb-reconcile", cls.config, cls.wd)
        d.start("-v")
        try:
            cls.ctl("qb retry", "qb", "retry", "2")
        finally:
            d.stop()
        cls.ctl("status", "status")
        cls.ctl("status --json", "status", "--json")
        r = cls.ctl("runs --json", "runs", "--json", "--limit", "100", expect=0)
        cls.run_ids = [x["run_id"] for x in json.loads(r.stdout)]
        cls.ctl("runs", "runs", "--limit", "100")
        for rid in cls.run_ids:
            cls.ctl("steps %s" % rid, "steps", rid, "--json")
            cls.ctl("steps %s" % rid, "steps", rid)
        for d in ("tga-sync", "cricos-sync", "qb-reconcile", "test-sync"):
            cls.ctl("cursor %s" % d, "cursor", d)
        cls.ctl("qb status", "qb", "status")
        cls.ctl("qb status --json", "--json", "qb", "status")
        cls.ctl("doctor", "doctor")
        cls.ctl("doctor --json", "doctor", "--json")

    # --- what must not leak, and where it is looked for ---------------------------------------------------------

    @classmethod
    def secrets(cls):
        s = {"TGA password": TGA_PASSWORD, "TGA password (XML)": xml_escape(TGA_PASSWORD),
             "wrong TGA password": TGA_WRONG_PASSWORD, "SMTP password": SMTP_PASSWORD,
             "SMTP AUTH PLAIN": b64("\0%s\0%s" % (SMTP_USER, SMTP_PASSWORD)), "SMTP AUTH LOGIN": b64(SMTP_PASSWORD),
             "QuickBooks client secret": QB_CLIENT_SECRET,
             "QuickBooks Basic auth": b64(QB_CLIENT_ID + ":" + QB_CLIENT_SECRET)}
        for i, t in enumerate(sorted(cls.tokens)):
            s["token %d (%s...)" % (i, t[:8])] = t
        for i, c in enumerate(sorted(cls.codes)):
            s["authorization code %d" % i] = c
        return s

    def find(self, blobs):
        """[(place, secret)] for every secret (by value or by token shape) found in {place: bytes}."""
        found = []
        secrets = {k: v.encode() for k, v in self.secrets().items()}
        for place, blob in blobs.items():
            for name, value in secrets.items():
                if value in blob:
                    found.append((place, name))
            if MARK in blob:
                i = blob.index(MARK)
                found.append((place, "a piece of a secret %r" % blob[max(0, i - 12):i + 12]))
            for shape in TOKEN_SHAPES:
                m = shape.search(blob)
                if m:
                    found.append((place, "a token-shaped string %r" % m.group(0)[:24]))
        return found

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    # --- the checks ---------------------------------------------------------------------------------------------

    def test_scenario_went_through_its_paths(self):
        """The failure paths really failed where they should (else the test would prove little)."""
        # Exit codes of --once: the TGA failures fail the run; a queued mail does not; the QuickBooks troubles (a
        # failed invoice, a dead connection) end the cycle degraded (10).
        self.assertEqual(self.runs, {"tga full cycle": 0, "tga wrong password": 1, "tga echoed password": 1,
                                     "cricos full cycle": 0, "test-sync, refusing mail server": 0,
                                     "qb cycle with a 401": 0, "qb cycle with an echoing error": 10,
                                     "qb cycle after invalid_grant": 10})
        self.assertEqual(self.invoices, [("synced", None), ("failed", 1)])
        errors = [e for (e,) in query(self.ops, "SELECT error FROM sync_runs WHERE sync_type = 'tga_sync' AND"
                                                " status = 'failed' ORDER BY started_at")]
        self.assertEqual(len(errors), 2, errors)
        self.assertIn("TGA rejected the credentials", errors[0])
        self.assertIn("PasswordRejected", errors[1])
        self.assertIn("is not accepted here", errors[1])        # the text is kept, the password in it is not
        stats = self.qbo.get("/_fake/stats")
        tok = stats["token"]
        self.assertEqual(tok.get("authorization_code.ok"), 1, tok)
        self.assertGreaterEqual(tok.get("refresh_token.ok", 0), 3, tok)     # heartbeats and the 401's refresh
        self.assertGreaterEqual(tok.get("refresh_token.invalid_grant", 0), 1, tok)
        self.assertGreaterEqual(stats["faults_fired"].get("auth_401", 0), 1, stats["faults_fired"])
        self.assertGreaterEqual(stats["faults_fired"].get("xml_error", 0), 1, stats["faults_fired"])
        conn = query(self.ops, "SELECT state FROM qb_connection")
        self.assertEqual(conn, [("reconnect_required",)])
        self.assertGreaterEqual(len(self.tokens), 4)
        self.assertTrue(self.smtp_ok.received(), "no mail reached the accepting server")
        self.assertEqual(self.smtp_refusing.received(), [])
        self.assertIn("PLAIN", self.smtp_refusing.logins + self.smtp_ok.logins)
        refused = self.outbox_after_refusal
        self.assertTrue(refused and refused[0][0] == "pending" and refused[0][1], refused)
        # The queued mail went out when test-sync next started with a working server (start-up delivers it).
        outbox = query(self.ops, "SELECT status FROM mail_outbox WHERE sync_type = 'test_sync'")
        self.assertEqual(outbox[0], ("sent",), outbox)

    def test_daemon_logs(self):
        logs = {p: self.read(self.wd.file(p)) for p in os.listdir(self.wd.path) if p.endswith(".log") and
                not p.startswith(("fake_", "items"))}
        self.assertEqual(set(logs), {"tga-sync.log", "cricos-sync.log", "qb-reconcile.log", "test-sync.log"})
        self.assertIn(b"TGA rejected the credentials", logs["tga-sync.log"])
        self.assertIn(b"invalid_grant", logs["qb-reconcile.log"])
        for name, log in logs.items():
            self.assertNotIn(b"Sanitizer", log, name)
            self.assertNotIn(b"runtime error", log, name)
        self.assertEqual(self.find(logs), [])

    def test_journald_format(self):
        """The runs with JOURNAL_STREAM naming their stderr wrote <N> lines, redacted the same way."""
        lines = self.read(self.wd.file("tga-sync.log")).splitlines()
        journal = [ln for ln in lines if re.match(rb"^<[0-7]>", ln)]
        self.assertGreater(len(journal), 10)
        self.assertTrue(any(b"is not accepted here" in ln for ln in journal), "the echoed fault is not logged")
        self.assertTrue(any(re.match(rb"^\d{4}-\d\d-\d\dT", ln) for ln in lines), "no plain-format run")
        self.assertEqual(self.find({"journald lines": b"\n".join(journal)}), [])

    def test_databases(self):
        """Run rows, step rows, mail_outbox, the billing tables: every byte of the databases and their WAL."""
        blobs = {}
        for name in ("ops.db", "ops.db-wal", "rtopacks.db", "rtopacks.db-wal"):
            path = os.path.join(self.wd.state, name)
            if os.path.exists(path):
                blobs[name] = self.read(path)
        self.assertIn("ops.db", blobs)
        self.assertEqual(self.find(blobs), [])
        # And by row, where a page-level miss could hide (a secret split across pages is not one).
        rows = {}
        for table in ("sync_runs", "sync_steps", "mail_outbox", "billing_invoices", "qb_connection"):
            rows[table] = json.dumps(query(self.ops, "SELECT * FROM %s" % table)).encode()
        self.assertEqual(self.find(rows), [])

    def test_mail(self):
        mails = {"mail %d" % i: m for i, m in enumerate(self.smtp_ok.received())}
        subjects = b"".join(m for m in mails.values())
        self.assertIn(b"QuickBooks needs reconnecting", subjects)
        self.assertEqual(self.find(mails), [])

    def test_metrics(self):
        files = {f: self.read(os.path.join(self.metrics_dir, f)) for f in os.listdir(self.metrics_dir)}
        self.assertTrue(any(f.endswith(".prom") for f in files), files)
        self.assertEqual(self.find(files), [])

    def test_syncctl_output(self):
        whats = {w for w, _ in self.outputs}
        for w in ("status", "status (running)", "runs --json", "qb status", "doctor", "cursor qb-reconcile",
                  "qb connect --code", "qb retry"):
            self.assertIn(w, whats)
        self.assertIn("SEC-2", [o for w, o in self.outputs if w == "qb retry"][0])
        self.assertGreaterEqual(len(self.run_ids), 8)
        blobs = {"syncctl %s #%d" % (w, i): o.encode() for i, (w, o) in enumerate(self.outputs)}
        self.assertEqual(self.find(blobs), [])

    def test_secret_files_are_private(self):
        self.assertEqual(stat.S_IMODE(os.stat(self.token_dir).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(self.token_file).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(self.token_file + ".lock").st_mode), 0o600)
        # Nothing else in the daemon's directory (no temp file left behind).
        self.assertEqual(sorted(os.listdir(self.token_dir)), ["qb-tokens.json", "qb-tokens.json.lock"])
        # Any other file in the state directory holding a secret would be a leak (the store is the only place).
        blobs = {}
        for root, _, files in os.walk(self.wd.state):
            for f in files:
                p = os.path.join(root, f)
                if root != self.token_dir and stat.S_ISREG(os.lstat(p).st_mode):
                    blobs[os.path.relpath(p, self.wd.state)] = self.read(p)
        self.assertEqual(self.find(blobs), [])

    def test_no_secret_on_a_command_line(self):
        self.assertEqual(set(self.cmdlines), {"qb-reconcile", "tga-sync", "cricos-sync", "test-sync"})
        for name, cmd in self.cmdlines.items():
            self.assertIn(b"-c\0", cmd, name)
        self.assertEqual(self.find({"cmdline of %s" % n: c for n, c in self.cmdlines.items()}), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
