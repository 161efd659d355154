#!/usr/bin/python3
"""Raw-HTTP checks (urllib) of fake_d1.py against the reference (../shared/reference/cloudflare-d1.md): the envelope,
auth codes, one transaction per request, the dialect, the limits (statement size, bound parameters, the 30 s 504,
the rate limit and its block) and the armable faults.

Run: /usr/bin/python3 tests/fakes/test_fake_d1.py   (exits non-zero on failure; about 15 s)
"""

import http.client as http_client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import fakeproc

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "fake_d1.py")
ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "test-d1-token_0123456789ABCDEFGHIJabcdefghij"
CORPUS = "aaaaaaaa-1111-4111-8111-000000000001"
OPS = "aaaaaaaa-1111-4111-8111-000000000002"
META_KEYS = {"served_by", "served_by_region", "served_by_colo", "served_by_primary", "timings", "duration",
             "changes", "last_row_id", "changed_db", "size_after", "rows_read", "rows_written", "total_attempts"}

TMP = tempfile.mkdtemp(prefix="fake_d1_test_")
SERVERS = {}


def start(name, *extra, env=None, data_dir=None):
    d = os.path.join(TMP, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "tokens"), "w") as fh:
        fh.write(TOKEN + "\n")
    port_file = os.path.join(d, "port")
    if os.path.exists(port_file):
        os.unlink(port_file)
    log = open(os.path.join(d, "stderr.log"), "a")
    proc, port = fakeproc.launch(
        ["/usr/bin/python3", FAKE, "--port", "0", "--port-file", port_file, "--account-id", ACCOUNT,
         "--token-file", os.path.join(d, "tokens"), "--data-dir", data_dir or os.path.join(d, "data"),
         "--database", "rtopacks-db=" + CORPUS, "--database", "ops-db=" + OPS] + list(extra),
        port_file, log, 15, stdout=subprocess.DEVNULL, env=dict(os.environ, **(env or {})))
    SERVERS[name] = {"proc": proc, "port": port, "log": log, "dir": d}
    return port


def stop(name):
    s = SERVERS.pop(name)
    rc = fakeproc.terminate(s["proc"])
    s["log"].close()
    return rc


def setUpModule():
    start("main")
    # The rate limit's windows come from the environment here, as a test of a daemon would shrink them (the window
    # is long enough that a loaded machine cannot let requests slide out of it during the test).
    start("rate", env={"FAKE_D1_RATE_LIMIT": "5", "FAKE_D1_RATE_WINDOW": "20", "FAKE_D1_RATE_BLOCK": "2"})


def tearDownModule():
    for name in list(SERVERS):
        rc = stop(name)
        if rc != 0:
            raise RuntimeError("fake %s exited %d on SIGTERM; logs in %s" % (name, rc, TMP))
    if not os.environ.get("FAKE_D1_KEEP"):
        shutil.rmtree(TMP, ignore_errors=True)


Resp = fakeproc.Response


def http(server, method, path, body=None, headers=None, timeout=20):
    """One request with urllib; 4xx/5xx answers are returned, not raised."""
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (SERVERS[server]["port"], path), data=data,
                                 headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    except urllib.error.HTTPError as e:
        return Resp(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())


def api_path(db=CORPUS, verb="query", account=ACCOUNT):
    p = "/client/v4/accounts/%s/d1/database" % account
    if db is not None:
        p += "/" + db
    if verb:
        p += "/" + verb
    return p


def d1(body, server="main", db=CORPUS, verb="query", token=TOKEN, headers=None, **kw):
    h = {"Authorization": "Bearer " + token} if token is not None else {}
    h.update(headers or {})
    return http(server, "POST", api_path(db, verb), body, h, **kw)


def ok(body, **kw):
    r = d1(body, **kw)
    assert r.status == 200, (r.status, r.body)
    j = r.json()
    assert j["success"] is True and j["errors"] == [] and j["messages"] == [], j
    return j["result"]


def sql_fails(body, **kw):
    """The message of a 7500 answer, after checking the live SQL-error body's exact shape (reference section 3)."""
    r = d1(body, **kw)
    assert r.status == 400, (r.status, r.body)
    j = r.json()
    assert list(j) == ["messages", "result", "success", "errors"], j
    assert j["messages"] == [] and j["result"] == [] and j["success"] is False, j
    assert len(j["errors"]) == 1 and j["errors"][0]["code"] == 7500, j
    return j["errors"][0]["message"]


def ctl(method, path, body=None, server="main"):
    r = http(server, method, "/_fake/" + path, body)
    assert r.status == 200, (path, r.status, r.body)
    return r.json()


def dump(table, db="rtopacks-db", server="main"):
    return ctl("GET", "dump?database=%s&table=%s" % (db, table), server=server)["rows"]


