"""Shared set-up of the qb-reconcile tests: a workdir, the fake QuickBooks (tests/fakes/fake_qbo.py, limits on), a
seeded token store, the daemon's config, billing rows, and helpers to run cycles and read the outcome."""

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import urllib.request

import env as kitenv
from harness import BIN, REPO, Server, query, slow_factor, wait_for  # noqa: F401 (re-exported to the tests)

FAKE = os.path.join(REPO, "tests", "fakes", "fake_qbo.py")
CLIENT_ID = "ABfakeQBOclient0000000000000000000000000000000000"
CLIENT_SECRET = "fake-client-secret-for-qb-tests-7f3a9c"
NOW = "2026-11-29T00:00:00Z"
RESULT_KEYS = ["status", "synced", "failed", "abandoned", "heartbeat"]


def sha12(s):
    return hashlib.sha256(s.encode()).hexdigest()[:12]


class QBEnv(kitenv.Env):
    """A workdir, its fake QuickBooks (its own unless one is handed in), a seeded token store, a config for
    qb-reconcile and the daemon, with ops.db made (one start and stop, no cycle)."""

    binary = "qb-reconcile"
    sync_type = "qb_reconcile"

    def __init__(self, name="qb", smtp=None, fake_args=(), seed_tokens=True, token_file=None, fake=None,
                 **qb_keys):
        super().__init__(name, smtp)
        secret = self.secret_file("client-secret", CLIENT_SECRET + "\n")
        self.own_fake = fake is None
        self.fake = fake or Server(FAKE, "--token-state-file", self.wd.file("fake-tokens.json"), "--currency", "AUD",
                                   "--client-secret-file", secret, *fake_args, wd=self.wd)
        self.token_file = token_file or os.path.join(self.wd.state, "qb-reconcile", "qb-tokens.json")
        os.makedirs(os.path.dirname(self.token_file), mode=0o700, exist_ok=True)
        self.secrets = {CLIENT_SECRET}
        if seed_tokens and not os.path.exists(self.token_file):
            shutil.copy(self.wd.file("fake-tokens.json"), self.token_file)
            os.chmod(self.token_file, 0o600)
        if os.path.exists(self.wd.file("fake-tokens.json")):
            self.note_tokens(self.wd.file("fake-tokens.json"))
        keys = {
            "client_id": CLIENT_ID, "client_secret_file": secret,
            "redirect_uri": "https://rtopacks.test/qb/callback", "api_base_url": self.fake.url,
            "token_url": self.fake.url + "/oauth2/v1/tokens/bearer",
            "authorize_url": self.fake.url + "/connect/oauth2", "currency": "AUD", "throttle_wait": "1s",
            "step_backoff": "50ms", "step_backoff_max": "200ms", "step_retries": 1, "token_file": self.token_file,
            "requests_per_minute": 500, "invalid_grant_recheck": "300ms",
        }
        keys.update(qb_keys)
        self.configure(keys)
        # ops.db with its schema: one start and stop (no cycle runs).
        self.daemon.start()
        self.daemon.stop()

    # --- running ---------------------------------------------------------------------------------------------

    def once(self, env=None, timeout=120):
        """One cycle with --once: (exit code, the result JSON printed on stdout, or None)."""
        e = dict(os.environ)
        e.update(env or {})
        with open(self.daemon.log_path, "ab") as log:
            p = subprocess.run(self.daemon.command([], once=True), stdout=subprocess.PIPE, stderr=log, env=e,
                               timeout=timeout * slow_factor())
        out = p.stdout.decode()
        self.outputs.append(out)
        self.note_tokens()
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        return p.returncode, (json.loads(lines[-1]) if lines else None)

    def ctl(self, *args, timeout=120):
        """syncctl with this config (its output is kept for the secret checks)."""
        return self.syncctl(*args, timeout=timeout)

    def note_tokens(self, path=None):
        """Remember every token value we ever saw: none may appear anywhere outside the store."""
        path = path or self.token_file
        try:
            with open(path) as f:
                t = json.load(f)
        except (OSError, ValueError):
            return None
        for k in ("access_token", "refresh_token"):
            if t.get(k):
                self.secrets.add(t[k])
        return t

    # --- data ------------------------------------------------------------------------------------------------

    def sql(self, sql, params=()):
        con = sqlite3.connect(self.ops, timeout=10)
        try:
            cur = con.execute(sql, params)
            rows = cur.fetchall()
            con.commit()
            return rows
        finally:
            con.close()

    def customer(self, cid, name, is_test=0, email=None):
        self.sql("INSERT INTO billing_customers (id, rto_code, display_name, email, is_test, created_at, updated_at)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?)", (cid, "%05d" % cid, name, email, is_test, NOW, NOW))

    def invoice(self, iid, cust, doc, lines=((1, 10000, "essential"),), total=None, is_test=0, currency="AUD"):
        amounts = [q * u for q, u, _ in lines]
        total = sum(amounts) if total is None else total
        self.sql("INSERT INTO billing_invoices (id, customer_id, doc_number, txn_date, due_date, currency,"
                 " total_cents, is_test, created_at, updated_at) VALUES (?, ?, ?, '2026-11-01', '2026-12-01', ?, ?,"
                 " ?, ?, ?)", (iid, cust, doc, currency, total, is_test, NOW, NOW))
        for n, (q, u, item) in enumerate(lines, 1):
            self.sql("INSERT INTO billing_invoice_lines (invoice_id, line_no, item, description, quantity,"
                     " unit_price_cents, amount_cents) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (iid, n, item, "Line %d" % n, q, u, q * u))

    def inv(self, iid):
        r = self.sql("SELECT qb_sync_status, qb_invoice_id, qb_attempts, qb_last_error, qb_request_gen, qb_state,"
                     " qb_balance_cents, paid_at, qb_total_cents FROM billing_invoices WHERE id = ?", (iid,))
        return dict(zip(("status", "qb_id", "attempts", "error", "gen", "qb_state", "balance", "paid_at",
                         "qb_total"), r[0]))

    def conn(self):
        con = sqlite3.connect(self.ops)
        con.row_factory = sqlite3.Row
        try:
            return dict(con.execute("SELECT * FROM qb_connection").fetchone())
        finally:
            con.close()

    def ledger(self):
        return self.fake.get("/_fake/ledger")

    def stats(self):
        return self.fake.get("/_fake/stats")

    def fault(self, op, kind, count=1, **kw):
        return self.fake.fault(op, kind, count, **kw)

    def mutate(self, spec):
        return self.fake.post("/_fake/mutate", spec)

    # --- checks ----------------------------------------------------------------------------------------------

    def leaked(self, extra_texts=()):
        """Every place a secret must never be: logs, ops.db (and its WAL), syncctl output, mails."""
        blobs = {"daemon log": self.daemon.read_log().encode()}
        for fn in ("ops.db", "ops.db-wal"):
            p = os.path.join(self.wd.state, fn)
            if os.path.exists(p):
                with open(p, "rb") as f:
                    blobs[fn] = f.read()
        for i, o in enumerate(self.outputs + list(extra_texts)):
            blobs["output %d" % i] = o.encode() if isinstance(o, str) else o
        found = []
        for name, blob in blobs.items():
            for s in self.secrets:
                if s and s.encode() in blob:
                    found.append("%s contains a secret (%s...)" % (name, s[:6]))
        return found

    def cleanup(self):
        if self.own_fake:
            self.fake.stop()
        super().cleanup()


def exit_code(res):
    """What --once exits with for a result: 0 ok, 10 degraded (the run ends 'degraded')."""
    return 0 if res is not None and res["status"] == "ok" else 10


def result(status="ok", synced=0, failed=0, abandoned=0, heartbeat=True):
    return {"status": status, "synced": synced, "failed": failed, "abandoned": abandoned, "heartbeat": heartbeat}


def no_redirect_get(url):
    """GET without following redirects: (status, Location)."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **kw):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    try:
        r = opener.open(url, timeout=10)
        return r.status, r.headers.get("Location")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location")
