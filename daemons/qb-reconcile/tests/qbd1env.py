"""qb-reconcile with billing_source = d1 (issue 16; daemons/qb-reconcile/d1billing.c), for any qb-reconcile test: the
fake D1 (tests/fakes/fake_d1.py) with the ops database and its billing tables, a QBEnv whose billing lives there
(D1Env), and the check that D1's billing rows say what the QuickBooks fake's ledger holds.

D1Env keeps QBEnv's whole interface.  What billing does goes to D1: customer() and invoice() insert there (as
dcustomer() and dinvoice() do), so a case written against QBEnv seeds the same invoices in either mode; sql(), inv()
and conn() still read ops.db, the daemon's journal (in D1 mode it holds the pulled copies and every outcome).
A D1Env starts its own fake D1 unless one is handed in (FakeD1: a test class may share one and reset() it)."""

import os

from harness import REPO, Server, Workdir, wait_for
from qbenv import QBEnv, slow_factor

FAKE_D1 = os.path.join(REPO, "tests", "fakes", "fake_d1.py")
ACCOUNT = "0123456789abcdef0123456789abcdef"
D1_TOKEN = "test-d1-token_0123456789ABCDEFGHIJabcdefghij"
OPS = "aaaaaaaa-1111-4111-8111-0000000000b5"
T0 = "2026-11-29T00:00:00Z"
BILLING_TABLES = ("qb_reconcile_issues", "billing_invoice_lines", "billing_invoices", "billing_customers",
                  "qb_connection")


def billing_schema():
    with open(os.path.join(REPO, "schema", "ops", "0002-billing.sql")) as f:
        return f.read()


def q(v):
    """An SQL literal (the fake's /_fake/sql takes plain SQL text)."""
    if v is None:
        return "NULL"
    if isinstance(v, (int, float)):
        return str(v)
    return "'%s'" % str(v).replace("'", "''")


class FakeD1:
    """The fake D1 with the ops database (its billing tables made), the API token it accepts and a token file for
    the daemon.  Its own workdir unless one is handed in."""

    def __init__(self, wd=None):
        self.own_wd = wd is None
        self.wd = wd or Workdir("qbd1")
        tokens = self.wd.file("fake-d1-tokens")
        with open(tokens, "w") as f:
            f.write(D1_TOKEN + "\n")
        self.token_file = self.wd.file("d1-token")
        with open(self.token_file, "w") as f:
            f.write(D1_TOKEN + "\n")
        os.chmod(self.token_file, 0o600)
        self.server = Server(FAKE_D1, "--account-id", ACCOUNT, "--token-file", tokens, "--data-dir",
                             self.wd.file("d1"), "--database", "ops-db=" + OPS, "--quiet", wd=self.wd)
        self.url = self.server.url
        self.reset()

    def post(self, path, obj=None, timeout=30):
        return self.server.post(path, obj, timeout=timeout)

    def get(self, path, timeout=60):
        return self.server.get(path, timeout=timeout)

    def reset(self):
        """No fault, no outage, no rate block, and the billing tables empty (made again from the schema)."""
        self.post("/_fake/fault/clear")
        self.post("/_fake/outage", {"mode": "off"})
        self.post("/_fake/rate/reset")
        self.post("/_fake/sql", {"database": "ops-db", "sql": ";\n".join(
            "DROP TABLE IF EXISTS %s" % t for t in BILLING_TABLES)})
        self.post("/_fake/sql", {"database": "ops-db", "sql": billing_schema()})

    def stop(self):
        try:
            self.post("/_fake/outage", {"mode": "off"})
        except OSError:
            pass
        self.server.stop()
        if self.own_wd:
            self.wd.cleanup()