def fault(spec, server="main"):
    return ctl("POST", "fault", spec, server)


def fresh(table, cols="id INTEGER PRIMARY KEY, v TEXT", db="rtopacks-db"):
    ctl("POST", "sql", {"database": db, "sql": "DROP TABLE IF EXISTS %s; CREATE TABLE %s (%s)" % (table, table, cols)})


class Envelope(unittest.TestCase):
    def setUp(self):
        ctl("POST", "fault/clear")

    def test_query_envelope_and_meta(self):
        fresh("env")
        r = d1({"sql": "INSERT INTO env (v) VALUES ('a'), ('b'); SELECT id, v FROM env ORDER BY id"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "application/json")
        j = r.json()
        self.assertEqual(list(j), ["result", "errors", "messages", "success"])     # reference section 3
        self.assertEqual(len(j["result"]), 2)                                        # one entry per statement
        ins, sel = j["result"]
        for entry in (ins, sel):
            self.assertEqual(set(entry), {"results", "success", "meta"})
            self.assertTrue(entry["success"])
            self.assertEqual(set(entry["meta"]), META_KEYS)
            self.assertEqual(entry["meta"]["timings"], {"sql_duration_ms": entry["meta"]["duration"]})
            self.assertEqual(entry["meta"]["total_attempts"], 1)
            self.assertGreater(entry["meta"]["size_after"], 0)
        self.assertEqual(ins["results"], [])
        self.assertEqual((ins["meta"]["changes"], ins["meta"]["rows_written"], ins["meta"]["changed_db"]), (2, 2, True))
        self.assertEqual(ins["meta"]["last_row_id"], 2)
        self.assertEqual(sel["results"], [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}])
        self.assertEqual((sel["meta"]["changes"], sel["meta"]["changed_db"], sel["meta"]["rows_written"]),
                         (0, False, 0))
        # last_row_id is the connection's and is not reset by a statement that inserts nothing
        self.assertEqual(sel["meta"]["last_row_id"], 2)
        self.assertEqual(sel["meta"]["rows_read"], 2)

    def test_raw_rows_as_arrays(self):
        fresh("rawt")
        ok({"sql": "INSERT INTO rawt (v) VALUES ('x')"})
        res = ok({"sql": "SELECT id, v FROM rawt; DELETE FROM rawt WHERE id = 99"}, verb="raw")
        self.assertEqual(res[0]["results"], {"columns": ["id", "v"], "rows": [[1, "x"]]})
        self.assertEqual(res[1]["results"], {"columns": [], "rows": []})
        self.assertEqual(set(res[0]["meta"]), META_KEYS)

    def test_failing_statement_rolls_back_whole_request(self):
        fresh("txn")
        msg = sql_fails({"sql": "INSERT INTO txn (v) VALUES ('kept?'); INSERT INTO nope VALUES (1)"})
        self.assertEqual(msg, "no such table: nope: SQLITE_ERROR")
        self.assertEqual(dump("txn"), [])
        # a constraint in the last statement undoes the first ones too
        ok({"sql": "INSERT INTO txn (id, v) VALUES (1, 'one')"})
        msg = sql_fails({"sql": "UPDATE txn SET v = 'changed'; INSERT INTO txn (id, v) VALUES (1, 'dup')"})
        self.assertEqual(msg, "UNIQUE constraint failed: txn.id: SQLITE_CONSTRAINT")
        self.assertEqual(dump("txn"), [[1, "one"]])

    def test_batch_form_params_one_transaction(self):
        fresh("b", "code TEXT PRIMARY KEY, n INTEGER, r REAL, note TEXT")
        res = ok({"batch": [
            {"sql": "INSERT INTO b VALUES (?, ?, ?, ?)", "params": ["BSB50120", "42", "1.5", None]},
            {"sql": "INSERT INTO b VALUES (?1, ?2, ?3, ?4) ON CONFLICT(code) DO UPDATE SET n = excluded.n",
             "params": ["BSB50120", 43, 2.5, "x"]},
            {"sql": "SELECT code, n, typeof(n) AS t, note FROM b"}]})
        self.assertEqual(len(res), 3)
        # a string bound into an INTEGER column is converted by affinity; JSON null is NULL
        self.assertEqual(res[2]["results"], [{"code": "BSB50120", "n": 43, "t": "integer", "note": None}])
        msg = sql_fails({"batch": [{"sql": "DELETE FROM b WHERE code = ?", "params": ["BSB50120"]},
                                   {"sql": "INSERT INTO b (code) VALUES (?)", "params": [None]},
                                   {"sql": "INSERT INTO b (code) VALUES (?)", "params": ["A"]},
                                   {"sql": "INSERT INTO b (code) VALUES (?)", "params": ["A"]}]})
        self.assertIn("UNIQUE constraint failed", msg)
        self.assertEqual(dump("b"), [["BSB50120", 43, 1.5, None]])

    def test_split_respects_literals_comments_and_triggers(self):
        fresh("s")
        res = ok({"sql": "-- a comment; with a semicolon\nINSERT INTO s (v) VALUES ('a;b');\n"
                         "CREATE TRIGGER s_t AFTER INSERT ON s BEGIN UPDATE s SET v = v || ';' WHERE id = new.id; "
                         "END;\nINSERT INTO s (v) VALUES ('c'); /* trailing; comment */ ;"})
        self.assertEqual(len(res), 3)
        self.assertEqual(dump("s"), [[1, "a;b"], [2, "c;"]])

    def test_params_rules(self):
        fresh("p")
        # several statements in one string with params: UNCERTAIN in D1, refused by the fake
        self.assertIn("batch form", sql_fails({"sql": "SELECT ?; SELECT ?", "params": ["1", "2"]}))
        self.assertEqual(sql_fails({"sql": "SELECT ?, ?", "params": ["1"]}),
                         "Wrong number of parameter bindings for SQL query.: SQLITE_RANGE")
        r = d1({"sql": "SELECT ?", "params": [{"x": 1}]})
        self.assertEqual((r.status, r.json()["errors"][0]["code"], r.json()["result"]), (400, 7400, None))
        r = d1(b"{not json", headers={"Content-Type": "application/json"})
        self.assertEqual((r.status, r.json()["errors"][0]["code"]), (400, 7400))

    def test_big_integers_lose_precision_and_blobs(self):
        res = ok({"sql": "SELECT 9007199254740993 AS big, 9007199254740992 AS exact, x'00ff' AS blob, 1e999 AS inf"})
        self.assertEqual(res[0]["results"], [{"big": 9007199254740992, "exact": 9007199254740992, "blob": [0, 255],
                                              "inf": None}])


class Limits(unittest.TestCase):
    def setUp(self):
        ctl("POST", "fault/clear")

    def test_statement_size_in_utf8_bytes(self):
        head = "SELECT '"
        tail = "'"
        exact = head + "x" * (100_000 - len(head) - len(tail)) + tail
        self.assertEqual(len(exact.encode()), 100_000)
        ok({"sql": exact})
        self.assertEqual(sql_fails({"sql": exact[:-1] + "x'"}), "statement too long: SQLITE_TOOBIG")
        # counted in UTF-8 bytes, not characters: 99,999 characters, one of them two bytes
        multi = head + "é" + "x" * (100_000 - len(head) - len(tail) - 2) + tail
        self.assertEqual((len(multi), len(multi.encode())), (99_999, 100_000))
        ok({"sql": multi})
        self.assertEqual(sql_fails({"sql": multi[:-1] + "é'"}), "statement too long: SQLITE_TOOBIG")
        # the limit is per statement: two statements of 60 KB in one request are fine
        sixty = "SELECT '" + "y" * 60_000 + "'"
        self.assertEqual(len(ok({"sql": sixty + ";" + sixty})), 2)

    def test_one_hundred_bound_parameters(self):
        ok({"sql": "SELECT " + ",".join(["?"] * 100), "params": [str(i) for i in range(100)]})
        msg = sql_fails({"sql": "SELECT " + ",".join(["?"] * 101), "params": [str(i) for i in range(101)]})
        self.assertEqual(msg, "too many SQL variables: SQLITE_ERROR")
        self.assertEqual(sql_fails({"sql": "SELECT ?101", "params": ["1"] * 101}),
                         "variable number must be between ?1 and ?100: SQLITE_ERROR")

    def test_request_time_limit_504(self):
        fresh("slow")
        ctl("POST", "config", {"request_timeout": 1})
        try:
            # the default outcome: the gateway gives up (HTML 504) but the write committed in the database
            fault({"op": "query", "kind": "slow_sql", "delay": 1.3})
            r = d1({"sql": "INSERT INTO slow (v) VALUES ('landed')"})
            self.assertEqual(r.status, 504)
            self.assertTrue(r.header("content-type").startswith("text/html"))
            self.assertIn(b"504 Gateway Time-out", r.body)
            self.assertEqual(dump("slow"), [[1, "landed"]])
            ctl("POST", "config", {"timeout_outcome": "rollback"})
            fault({"op": "query", "kind": "slow_sql", "delay": 1.3})
            r = d1({"sql": "INSERT INTO slow (v) VALUES ('lost')"})
            self.assertEqual(r.status, 504)
            self.assertEqual(dump("slow"), [[1, "landed"]])
            # within the limit nothing happens
            fault({"op": "query", "kind": "slow_sql", "delay": 0.2})
            ok({"sql": "INSERT INTO slow (v) VALUES ('in time')"})
        finally:
            ctl("POST", "config", {"request_timeout": 30, "timeout_outcome": "commit"})
        self.assertEqual(ctl("GET", "stats")["timeouts_504"] >= 2, True)

    def test_rate_limit_blocks_every_call_for_the_block(self):
        ctl("POST", "rate/reset", server="rate")
        cfg = ctl("GET", "config", server="rate")
        self.assertEqual((cfg["rate_limit"], cfg["rate_window"], cfg["rate_block"]), (5, 20.0, 2.0))
        for i in range(5):
            r = d1({"sql": "SELECT 1"}, server="rate")
            self.assertEqual(r.status, 200)
            self.assertRegex(r.header("ratelimit"), r'^"default";r=%d;t=(20|1\d)$' % (4 - i))
            self.assertEqual(r.header("ratelimit-policy"), '"burst";q=5;w=20')
        r = d1({"sql": "SELECT 1"}, server="rate")
        t_block = time.monotonic()
        self.assertEqual(r.status, 429)
        self.assertEqual(r.json(), {"success": False, "errors": [{"code": 971, "message":
                                    "Please wait and consider throttling your request speed"}],
                                    "messages": [], "result": None})
        self.assertEqual(r.header("retry-after"), "2")
        # every call is refused while the block lasts, whatever the endpoint
        for verb in ("raw", None):
            r = http("rate", "POST" if verb else "GET", api_path(CORPUS, verb), {"sql": "SELECT 1"} if verb else None,
                     {"Authorization": "Bearer " + TOKEN})
            self.assertEqual((r.status, r.json()["errors"][0]["code"]), (429, 971))
        while True:
            r = d1({"sql": "SELECT 1"}, server="rate")
            if r.status == 200:
                break
            self.assertEqual(r.status, 429)
            self.assertLess(time.monotonic() - t_block, 10, "the block never ended")
            time.sleep(0.1)
        self.assertGreaterEqual(time.monotonic() - t_block, 1.9)
        st = ctl("GET", "stats", server="rate")["rate"]
        self.assertEqual(st["blocks"], 1)
        self.assertGreaterEqual(st["throttled"], 3)
        self.assertEqual(st["peak_in_window"], 5)

    def test_database_size_limit(self):
        start("small", "--max-size", "65536")
        try:
            ok({"sql": "CREATE TABLE big (v TEXT)"}, server="small")
            msg = sql_fails({"sql": "INSERT INTO big VALUES (zeroblob(1000)); INSERT INTO big SELECT zeroblob(100000)"},
                            server="small")
            self.assertEqual(msg, "database or disk is full: SQLITE_FULL")
            self.assertEqual(ok({"sql": "SELECT count(*) AS n FROM big"}, server="small")[0]["results"], [{"n": 0}])
        finally:
            self.assertEqual(stop("small"), 0)

    def test_schema_strict_params(self):
        ctl("POST", "config", {"params": "strings"})
        try:
            r = d1({"sql": "SELECT ?", "params": [1]})
            self.assertEqual((r.status, r.json()["errors"][0]["code"]), (400, 7400))
            ok({"sql": "SELECT ?", "params": ["1"]})
        finally:
            ctl("POST", "config", {"params": "json"})
        ok({"sql": "SELECT ?", "params": [1]})

    def test_auth_failures_do_not_count(self):
        ctl("POST", "rate/reset", server="rate")
        for _ in range(8):
            self.assertEqual(d1({"sql": "SELECT 1"}, server="rate", token="wrong-token-0123456789abcdefgh").status, 403)
        self.assertEqual(d1({"sql": "SELECT 1"}, server="rate").status, 200)
        ctl("POST", "rate/reset", server="rate")