class D1Env(QBEnv):
    """A QBEnv whose billing is in D1: `d1` a FakeD1 to share (else its own, stopped by cleanup()), `d1_keys` the
    [d1] keys to change, the other keys as for QBEnv."""

    mode = "d1"

    def __init__(self, name="qbd1", d1=None, d1_keys=None, **qb_keys):
        super().__init__(name, **qb_keys)
        self.own_d1 = d1 is None
        try:
            self.d1 = d1 or FakeD1(self.wd)
        except BaseException:
            super().cleanup()
            raise
        # D1's pacing shrunk: the real one spaces requests 0.375 s apart (800 per 5 minutes), which would add
        # seconds to every cycle; 1,000 per 20 s is 20 ms (the fake's own limit, 1,200 per 5 minutes, is far off).
        keys = {"account_id": ACCOUNT, "ops_database_id": OPS, "api_base": self.d1.url + "/client/v4",
                "token_file": self.d1.token_file, "retries": "1", "backoff": "100ms", "backoff_max": "300ms",
                "rate_block": "2s", "requests_per_5min": 1000, "rate_window": "20s"}
        keys.update(d1_keys or {})
        self.secrets.add(D1_TOKEN)      # leaked() looks for it too
        with open(self.config) as f:
            conf = f.read()
        conf = conf.replace("[qb-reconcile]\n", "[qb-reconcile]\nbilling_source = d1\n", 1)
        conf += "[d1]\n" + "".join("%s = %s\n" % kv for kv in keys.items()) + "\n"
        with open(self.config, "w") as f:
            f.write(conf)

    def cleanup(self):
        if self.own_d1 and getattr(self, "d1", None) is not None:
            self.d1.stop()
        super().cleanup()

    # --- the D1 side (what billing does) ---------------------------------------------------------------------

    def dsql(self, sql):
        return self.d1.post("/_fake/sql", {"database": "ops-db", "sql": sql})["results"]

    def drows(self, sql):
        r = self.dsql(sql)[-1]
        return [dict(zip(r["columns"], row)) for row in r["rows"]]

    def dcustomer(self, cid, name, is_test=0, email=None):
        self.dsql("INSERT INTO billing_customers (id, rto_code, display_name, email, is_test, created_at, updated_at)"
                  " VALUES (%d, '%05d', %s, %s, %d, '%s', '%s')" % (cid, cid, q(name), q(email), is_test, T0, T0))

    def dinvoice(self, iid, cust, doc, lines=((1, 10000, "essential"),), total=None, is_test=0, currency="AUD"):
        total = sum(qty * u for qty, u, _ in lines) if total is None else total
        sql = ["INSERT INTO billing_invoices (id, customer_id, doc_number, txn_date, due_date, currency, total_cents,"
               " is_test, created_at, updated_at) VALUES (%d, %d, %s, '2026-11-01', '2026-12-01', %s, %d, %d, '%s',"
               " '%s')" % (iid, cust, q(doc), q(currency), total, is_test, T0, T0)]
        for n, (qty, u, item) in enumerate(lines, 1):
            sql.append("INSERT INTO billing_invoice_lines (invoice_id, line_no, item, description, quantity,"
                       " unit_price_cents, amount_cents) VALUES (%d, %d, %s, 'Line %d', %d, %d, %d)"
                       % (iid, n, q(item), n, qty, u, qty * u))
        self.dsql(";\n".join(sql))

    # Billing writes to D1 in this mode: the shared cases' customer() and invoice() are these.
    customer = dcustomer
    invoice = dinvoice

    def dedit(self, iid, lines, when):
        """Billing changes an invoice's lines and sets it pending again (docs: how to change a synced invoice)."""
        total = sum(qty * u for qty, u, _ in lines)
        sql = ["DELETE FROM billing_invoice_lines WHERE invoice_id = %d" % iid]
        for n, (qty, u, item) in enumerate(lines, 1):
            sql.append("INSERT INTO billing_invoice_lines (invoice_id, line_no, item, description, quantity,"
                       " unit_price_cents, amount_cents) VALUES (%d, %d, %s, 'Edited %d', %d, %d, %d)"
                       % (iid, n, q(item), n, qty, u, qty * u))
        sql.append("UPDATE billing_invoices SET total_cents = %d, qb_sync_status = 'pending', updated_at = '%s'"
                   " WHERE id = %d" % (total, when, iid))
        self.dsql(";\n".join(sql))

    def dinv(self, iid):
        return self.drows("SELECT * FROM billing_invoices WHERE id = %d" % iid)[0]

    def waiting(self):
        """Write-backs not yet delivered to D1."""
        return self.sql("SELECT count(*) FROM qb_d1_writeback")[0][0]

    def drain(self, timeout=30):
        """Deliver the write-backs a killed run left (if any), as the restarted service does on housekeeping (no
        cycle starts): start the service, wait for the queue to empty, stop it."""
        if not self.waiting():
            return
        self.daemon.start()
        try:
            wait_for(lambda: self.waiting() == 0, timeout=timeout * slow_factor(),
                     what="the write-backs to D1 to drain")
        finally:
            self.daemon.stop()


def d1_mismatches(env, docs=None):
    """What D1's billing rows say that the QuickBooks ledger (and the journal) does not, for the invoices with these
    DocNumbers (all of D1's when None), once every write-back was delivered: each synced, with the QuickBooks Id,
    SyncToken and TotalAmt of the one invoice of its DocNumber, and the journal's id and requestid generation.
    Returns a list of differences (empty: consistent)."""
    out = []
    if env.waiting():
        out.append("%d write-backs to D1 not delivered" % env.waiting())
    ledger = env.ledger()
    by_id = {i["Id"]: i for i in ledger["invoices"]}
    rows = env.drows("SELECT * FROM billing_invoices ORDER BY id")
    if docs is not None:
        docs = set(docs)
        rows = [r for r in rows if r["doc_number"] in docs]
        missing = docs - {r["doc_number"] for r in rows}
        if missing:
            out.append("not in D1: %s" % sorted(missing))
    for row in rows:
        iid, doc = row["id"], row["doc_number"]
        if row["qb_sync_status"] != "synced":
            out.append("invoice %d (%s): %s in D1" % (iid, doc, row["qb_sync_status"]))
            continue
        ids = ledger["doc_numbers"].get(doc, {}).get("ids")
        if ids != [row["qb_invoice_id"]]:
            out.append("invoice %d (%s): D1 has QuickBooks Id %s, the ledger %s" % (iid, doc, row["qb_invoice_id"],
                                                                                    ids))
            continue
        qi = by_id.get(row["qb_invoice_id"], {})
        if qi.get("status") == "deleted":
            continue    # deleted in QuickBooks: reconcile says so (qb_state), its last SyncToken is not shown
        if qi.get("SyncToken") != row["qb_sync_token"]:
            out.append("invoice %d (%s): D1 has SyncToken %s, QuickBooks %s" % (iid, doc, row["qb_sync_token"],
                                                                               qi.get("SyncToken")))
        if qi.get("TotalAmt") is not None and round(float(qi["TotalAmt"]) * 100) != row["qb_total_cents"]:
            out.append("invoice %d (%s): D1 has qb_total_cents %s, QuickBooks TotalAmt %s"
                       % (iid, doc, row["qb_total_cents"], qi["TotalAmt"]))
        local = env.sql("SELECT qb_invoice_id, qb_request_gen, qb_sync_status FROM billing_invoices WHERE id = ?",
                        (iid,))
        if not local or local[0] != (row["qb_invoice_id"], row["qb_request_gen"], "synced"):
            out.append("invoice %d (%s): D1 has (%s, gen %s, synced), the journal %s"
                       % (iid, doc, row["qb_invoice_id"], row["qb_request_gen"], local[:1]))
    return out