class Dialect(unittest.TestCase):
    def setUp(self):
        ctl("POST", "fault/clear")

    def test_transaction_statements_refused(self):
        fresh("tx")
        for stmt in ("BEGIN", "BEGIN TRANSACTION", "BEGIN IMMEDIATE", "COMMIT", "END", "ROLLBACK",
                     "SAVEPOINT sp", "RELEASE sp", "ROLLBACK TO sp"):
            msg = sql_fails({"sql": "INSERT INTO tx (v) VALUES ('x'); " + stmt})
            self.assertEqual(msg, "not authorized: SQLITE_AUTH", stmt)
        self.assertEqual(dump("tx"), [])
        self.assertEqual(sql_fails({"sql": "ATTACH DATABASE ':memory:' AS other"}), "not authorized: SQLITE_AUTH")

    def test_only_documented_pragmas(self):
        fresh("pr")
        for p in ("PRAGMA table_info(pr)", "PRAGMA table_list", "PRAGMA foreign_keys", "PRAGMA foreign_key_check",
                  "PRAGMA defer_foreign_keys = on", "PRAGMA quick_check", "PRAGMA index_list(pr)",
                  "PRAGMA optimize", "PRAGMA case_sensitive_like = 1", "PRAGMA recursive_triggers = 1"):
            ok({"sql": p})
        for p in ("PRAGMA journal_mode", "PRAGMA journal_mode = DELETE", "PRAGMA user_version = 3",
                  "PRAGMA synchronous = OFF", "PRAGMA writable_schema = 1", "PRAGMA page_count",
                  "PRAGMA page_size", "PRAGMA cache_size = 10"):
            self.assertEqual(sql_fails({"sql": p}), "not authorized: SQLITE_AUTH", p)

    def test_pragmas_last_one_request(self):
        self.assertEqual(ok({"sql": "PRAGMA case_sensitive_like = 1; SELECT 'a' LIKE 'A' AS m"})[1]["results"],
                         [{"m": 0}])
        self.assertEqual(ok({"sql": "SELECT 'a' LIKE 'A' AS m"})[0]["results"], [{"m": 1}])

    def test_foreign_keys_on_and_deferred_per_request(self):
        ctl("POST", "sql", {"database": "rtopacks-db", "sql":
            "DROP TABLE IF EXISTS child; DROP TABLE IF EXISTS parent; CREATE TABLE parent (id TEXT PRIMARY KEY); "
            "CREATE TABLE child (id TEXT PRIMARY KEY, parent_id TEXT NOT NULL REFERENCES parent(id))"})
        self.assertEqual(ok({"sql": "PRAGMA foreign_keys"})[0]["results"], [{"foreign_keys": 1}])
        fk = "FOREIGN KEY constraint failed: SQLITE_CONSTRAINT"
        self.assertEqual(sql_fails({"sql": "INSERT INTO child VALUES ('c1', 'p1')"}), fk)
        # foreign_keys cannot be turned off (the request is a transaction)
        self.assertEqual(sql_fails({"sql": "PRAGMA foreign_keys = off; INSERT INTO child VALUES ('c1', 'p1')"}), fk)
        # defer_foreign_keys lets one request load the child first; a violation still fails at its end
        ok({"sql": "PRAGMA defer_foreign_keys = on; INSERT INTO child VALUES ('c1', 'p1'); "
                   "INSERT INTO parent VALUES ('p1')"})
        self.assertEqual(sql_fails({"sql": "PRAGMA defer_foreign_keys = on; INSERT INTO child VALUES ('c2', 'p2')"}),
                         fk)
        # and it lasts one request only
        self.assertEqual(sql_fails({"sql": "INSERT INTO child VALUES ('c3', 'p3')"}), fk)
        self.assertEqual(dump("child"), [["c1", "p1"]])

    def test_cf_kv_reserved(self):
        names = [r["name"] for r in ok({"sql": "SELECT name FROM sqlite_schema WHERE type = 'table'"})[0]["results"]]
        self.assertIn("_cf_KV", names)
        self.assertIn("SQLITE_AUTH", sql_fails({"sql": "SELECT * FROM _cf_KV"}))
        self.assertIn("SQLITE_AUTH", sql_fails({"sql": "INSERT INTO _cf_KV VALUES ('k', 'v')"}))
        self.assertIn("SQLITE_AUTH", sql_fails({"sql": "CREATE TABLE _cf_mine (x)"}))
        self.assertNotIn("_cf_KV", ctl("GET", "dump?database=rtopacks-db")["tables"])


class Auth(unittest.TestCase):
    def setUp(self):
        ctl("POST", "fault/clear")

    def generic(self, r, status, code):
        self.assertEqual(r.status, status, r.body)
        j = r.json()
        self.assertEqual(list(j), ["success", "errors", "messages", "result"])
        self.assertEqual((j["success"], j["messages"], j["result"]), (False, [], None))
        self.assertEqual(j["errors"][0]["code"], code)
        return j["errors"][0]

    def test_codes(self):
        q = {"sql": "SELECT 1"}
        e = self.generic(d1(q, token=None), 400, 9106)
        self.assertEqual(e["message"], "Missing X-Auth-Key, X-Auth-Email or Authorization headers")
        for bad in ("Bearer " + TOKEN + "\n".strip() + " x", "bearer " + TOKEN, "Bearer \"%s\"" % TOKEN, "Token x"):
            e = self.generic(d1(q, token=None, headers={"Authorization": bad}), 400, 6003)
            self.assertEqual(e["error_chain"], [{"code": 6111, "message": "Invalid format for Authorization header"}])
        e = self.generic(d1(q, token="A" * 40), 403, 10000)
        self.assertEqual(e["message"], "Authentication error")
        self.generic(http("main", "POST", api_path(account="f" * 32), q, {"Authorization": "Bearer " + TOKEN}),
                     403, 7403)
        e = self.generic(d1(q, db="rtopacks-db"), 400, 7400)
        self.assertEqual(e["message"], "The request is malformed: failed to decode id")
        self.generic(d1(q, db="bbbbbbbb-1111-4111-8111-000000000001"), 404, 7404)
        self.generic(d1(q, verb="execute"), 404, 7000)
        self.generic(http("main", "GET", api_path(), None, {"Authorization": "Bearer " + TOKEN}), 405, 7001)
        # a valid token reaches the database; an undashed UUID works too
        ok(q, db=CORPUS.replace("-", ""))


class Databases(unittest.TestCase):
    def setUp(self):
        ctl("POST", "fault/clear")

    def test_each_database_its_own_file(self):
        ctl("POST", "sql", {"database": "ops-db", "sql": "DROP TABLE IF EXISTS tga_sync_steps"})
        ok({"sql": "CREATE TABLE tga_sync_steps (run_id TEXT, sync_type TEXT, step TEXT, status TEXT, "
                   "UNIQUE (run_id, sync_type, step))"}, db=OPS)
        ok({"sql": "INSERT INTO tga_sync_steps VALUES ('r1', 'tga_sync', 'init', 'running') "
                   "ON CONFLICT (run_id, sync_type, step) DO UPDATE SET status = excluded.status"}, db=OPS)
        self.assertEqual(sql_fails({"sql": "SELECT * FROM tga_sync_steps"}, db=CORPUS),
                         "no such table: tga_sync_steps: SQLITE_ERROR")
        data = os.path.join(SERVERS["main"]["dir"], "data")
        self.assertTrue(os.path.exists(os.path.join(data, "ops-db.sqlite3")))
        self.assertTrue(os.path.exists(os.path.join(data, "rtopacks-db.sqlite3")))
        r = http("main", "GET", api_path(None, None), None, {"Authorization": "Bearer " + TOKEN})
        j = r.json()
        self.assertEqual(sorted((d["name"], d["uuid"]) for d in j["result"]),
                         [("ops-db", OPS), ("rtopacks-db", CORPUS)])
        self.assertEqual(j["result_info"]["total_count"], 2)
        r = http("main", "GET", api_path(OPS, None), None, {"Authorization": "Bearer " + TOKEN})
        self.assertEqual(r.json()["result"]["name"], "ops-db")
        self.assertGreaterEqual(r.json()["result"]["num_tables"], 1)

    def test_data_survive_a_restart(self):
        data = os.path.join(TMP, "persist-data")
        start("persist", data_dir=data)
        ok({"sql": "CREATE TABLE keep (k TEXT PRIMARY KEY); INSERT INTO keep VALUES ('x')"}, server="persist")
        self.assertEqual(stop("persist"), 0)
        start("persist", data_dir=data)
        self.assertEqual(ok({"sql": "SELECT k FROM keep"}, server="persist")[0]["results"], [{"k": "x"}])
        self.assertEqual(stop("persist"), 0)


class Faults(unittest.TestCase):
    def setUp(self):
        ctl("POST", "fault/clear")
        ctl("POST", "rate/reset")   # a block a test started (test_http429...) must not refuse the next test's calls
        fresh("f")

    def tearDown(self):
        ctl("POST", "fault/clear")

    def test_http500_is_a_transient_7500_and_writes_nothing(self):
        fault({"op": "query", "kind": "http500"})
        r = d1({"sql": "INSERT INTO f (v) VALUES ('no')"})
        self.assertEqual(r.status, 500)
        e = r.json()["errors"][0]
        self.assertEqual(e["code"], 7500)
        self.assertRegex(e["message"], r"^internal error; reference = e_[0-9a-f]+$")
        self.assertEqual(dump("f"), [])
        ok({"sql": "INSERT INTO f (v) VALUES ('yes')"})          # count 1: the next one goes through

    def test_edge_html_errors(self):
        fault([{"op": "*", "kind": "http5xx", "status": 522}, {"op": "*", "kind": "http503"}])
        r = d1({"sql": "SELECT 1"})
        self.assertEqual(r.status, 522)
        self.assertTrue(r.header("content-type").startswith("text/html"))
        r = d1({"sql": "SELECT 1"})
        self.assertEqual(r.status, 503)
        self.assertIn(b"cloudflare", r.body)

    def test_504_after_commit(self):
        fault({"op": "query", "kind": "timeout_504"})
        r = d1({"sql": "INSERT INTO f (v) VALUES ('committed')"})
        self.assertEqual(r.status, 504)
        self.assertIn(b"504 Gateway Time-out", r.body)
        self.assertEqual(dump("f"), [[1, "committed"]])
        fault({"op": "query", "kind": "timeout_504", "commit": False})
        self.assertEqual(d1({"sql": "INSERT INTO f (v) VALUES ('not')"}).status, 504)
        self.assertEqual(dump("f"), [[1, "committed"]])

    def test_sql_error_7500_writes_nothing(self):
        fault({"op": "query", "kind": "sql_error", "message": "internal error; reference = e_x: SQLITE_ERROR"})
        self.assertEqual(sql_fails({"sql": "INSERT INTO f (v) VALUES ('no')"}),
                         "internal error; reference = e_x: SQLITE_ERROR")
        fault({"op": "query", "kind": "sql_error"})
        self.assertEqual(sql_fails({"sql": "SELECT 1"}), "no such table: fault_injected: SQLITE_ERROR")
        self.assertEqual(dump("f"), [])

    def test_bad_token_variants(self):
        for variant, status, code in (("invalid", 403, 10000), ("missing", 400, 9106), ("format", 400, 6003),
                                      ("account", 403, 7403)):
            fault({"op": "query", "kind": "bad_token", "variant": variant})
            r = d1({"sql": "INSERT INTO f (v) VALUES ('no')"})
            self.assertEqual((r.status, r.json()["errors"][0]["code"]), (status, code), variant)
        self.assertEqual(dump("f"), [])

    def test_http429_fault_starts_the_block(self):
        fault({"op": "query", "kind": "http429", "block": 1})
        t0 = time.monotonic()
        r = d1({"sql": "SELECT 1"})
        self.assertEqual((r.status, r.json()["errors"][0]["code"], r.header("retry-after")), (429, 971, "1"))
        r = d1({"sql": "SELECT 1"}, verb="raw")                   # no fault left; the block refuses it
        self.assertEqual(r.status, 429)
        while d1({"sql": "SELECT 1"}).status != 200:
            self.assertLess(time.monotonic() - t0, 10)
            time.sleep(0.1)
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        fault({"op": "query", "kind": "http429", "block": 0.01, "retry_after": None})
        r = d1({"sql": "SELECT 1"})
        self.assertEqual((r.status, r.header("retry-after")), (429, None))

    def test_overloaded_429_is_not_a_block(self):
        fault({"op": "query", "kind": "overloaded"})
        r = d1({"sql": "SELECT 1"})
        self.assertEqual(r.status, 429)
        e = r.json()["errors"][0]
        self.assertNotEqual(e["code"], 971)
        self.assertIn("overloaded", e["message"])
        ok({"sql": "SELECT 1"})

    def test_lost_answers_after_commit(self):
        for i, kind in enumerate(("reset", "truncate", "malformed"), 1):
            fault({"op": "query", "kind": kind})
            with self.assertRaises((ConnectionError, http_client.HTTPException, ValueError, urllib.error.URLError),
                                   msg=kind):
                d1({"sql": "INSERT INTO f (v) VALUES ('%s')" % kind}).json()
            self.assertEqual(dump("f")[-1], [i, kind])       # committed: a replay must be harmless
        fault({"op": "query", "kind": "reset", "commit": False})
        with self.assertRaises((ConnectionError, urllib.error.URLError)):
            d1({"sql": "INSERT INTO f (v) VALUES ('gone')"})
        self.assertEqual(len(dump("f")), 3)

    def test_matching_skip_count_and_listing(self):
        fault({"op": "query", "kind": "http500", "database": "ops-db", "skip": 1, "count": 2})
        ok({"sql": "SELECT 1"}, db=CORPUS)                     # another database
        ok({"sql": "SELECT 1"}, db=OPS)                        # skipped
        self.assertEqual(d1({"sql": "SELECT 1"}, db=OPS, verb="raw").status, 200)   # another endpoint
        self.assertEqual(d1({"sql": "SELECT 1"}, db=OPS).status, 500)
        listing = ctl("GET", "fault")
        self.assertEqual([(f["kind"], f["remaining"], f["fired"]) for f in listing["armed"]], [("http500", 1, 1)])
        self.assertEqual(d1({"sql": "SELECT 1"}, db=OPS).status, 500)
        listing = ctl("GET", "fault")
        self.assertEqual(listing["armed"], [])
        self.assertEqual([(f["kind"], f["fired"]) for f in listing["used"]], [("http500", 2)])
        ok({"sql": "SELECT 1"}, db=OPS)
        r = http("main", "POST", "/_fake/fault", {"kind": "nonsense"})
        self.assertEqual(r.status, 400)

    def test_hang_blocks_no_other_request(self):
        fault({"op": "query", "kind": "hang", "hold": 2})
        failed = []

        def hung():
            try:
                d1({"sql": "SELECT 1"}, timeout=5)
            except (socket.timeout, TimeoutError, urllib.error.URLError, ConnectionError, http_client.HTTPException):
                failed.append(True)
        t = threading.Thread(target=hung)
        t0 = time.monotonic()
        t.start()
        while ctl("GET", "fault")["fired"].get("hang") != 1:        # the hung request has arrived
            self.assertLess(time.monotonic() - t0, 10)
            time.sleep(0.02)
        ok({"sql": "INSERT INTO f (v) VALUES ('meanwhile')"})       # another connection is served at once
        self.assertLess(time.monotonic() - t0, 1.5)
        t.join(10)
        self.assertEqual(failed, [True])                            # the hung one got no answer
        self.assertEqual(dump("f"), [[1, "meanwhile"]])

    def test_outage_reset(self):
        ctl("POST", "outage", {"mode": "reset", "count": 2})
        for _ in range(2):
            with self.assertRaises((ConnectionError, urllib.error.URLError, http_client.HTTPException)):
                d1({"sql": "SELECT 1"})
        self.assertIn("requests", ctl("GET", "stats"))          # the control plane still answers
        ok({"sql": "SELECT 1"})
        ctl("POST", "outage", {"mode": "reset"})                 # until switched off
        for _ in range(3):
            with self.assertRaises((ConnectionError, urllib.error.URLError, http_client.HTTPException)):
                d1({"sql": "SELECT 1"})
        ctl("POST", "outage", {"mode": "off"})
        ok({"sql": "SELECT 1"})

    def test_outage_refuses_connections_then_recovers(self):
        port = SERVERS["main"]["port"]
        ctl("POST", "outage", {"mode": "refuse", "seconds": 1.5})
        t0 = time.monotonic()
        refused = False
        try:
            while time.monotonic() - t0 < 1.2:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                except ConnectionRefusedError:
                    refused = True
                    break
                except ConnectionResetError:
                    pass                  # a connection caught in the backlog as the port closed
                time.sleep(0.02)
            self.assertTrue(refused, "the port never refused a connection")
        finally:
            while True:                   # whatever happened, wait until the fake is back for the next tests
                try:
                    ok({"sql": "SELECT 1"})
                    break
                except (urllib.error.URLError, ConnectionError):
                    self.assertLess(time.monotonic() - t0, 10, "the fake never came back")
                    time.sleep(0.1)
        self.assertGreaterEqual(time.monotonic() - t0, 1.3)
        self.assertEqual(SERVERS["main"]["port"], port)


class Control(unittest.TestCase):
    def test_stats_and_dump(self):
        fresh("st", "code TEXT PRIMARY KEY, n INTEGER")
        ctl("POST", "stats/reset")
        ok({"sql": "INSERT INTO st VALUES ('b', 2), ('a', 1); SELECT * FROM st"})
        ok({"sql": "SELECT 1"}, verb="raw", db=OPS)
        d1({"sql": "SELECT * FROM missing"})
        fault({"op": "raw", "kind": "http500"})
        d1({"sql": "SELECT 1"}, verb="raw")
        s = ctl("GET", "stats")
        self.assertEqual(s["requests"], 4)
        self.assertEqual(s["by_endpoint"], {"query": 2, "raw": 2})
        self.assertEqual(s["by_database"], {"rtopacks-db": 3, "ops-db": 1})
        self.assertEqual(s["by_status"], {"200": 2, "400": 1, "500": 1})
        self.assertEqual(s["by_error_code"], {"7500": 2})
        self.assertEqual((s["statements"], s["rows_written"], s["committed"], s["rolled_back"]), (4, 2, 2, 1))
        self.assertEqual(s["faults_fired"], {"http500": 1})
        self.assertIn("tokens", s["rate"])
        self.assertNotIn(TOKEN, json.dumps(s))
        d = ctl("GET", "dump?database=rtopacks-db&table=st")
        self.assertEqual((d["columns"], d["rows"]), (["code", "n"], [["a", 1], ["b", 2]]))     # by primary key
        self.assertEqual(ctl("GET", "dump?database=%s" % CORPUS)["tables"]["st"], 2)
        self.assertEqual(http("main", "GET", "/_fake/dump?database=rtopacks-db&table=_cf_KV").status, 400)
        self.assertEqual(http("main", "POST", "/_fake/config", {"nonsense": 1}).status, 400)
        with open(os.path.join(SERVERS["main"]["dir"], "stderr.log")) as fh:
            self.assertNotIn(TOKEN, fh.read())


if __name__ == "__main__":
    unittest.main(verbosity=2)
