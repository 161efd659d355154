#!/usr/bin/python3
"""Fake Cloudflare D1 HTTP API (api.cloudflare.com/client/v4 … /d1/database/{uuid}/query and /raw), SQLite behind it.

Built from ../../../shared/reference/cloudflare-d1.md (not from our client): the Cloudflare envelope, Bearer auth and
its error codes, several statements per request as ONE transaction, the batch form, positional params, D1's
dialect (no BEGIN/COMMIT/SAVEPOINT, the documented PRAGMAs only, foreign keys on, `_cf_KV` reserved), the limits
(100,000-byte statements, 100 bound parameters, 30 s per request ending in an HTML 504, 1,200 requests per 5 minutes
per token with a 429 that blocks every call for 5 minutes) and the faults users meet. Choices the reference leaves
UNCERTAIN are marked "(fake)" here and in README.md (section "fake_d1.py"), which documents options, faults and the
control plane. Conventions (CLI, /_fake/ control plane) are those of README.md in this folder.

Usage:
  /usr/bin/python3 tests/fakes/fake_d1.py --port 0 --port-file FILE [--data-dir DIR]
      [--account-id HEX32] [--database NAME=UUID ...] [--token-file FILE]
      [--rate-limit 1200] [--rate-window 300] [--rate-block 300] [--request-timeout 30]
      [--timeout-outcome commit|rollback] [--params json|strings] [--quiet]
The rate and timeout defaults can also come from FAKE_D1_RATE_LIMIT, FAKE_D1_RATE_WINDOW, FAKE_D1_RATE_BLOCK and
FAKE_D1_REQUEST_TIMEOUT (so a test can shrink the 5-minute windows to seconds without touching a command line).

Each database is one SQLite file <data-dir>/<name>.sqlite3, kept across restarts of the fake.
Standard library only: run it with /usr/bin/python3.
"""

import argparse
import collections
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import socket
import sqlite3
import struct
import sys
import tempfile
import threading
import time
import urllib.parse

import fakekit
import http_wire

DEFAULT_ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"          # the example account id of Cloudflare's API docs
DEFAULT_TOKEN = "fakeD1token-0123456789abcdefghijABCDEFGHIJ"  # 40 characters, the shape of a real API token
DEFAULT_DATABASES = (("rtopacks-db", "d1c0a000-0000-4000-8000-00000000c0de"),   # the corpus
                     ("ops-db", "d1c0a000-0000-4000-8000-0000000000b5"))        # operations / observatory

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,}$")
API_RE = re.compile(r"^/client/v4/accounts/([^/]+)/d1/database(?:/([^/]+)(?:/([a-z_]+))?)?/?$")

# PRAGMAs D1 allows (reference section 7, plus optimize since 2025-02); every other one is "not authorized".
ALLOWED_PRAGMAS = frozenset((
    "table_list", "table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "quick_check",
    "foreign_key_check", "foreign_key_list", "case_sensitive_like", "ignore_check_constraints",
    "legacy_alter_table", "recursive_triggers", "reverse_unordered_selects", "foreign_keys", "defer_foreign_keys",
    "optimize"))
# PRAGMAs only last for the request in D1 (one transaction): reset after each one. foreign_keys cannot change inside
# a transaction and defer_foreign_keys ends with it, so SQLite itself takes care of those two.
PRAGMA_RESET = ("PRAGMA case_sensitive_like = 0", "PRAGMA ignore_check_constraints = 0",
                "PRAGMA legacy_alter_table = 0", "PRAGMA recursive_triggers = 0",
                "PRAGMA reverse_unordered_selects = 0")

PRIMARY_CODES = {0: "SQLITE_OK", 1: "SQLITE_ERROR", 2: "SQLITE_INTERNAL", 3: "SQLITE_PERM", 4: "SQLITE_ABORT",
                 5: "SQLITE_BUSY", 6: "SQLITE_LOCKED", 7: "SQLITE_NOMEM", 8: "SQLITE_READONLY",
                 9: "SQLITE_INTERRUPT", 10: "SQLITE_IOERR", 11: "SQLITE_CORRUPT", 12: "SQLITE_NOTFOUND",
                 13: "SQLITE_FULL", 14: "SQLITE_CANTOPEN", 15: "SQLITE_PROTOCOL", 16: "SQLITE_EMPTY",
                 17: "SQLITE_SCHEMA", 18: "SQLITE_TOOBIG", 19: "SQLITE_CONSTRAINT", 20: "SQLITE_MISMATCH",
                 21: "SQLITE_MISUSE", 22: "SQLITE_NOLFS", 23: "SQLITE_AUTH", 24: "SQLITE_FORMAT",
                 25: "SQLITE_RANGE", 26: "SQLITE_NOTADB"}

REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           413: "Payload Too Large", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout", 520: "Unknown Error", 521: "Web Server Is Down",
           522: "Connection Timed Out", 523: "Origin Is Unreachable", 524: "A Timeout Occurred"}
EDGE_TITLES = {500: "500 Internal Server Error", 502: "502 Bad Gateway", 503: "503 Service Temporarily Unavailable",
               504: "504 Gateway Time-out", 520: "520: Web server is returning an unknown error",
               521: "521: Web server is down", 522: "522: Connection timed out",
               523: "523: Origin is unreachable", 524: "524: A timeout occurred"}

JSON_CT = ("Content-Type", "application/json")
INTERNAL_MARK = " /* fake_d1 %s */" % secrets.token_hex(8)
HTML_CT = ("Content-Type", "text/html")

# Fault kinds. "gateway" ones answer without running anything; "after" ones run the request (and commit, unless
# "commit": false) and then spoil or replace the answer.
GATEWAY_KINDS = {"http500", "http503", "http5xx", "http429", "overloaded", "bad_token", "sql_error", "html", "hang"}
AFTER_KINDS = {"timeout_504", "reset", "truncate", "malformed", "drip", "slow", "slow_sql"}
FAULT_KINDS = GATEWAY_KINDS | AFTER_KINDS
ENDPOINTS = ("query", "raw", "database_list", "database_get")

MAX_BODY = 100 * 1024 * 1024   # (fake) Cloudflare's general request body cap; D1 documents none


class ApiError(Exception):
    """An answer in the Cloudflare error envelope: {"success": false, "errors": [...], "messages": [], "result": …}"""

    def __init__(self, status, code, message, result=None, chain=None, headers=()):
        super().__init__(message)
        self.status, self.code, self.message, self.result = status, code, message, result
        self.chain, self.headers = chain, list(headers)

    def body(self):
        err = {"code": self.code, "message": self.message}
        if self.chain:
            err["error_chain"] = self.chain
        if self.result == []:
            # the order of the live SQL-error body (reference section 3)
            return {"messages": [], "result": [], "success": False, "errors": [err]}
        return {"success": False, "errors": [err], "messages": [], "result": self.result}


def sql_error(message):
    return ApiError(400, 7500, message, result=[])


def sqlite_message(e):
    """'<sqlite text>: SQLITE_<PRIMARY CODE>', the form of D1's 7500 messages."""
    code = getattr(e, "sqlite_errorcode", None)
    name = PRIMARY_CODES.get(code & 0xff, "SQLITE_ERROR") if code is not None else "SQLITE_ERROR"
    return "%s: %s" % (e, name)


def split_statements(sql):
    """Statements of a multi-statement string, split on ';' where SQLite itself sees the end of a statement (so a ';'
    in a string literal, a comment or a CREATE TRIGGER body does not split). Empty statements are dropped."""
    out, start, i = [], 0, sql.find(";")
    while i >= 0:
        if sqlite3.complete_statement(sql[start:i + 1]):
            out.append(sql[start:i + 1])
            start = i + 1
        i = sql.find(";", i + 1)
    out.append(sql[start:])
    return [s.strip() for s in out if not _blank(s)]


def _blank(stmt):
    s = re.sub(r"/\*.*?\*/", " ", stmt, flags=re.S)
    s = re.sub(r"--[^\n]*", " ", s)
    return not s.replace(";", " ").strip()


def json_value(v):
    """A SQLite value as D1 puts it in JSON: integers beyond 2^53 lose precision (JavaScript numbers); BLOBs as an
    array of byte values (fake: the REST encoding is undocumented)."""
    if isinstance(v, int) and abs(v) > 2 ** 53:
        return int(float(v))
    if isinstance(v, bytes):
        return list(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None                     # JSON.stringify writes Infinity as null
    return v


def edge_page(status):
    title = EDGE_TITLES.get(status, "%d %s" % (status, REASONS.get(status, "Error")))
    return ("<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n"
            "<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n" % (title, title)).encode()


# ================================================================================================ databases

class Database:
    """One D1 database: a SQLite file, one connection, one request at a time (D1 serialises a database's queries)."""

    def __init__(self, name, uuid, path, cfg):
        self.name, self.uuid, self.path = name, uuid.lower(), path
        self.created_at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        self.lock = threading.RLock()   # every use of the connection and of `internal` holds it
        self.internal = True       # the fake's own statements (BEGIN, COMMIT, page_count) pass the authoriser
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._internal("PRAGMA journal_mode = WAL")
        self._internal("PRAGMA foreign_keys = ON")         # D1: enforced, cannot be turned off
        self._internal("CREATE TABLE IF NOT EXISTS _cf_KV (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID")
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100)
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 2_000_000)
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_COLUMN, 100)
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_FUNCTION_ARG, 32)
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 50)
        page_size = self._internal("PRAGMA page_size")[0][0]
        self._internal("PRAGMA max_page_count = %d" % max(1, cfg.max_size // page_size))
        self.conn.set_authorizer(self._authorise)
        self.internal = False

    def _authorise(self, action, arg1, arg2, dbname, source):
        if self.internal:
            return sqlite3.SQLITE_OK
        if action in (sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT, sqlite3.SQLITE_ATTACH,
                      sqlite3.SQLITE_DETACH):
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_PRAGMA:
            return sqlite3.SQLITE_OK if (arg1 or "").lower() in ALLOWED_PRAGMAS else sqlite3.SQLITE_DENY
        if action in (sqlite3.SQLITE_READ, sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE,
                      sqlite3.SQLITE_CREATE_TABLE, sqlite3.SQLITE_DROP_TABLE, sqlite3.SQLITE_ALTER_TABLE,
                      sqlite3.SQLITE_CREATE_INDEX, sqlite3.SQLITE_CREATE_TRIGGER):
            table = arg2 if action == sqlite3.SQLITE_ALTER_TABLE else arg1
            if table and table.lower().startswith("_cf_"):
                return sqlite3.SQLITE_DENY                   # _cf_KV and every _cf_ name are reserved
        return sqlite3.SQLITE_OK

    def _internal(self, sql):
        self.internal = True
        try:
            # The marker keeps the fake's statements apart from a client's in sqlite3's statement cache, which
            # would otherwise hand a client's "BEGIN" the fake's already-authorised one.
            return self.conn.execute(sql.rstrip().rstrip(";") + INTERNAL_MARK).fetchall()
        finally:
            self.internal = False

    def _x(self, sql):
        """A cursor on one statement of the fake's own (internal mode already set), kept out of the clients' cache."""
        return self.conn.execute(sql.rstrip().rstrip(";") + INTERNAL_MARK)

    def size(self):
        with self.lock:
            return self._internal("PRAGMA page_count")[0][0] * self._internal("PRAGMA page_size")[0][0]

    def run(self, statements, cfg, raw, deadline, pre_delay=0.0, commit=True):
        """Run [(sql, params)] as one transaction. Returns (results, stats) or raises ApiError (rolled back).
        commit=False rolls back even on success (a fault whose write must not land)."""
        with self.lock:
            t_start = time.monotonic()
            self._internal("BEGIN")
            timed_out = []

            def progress():
                if time.monotonic() > deadline:
                    timed_out.append(True)
                    return 1
                return 0
            if cfg.timeout_outcome == "rollback":
                self.conn.set_progress_handler(progress, 1000)
            results, written, read = [], 0, 0
            try:
                if pre_delay:
                    time.sleep(pre_delay)            # the slow_sql fault: a query that takes this long in D1
                    if cfg.timeout_outcome == "rollback" and time.monotonic() > deadline:
                        timed_out.append(True)
                        raise sqlite3.OperationalError("interrupted")
                for sql, params in statements:
                    results.append(self._one(sql, params, cfg, raw))
                    written += results[-1]["meta"]["rows_written"]
                    read += results[-1]["meta"]["rows_read"]
                if commit:
                    self._internal("COMMIT")
                else:
                    self._internal("ROLLBACK")
            except BaseException as e:
                try:
                    self._internal("ROLLBACK")
                except sqlite3.Error:
                    pass
                if timed_out:
                    raise TimeoutError("request ran past the time limit")
                if isinstance(e, ApiError):
                    raise
                if isinstance(e, sqlite3.Error):
                    raise sql_error(sqlite_message(e))
                raise
            finally:
                self.conn.set_progress_handler(None, 0)
                for p in PRAGMA_RESET:
                    self._internal(p)
            size = self.size()
            for r in results:
                r["meta"]["size_after"] = size
            return results, {"rows_written": written, "rows_read": read,
                             "elapsed": time.monotonic() - t_start, "committed": commit}

    def _one(self, sql, params, cfg, raw):
        if len(sql.encode("utf-8")) > cfg.max_statement:
            raise sql_error("statement too long: SQLITE_TOOBIG")
        before = self.conn.total_changes
        t0 = time.perf_counter()
        try:
            cur = self.conn.execute(sql, params)
        except sqlite3.ProgrammingError as e:
            if "bindings" in str(e):
                # (fake) the text D1's own binding check gives; SQLite would say "column index out of range"
                raise sql_error("Wrong number of parameter bindings for SQL query.: SQLITE_RANGE")
            raise sql_error("%s: SQLITE_MISUSE" % e)
        rows = cur.fetchall()
        cols = [d[0] for d in cur.description] if cur.description else []
        ms = (time.perf_counter() - t0) * 1000
        changes = self.conn.total_changes - before
        last = self._internal("SELECT last_insert_rowid()")[0][0]
        if raw:
            results = {"columns": cols, "rows": [[json_value(v) for v in r] for r in rows]}
        else:
            results = [{c: json_value(v) for c, v in zip(cols, r)} for r in rows]
        # rows_read/rows_written are D1's billing counters; the fake approximates them: rows returned plus rows
        # changed (an upsert reads the row it changes), and rows changed.
        meta = {"served_by": "v3-prod", "served_by_region": "OC", "served_by_colo": "SYD",
                "served_by_primary": True, "timings": {"sql_duration_ms": round(ms, 3)}, "duration": round(ms, 3),
                "changes": changes, "last_row_id": last, "changed_db": changes > 0 or _is_ddl(sql),
                "size_after": 0, "rows_read": len(rows) + changes, "rows_written": changes, "total_attempts": 1}
        return {"results": results, "success": True, "meta": meta}

    def dump(self, table):
        with self.lock:
            self.internal = True
            try:
                if table is None:
                    names = [r[0] for r in self._x(
                        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                        "AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY name")]
                    return {"database": self.name, "uuid": self.uuid, "tables": {
                        n: self._x('SELECT count(*) FROM "%s"' % n.replace('"', '""')).fetchone()[0]
                        for n in names}}
                q = '"%s"' % table.replace('"', '""')
                info = self._x("PRAGMA table_info(%s)" % q).fetchall()
                if not info or table.lower().startswith("_cf_"):
                    raise ValueError("no table %r in %s" % (table, self.name))
                pk = [r[1] for r in sorted(info, key=lambda r: r[5]) if r[5]]
                order = ", ".join('"%s"' % c.replace('"', '""') for c in pk) if pk else "rowid"
                cur = self._x("SELECT * FROM %s ORDER BY %s" % (q, order))
                cols = [d[0] for d in cur.description]
                return {"database": self.name, "table": table, "columns": cols,
                        "rows": [[json_value(v) for v in r] for r in cur.fetchall()]}
            finally:
                self.internal = False

    def control_sql(self, sql):
        """Run SQL for a test, bypassing D1's rules (setup and inspection only)."""
        with self.lock:
            self.internal = True
            try:
                out = []
                for stmt in split_statements(sql):
                    cur = self._x(stmt)
                    cols = [d[0] for d in cur.description] if cur.description else []
                    out.append({"columns": cols, "rows": [[json_value(v) for v in r] for r in cur.fetchall()]})
                return out
            finally:
                if self.conn.in_transaction:    # a test's BEGIN must not leak into the next D1 request
                    self.conn.rollback()
                self.internal = False


def _is_ddl(sql):
    return bool(re.match(r"\s*(CREATE|DROP|ALTER)\b", sql, re.I))


# ================================================================================================ faults, rate

class Fault:
    def __init__(self, spec, fid):
        self.id, self.spec = fid, dict(spec)
        self.kind = spec.get("kind")
        if self.kind not in FAULT_KINDS:
            raise ValueError("unknown fault kind %r; known: %s" % (self.kind, ", ".join(sorted(FAULT_KINDS))))
        self.op = spec.get("op", "*")
        if self.op != "*" and self.op not in ENDPOINTS:
            raise ValueError("unknown op %r; known: * %s" % (self.op, " ".join(ENDPOINTS)))
        self.database = spec.get("database")
        self.count = int(spec.get("count", 1))
        self.skip = int(spec.get("skip", 0))
        if self.count == 0 or self.count < -1:
            raise ValueError("count must be positive or -1 (until cleared)")
        self.fired = 0
        default_commit = self.kind in AFTER_KINDS
        self.commit = bool(spec.get("commit", default_commit))

    def matches(self, op, db):
        if self.count == 0 or (self.op != "*" and self.op != op):
            return False
        return self.database is None or (db is not None and self.database in (db.name, db.uuid))

    def view(self):
        return dict(self.spec, id=self.id, remaining=self.count, fired=self.fired)


class RateLimiter:
    """1,200 requests per 5 minutes per token; the request over it, and every call for the next 5 minutes, get 429
    (code 971) with Retry-After. Refused calls neither count nor extend the block (the reference does not say they
    extend it; a client that keeps calling only wastes its calls)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.lock = threading.Lock()
        self.recent = collections.defaultdict(collections.deque)   # token hash -> accepted request times
        self.blocked_until = {}
        self.blocks = 0
        self.throttled = 0
        self.peak = 0

    def reset(self):
        with self.lock:
            self.recent.clear()
            self.blocked_until.clear()

    def _trim(self, q, now):
        w = float(self.cfg.rate_window)
        while q and q[0] <= now - w:
            q.popleft()

    def block(self, key, seconds=None):
        now = time.monotonic()
        with self.lock:
            self.blocked_until[key] = now + float(self.cfg.rate_block if seconds is None else seconds)
            self.recent[key].clear()
            self.blocks += 1

    def admit(self, key):
        """(None, headers) if admitted, else (retry_after seconds, headers)."""
        now = time.monotonic()
        limit, window = int(self.cfg.rate_limit), float(self.cfg.rate_window)
        with self.lock:
            until = self.blocked_until.get(key, 0)
            if now < until:
                self.throttled += 1
                return math.ceil(until - now), []
            q = self.recent[key]
            self._trim(q, now)
            if limit and len(q) >= limit:
                self.blocked_until[key] = now + float(self.cfg.rate_block)
                q.clear()
                self.blocks += 1
                self.throttled += 1
                return math.ceil(float(self.cfg.rate_block)), []
            q.append(now)
            self.peak = max(self.peak, len(q))
            left = max(0, limit - len(q))
            reset = max(1, math.ceil(q[0] + window - now))
            return None, [("Ratelimit", '"default";r=%d;t=%d' % (left, reset)),
                          ("Ratelimit-Policy", '"burst";q=%d;w=%d' % (limit, int(window)))]

    def view(self):
        now = time.monotonic()
        with self.lock:
            tokens = {}
            for k, q in self.recent.items():
                self._trim(q, now)
                tokens[k] = {"in_window": len(q),
                             "blocked_for": max(0.0, round(self.blocked_until.get(k, 0) - now, 3))}
            for k, until in self.blocked_until.items():
                tokens.setdefault(k, {"in_window": 0, "blocked_for": max(0.0, round(until - now, 3))})
            return {"limit": int(self.cfg.rate_limit), "window": float(self.cfg.rate_window),
                    "block": float(self.cfg.rate_block), "blocks": self.blocks, "throttled": self.throttled,
                    "peak_in_window": self.peak, "tokens": tokens}


# ================================================================================================ the application

class Response:
    __slots__ = ("status", "headers", "parts", "note")

    def __init__(self, status, headers, parts, note=None):
        self.status, self.headers, self.parts, self.note = status, list(headers), parts, note


def json_response(status, obj, headers=(), note=None):
    return Response(status, [JSON_CT] + list(headers), [json.dumps(obj, separators=(",", ":")).encode()], note)


def error_response(e, note=None):
    return json_response(e.status, e.body(), e.headers, note or "error %d" % e.code)


def token_key(token):
    return hashlib.sha256(token.encode()).hexdigest()[:12]      # never the token itself in stats or logs


class App:
    def __init__(self, cfg, databases, tokens):
        self.cfg = cfg
        self.quiet = cfg.quiet
        self.databases = databases                      # uuid -> Database
        self.tokens = {token_key(t): t for t in tokens}
        self.limiter = RateLimiter(cfg)
        self.faults, self.fault_lock, self.next_fault = [], threading.Lock(), 1
        self.fired = collections.Counter()
        self.stats_lock = threading.Lock()
        self.stop = threading.Event()
        self.outage = None                              # {"mode", "until", "count"} while an outage runs
        self.outage_lock = threading.Lock()
        self.server = None
        self.reset_stats()

    say = staticmethod(fakekit.say)

    def reset_stats(self):
        with self.stats_lock:
            self.stats = {"requests": 0, "by_endpoint": collections.Counter(), "by_database": collections.Counter(),
                          "by_status": collections.Counter(), "by_error_code": collections.Counter(),
                          "statements": 0, "rows_written": 0, "rows_read": 0, "committed": 0, "rolled_back": 0,
                          "timeouts_504": 0, "bytes_in": 0, "bytes_sent": 0, "connections_reset": 0, "control": 0}
            self.fired = collections.Counter()

    def count(self, endpoint, db, status, nbytes_in, error_code=None):
        with self.stats_lock:
            s = self.stats
            s["requests"] += 1
            s["by_endpoint"][endpoint] += 1
            if db is not None:
                s["by_database"][db.name] += 1
            s["by_status"][str(status)] += 1
            s["bytes_in"] += nbytes_in
            if error_code is not None:
                s["by_error_code"][str(error_code)] += 1

    def add(self, **kw):
        with self.stats_lock:
            for k, v in kw.items():
                self.stats[k] += v

    def take_fault(self, op, db):
        with self.fault_lock:
            for f in self.faults:
                if f.matches(op, db):
                    if f.skip > 0:
                        f.skip -= 1
                        continue
                    if f.count > 0:
                        f.count -= 1
                    f.fired += 1
                    self.fired[f.kind] += 1
                    return f
        return None

    # -------------------------------------------------------------------------------------------- API

    def authenticate(self, headers, fault):
        """The token's key, or ApiError with Cloudflare's codes (reference section 5)."""
        if fault is not None and fault.kind == "bad_token":
            v = fault.spec.get("variant", "invalid")
            if v == "missing":
                raise ApiError(400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers")
            if v == "format":
                raise ApiError(400, 6003, "Invalid request headers",
                               chain=[{"code": 6111, "message": "Invalid format for Authorization header"}])
            if v == "account":
                raise ApiError(403, 7403, "The given account is not valid or is not authorized to access this "
                                          "service")
            raise ApiError(403, 10000, "Authentication error")
        auth = headers.get("authorization")
        if auth is None:
            if headers.get("x-auth-key") or headers.get("x-auth-email"):
                raise ApiError(403, 10000, "Authentication error")  # the legacy pair: the fake knows no keys
            raise ApiError(400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers")
        scheme, _, token = auth.partition(" ")
        if scheme != "Bearer" or not TOKEN_RE.match(token):
            raise ApiError(400, 6003, "Invalid request headers",
                           chain=[{"code": 6111, "message": "Invalid format for Authorization header"}])
        key = token_key(token)
        if self.tokens.get(key) != token:
            raise ApiError(403, 10000, "Authentication error")
        return key

    def api(self, method, path, headers, body):
        """(endpoint, db, Response | ('run', ...)); the routing, auth, rate limit and request checks."""
        m = API_RE.match(path)
        if not m:
            raise ApiError(404, 7000, "No route for that URI")
        account, dbid, verb = m.group(1), m.group(2), m.group(3)
        if dbid is None:
            endpoint, want = "database_list", "GET"
        elif verb is None:
            endpoint, want = "database_get", "GET"
        elif verb in ("query", "raw"):
            endpoint, want = verb, "POST"
        else:
            raise ApiError(404, 7000, "No route for that URI")
        if method != want:
            raise ApiError(405, 7001, "Method not allowed for this endpoint")
        return endpoint, account, dbid

    def resolve(self, account, dbid):
        if account != self.cfg.account_id:
            raise ApiError(403, 7403, "The given account is not valid or is not authorized to access this service")
        if dbid is None:
            return None
        if not UUID_RE.match(dbid):
            raise ApiError(400, 7400, "The request is malformed: failed to decode id")
        u = dbid.lower()
        if len(u) == 32:
            u = "%s-%s-%s-%s-%s" % (u[:8], u[8:12], u[12:16], u[16:20], u[20:])
        db = self.databases.get(u)
        if db is None:
            raise ApiError(404, 7404, "Not Found")     # (UNCERTAIN for /query in the reference)
        return db

    def parse_body(self, body):
        """[(sql, params)] from {"sql", "params"} or {"batch": [...]} (reference section 2)."""
        try:
            req = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise ApiError(400, 7400, "The request is malformed: body is not JSON (%s)" % e)   # (fake) text
        if not isinstance(req, dict):
            raise ApiError(400, 7400, "The request is malformed: expected a JSON object")
        items = req["batch"] if "batch" in req else [req]
        if not isinstance(items, list) or not items:
            raise ApiError(400, 7400, "The request is malformed: batch must be a non-empty array")
        out = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("sql"), str):
                raise ApiError(400, 7400, "The request is malformed: sql is required and must be a string")
            params = item.get("params", [])
            if params is None:
                params = []
            if not isinstance(params, list):
                raise ApiError(400, 7400, "The request is malformed: params must be an array")
            for p in params:
                if self.cfg.params == "strings" and not isinstance(p, str):
                    raise ApiError(400, 7400, "The request is malformed: params must be strings")
                if isinstance(p, (dict, list)):
                    raise ApiError(400, 7400, "The request is malformed: a param is an object or array")
            params = [int(p) if isinstance(p, bool) else p for p in params]
            stmts = split_statements(item["sql"])
            if not stmts:
                raise sql_error("No SQL statements detected.: SQLITE_ERROR")      # (fake) text
            if len(stmts) > 1 and params:
                # UNCERTAIN how D1 binds params across several statements in one string: the fake refuses it,
                # so a client never depends on a guess (use the batch form).
                raise sql_error("params with several statements in one sql string are not supported by the "
                                "fake (UNCERTAIN in D1); use the batch form: SQLITE_ERROR")
            out.extend((s, params) for s in stmts)
        return out

    def database_view(self, db):
        n = db.dump(None)["tables"]
        return {"uuid": db.uuid, "name": db.name, "version": "production", "num_tables": len(n),
                "file_size": db.size(), "created_at": db.created_at, "read_replication": {"mode": "disabled"}}

    # -------------------------------------------------------------------------------------------- control

    def control(self, method, path, query, body):
        q = urllib.parse.parse_qs(query)
        try:
            spec = json.loads(body or b"{}") if method == "POST" else {}
        except ValueError as e:
            return json_response(400, {"ok": False, "error": "control body is not JSON: %s" % e})
        try:
            if path == "/_fake/stats" and method == "GET":
                with self.stats_lock:
                    s = json.loads(json.dumps(self.stats))
                    s["faults_fired"] = dict(self.fired)
                s["rate"] = self.limiter.view()
                return json_response(200, s)
            if path == "/_fake/stats/reset" and method == "POST":
                self.reset_stats()
                return json_response(200, {"ok": True})
            if path == "/_fake/fault" and method == "POST":
                specs = spec if isinstance(spec, list) else [spec]
                ids = []
                with self.fault_lock:
                    for one in specs:
                        f = Fault(one, self.next_fault)
                        self.next_fault += 1
                        self.faults.append(f)
                        ids.append(f.id)
                return json_response(200, {"ok": True, "ids": ids})
            if path == "/_fake/fault" and method == "GET":
                with self.fault_lock:
                    armed = [f.view() for f in self.faults if f.count != 0]
                    used = [f.view() for f in self.faults if f.fired]
                return json_response(200, {"armed": armed, "used": used, "fired": dict(self.fired)})
            if path == "/_fake/fault/clear" and method == "POST":
                with self.fault_lock:
                    n = sum(1 for f in self.faults if f.count != 0)
                    self.faults = []
                return json_response(200, {"ok": True, "cleared": n})
            if path == "/_fake/rate/reset" and method == "POST":
                self.limiter.reset()
                return json_response(200, {"ok": True})
            if path == "/_fake/config":
                if method == "POST":
                    for k, v in spec.items():
                        if k not in CONFIG_TYPES:
                            raise ValueError("unknown setting %r; known: %s" % (k, ", ".join(sorted(CONFIG_TYPES))))
                        setattr(self.cfg, k, CONFIG_TYPES[k](v))
                return json_response(200, {k: getattr(self.cfg, k) for k in CONFIG_TYPES})
            if path == "/_fake/databases" and method == "GET":
                return json_response(200, {"account_id": self.cfg.account_id, "databases": [
                    {"name": d.name, "uuid": d.uuid, "path": d.path} for d in self.databases.values()]})
            if path == "/_fake/dump" and method == "GET":
                db = self.find_db(q.get("database", [None])[0])
                return json_response(200, db.dump(q.get("table", [None])[0]))
            if path == "/_fake/sql" and method == "POST":
                db = self.find_db(spec.get("database"))
                return json_response(200, {"results": db.control_sql(spec["sql"])})
            if path == "/_fake/outage" and method == "POST":
                return self.start_outage(spec)
        except (ValueError, KeyError, TypeError, sqlite3.Error) as e:
            return json_response(400, {"ok": False, "error": str(e)})
        return json_response(404, {"ok": False, "error": "no such control endpoint %s %s" % (method, path)})

    def find_db(self, ref):
        for d in self.databases.values():
            if ref in (d.name, d.uuid):
                return d
        raise ValueError("no database %r; known: %s" % (ref, ", ".join(d.name for d in self.databases.values())))

    def start_outage(self, spec):
        """{"mode": "refuse", "seconds": S}: the port refuses connections for S seconds (the listening socket is
        closed, open connections are reset), then listens again on the same port. {"mode": "reset", "seconds": S |
        "count": N}: connections are accepted, every API request's connection is reset without an answer (until
        {"mode": "off"} if neither is given)."""
        mode = spec.get("mode", "refuse")
        seconds = float(spec.get("seconds", 0))
        if mode == "off":
            with self.outage_lock:
                self.outage = None
            return json_response(200, {"ok": True, "mode": "off"})
        if mode not in ("refuse", "reset"):
            raise ValueError("mode must be refuse, reset or off")
        if mode == "refuse" and not 0 < seconds <= 600:
            raise ValueError("a refuse outage needs 0 < seconds <= 600 (nothing can end it from outside)")
        with self.outage_lock:
            self.outage = {"mode": mode, "until": time.monotonic() + seconds if seconds else None,
                           "count": int(spec.get("count", -1)), "seconds": seconds}
        if mode == "refuse":
            threading.Thread(target=self.server.shutdown, daemon=True).start()
        return json_response(200, {"ok": True, "mode": mode, "seconds": seconds})

    def in_outage(self):
        """Whether this API request's connection is to be reset (an outage)."""
        with self.outage_lock:
            o = self.outage
            if o is None:
                return False
            if (o["until"] is not None and time.monotonic() >= o["until"]) or o["count"] == 0:
                self.outage = None
                return False
            if o["count"] > 0:
                o["count"] -= 1
            return True


CONFIG_TYPES = {"rate_limit": int, "rate_window": float, "rate_block": float, "request_timeout": float,
                "timeout_outcome": str, "max_statement": int, "params": str}


# ================================================================================================ HTTP layer

class Handler(http_wire.Handler):
    name = "fake_d1"
    reasons = REASONS
    malformed_suffix = b'{"result":[{"results":[{"'
    drip_interval = 0.2

    def serve(self, method, target, headers, body, keep, t0):
        app = self.server.app
        path, _, query = target.partition("?")
        if path.startswith("/_fake/"):
            res = app.control(method, path, query, body)
            return self.send(res, keep, None, t0, method, path, control=True)
        if app.in_outage():
            app.add(connections_reset=1)
            self.log(method, path, "outage", "reset", 0, t0)
            self.reset_now()
            return False
        endpoint, db, fault = "unknown", None, None
        try:
            endpoint, account, dbid = app.api(method, path, headers, body)
            try:
                db = app.resolve(account, dbid) if account == app.cfg.account_id else None
            except ApiError:
                db = None
            fault = app.take_fault(endpoint, db)
            res = self.dispatch(app, endpoint, account, dbid, headers, body, fault, t0)
        except ApiError as e:
            res = error_response(e)
        if res is None:               # hang: nothing sent
            app.count(endpoint, db, "hang", len(body))
            return False
        code = None
        if res.note and res.note.startswith("error "):
            code = res.note.split()[1]
        app.count(endpoint, db, res.status, len(body), code)
        spoil = fault if fault is not None and fault.kind in ("reset", "truncate", "malformed", "drip") else None
        return self.send(res, keep, spoil, t0, method, path)

    def dispatch(self, app, endpoint, account, dbid, headers, body, fault, t0):
        kind = fault.kind if fault is not None else None
        if kind == "hang":
            self.log("POST", endpoint, "hang", "hang", 0, t0)
            app.stop.wait(float(fault.spec.get("hold", 3600)))
            return None
        if kind in ("http503", "http5xx", "html"):
            status = 200 if kind == "html" else int(fault.spec.get("status", 503))
            return Response(status, [HTML_CT], [edge_page(status if status != 200 else 403)], kind)
        if kind == "http500":
            ref = "e_%s" % secrets.token_hex(16)
            return json_response(500, ApiError(500, 7500, "internal error; reference = %s" % ref).body(),
                                 note="error 7500")
        if kind == "overloaded":
            # (fake) code: the reference leaves the overload 429's code UNCERTAIN; it is not 971 and blocks nothing
            return json_response(429, ApiError(429, 7429, "D1 DB is overloaded. Requests queued for too long.")
                                 .body(), note="error 7429")
        key = app.authenticate(headers, fault)
        if kind == "http429":
            app.limiter.block(key, fault.spec.get("block"))
        retry, rate_headers = app.limiter.admit(key)
        if retry is not None:
            hdrs = [("Retry-After", str(retry))]
            if kind == "http429" and "retry_after" in fault.spec and fault.spec["retry_after"] is None:
                hdrs = []                                  # a 429 without Retry-After: the client waits 300 s
            raise ApiError(429, 971, "Please wait and consider throttling your request speed", headers=hdrs)
        db = app.resolve(account, dbid)
        if endpoint == "database_list":
            dbs = [app.database_view(d) for d in app.databases.values()]
            return json_response(200, {"result": dbs, "result_info": {"page": 1, "per_page": 1000,
                                 "count": len(dbs), "total_count": len(dbs)}, "success": True, "errors": [],
                                 "messages": []}, rate_headers)
        if endpoint == "database_get":
            return json_response(200, {"result": app.database_view(db), "success": True, "errors": [],
                                       "messages": []}, rate_headers)
        if len(body) > MAX_BODY:
            return Response(413, [HTML_CT], [edge_page(413)], "body too large")
        statements = app.parse_body(body)
        if kind == "sql_error":
            raise sql_error(fault.spec.get("message", "no such table: fault_injected: SQLITE_ERROR"))
        commit = fault.commit if fault is not None else True
        deadline = time.monotonic() + float(app.cfg.request_timeout)
        pre = float(fault.spec.get("delay", 5)) if kind == "slow_sql" else 0.0
        try:
            results, st = db.run(statements, app.cfg, endpoint == "raw", deadline, pre, commit)
        except TimeoutError:
            app.add(timeouts_504=1, rolled_back=1)
            return Response(504, [HTML_CT], [edge_page(504)], "504 after the time limit, rolled back")
        except ApiError:
            app.add(statements=len(statements), rolled_back=1)
            raise
        app.add(statements=len(statements), rows_written=st["rows_written"] if commit else 0,
                rows_read=st["rows_read"], committed=1 if commit else 0, rolled_back=0 if commit else 1)
        if kind == "timeout_504" or st["elapsed"] > float(app.cfg.request_timeout):
            if kind == "timeout_504" and fault.spec.get("delay"):
                app.stop.wait(float(fault.spec["delay"]))
            app.add(timeouts_504=1)
            return Response(504, [HTML_CT], [edge_page(504)],
                            "504, write %s" % ("committed" if commit else "rolled back"))
        if kind == "slow":
            app.stop.wait(float(fault.spec.get("delay", 5)))
        return json_response(200, {"result": results, "errors": [], "messages": [], "success": True},
                             rate_headers, note="%d statements" % len(statements))

    def reset_now(self):
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()
        except OSError:
            pass

    def extra_headers(self, status, control):
        if control:
            return []
        return ["Date: %s" % time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()), "Server: cloudflare",
                "CF-RAY: %s-SYD" % secrets.token_hex(8)]

    def send(self, res, keep, fault, t0, method, path, control=False):
        app = self.server.app
        kind = fault.kind if fault is not None else None
        hbytes, parts = self.render(res.status, res.headers, res.parts, keep, kind, control)
        sent, keep = self.write(hbytes, parts, fault, keep)
        if control:
            self.count_control()
        else:
            app.add(bytes_sent=sent)
        self.log(method, path, "control" if control else "api", res.status, sent, t0, kind or res.note)
        return keep


class Server(http_wire.Server):
    handler = Handler


def env_default(name, fallback):
    v = os.environ.get(name)
    return float(v) if v not in (None, "") else fallback


def build_parser():
    ap = argparse.ArgumentParser(description="Fake Cloudflare D1 HTTP API (query/raw) backed by SQLite files")
    fakekit.add_listen_args(ap)
    ap.add_argument("--data-dir", help="where the databases' SQLite files live (default: a temporary folder, "
                                       "removed on exit)")
    ap.add_argument("--account-id", default=DEFAULT_ACCOUNT)
    ap.add_argument("--database", action="append", default=[], metavar="NAME=UUID",
                    help="a database (repeatable; default rtopacks-db and ops-db, see README.md)")
    ap.add_argument("--token-file", help="valid API tokens, one per line (default: the documented test token)")
    ap.add_argument("--rate-limit", type=int, default=int(env_default("FAKE_D1_RATE_LIMIT", 1200)),
                    help="requests per --rate-window per token (0 = off; env FAKE_D1_RATE_LIMIT)")
    ap.add_argument("--rate-window", type=float, default=env_default("FAKE_D1_RATE_WINDOW", 300),
                    help="seconds (default 300; env FAKE_D1_RATE_WINDOW)")
    ap.add_argument("--rate-block", type=float, default=env_default("FAKE_D1_RATE_BLOCK", 300),
                    help="seconds every call is refused after going over (default 300; env FAKE_D1_RATE_BLOCK)")
    ap.add_argument("--request-timeout", type=float, default=env_default("FAKE_D1_REQUEST_TIMEOUT", 30),
                    help="seconds a request may run before the 504 (default 30; env FAKE_D1_REQUEST_TIMEOUT)")
    ap.add_argument("--timeout-outcome", choices=("commit", "rollback"), default="commit",
                    help="what a request that ran past the limit leaves behind (UNCERTAIN in D1; default commit, "
                         "the harder case for a client)")
    ap.add_argument("--max-statement", type=int, default=100_000, help="bytes per statement (default 100000)")
    ap.add_argument("--max-size", type=int, default=10 * 1024 ** 3, help="bytes per database (default 10 GB)")
    ap.add_argument("--params", choices=("json", "strings"), default="json",
                    help="json: strings, numbers, null (what clients send in the wild); strings: the schema only")
    ap.add_argument("--quiet", action="store_true", help="no per-request log lines")
    return ap


def make_app(args):
    if args.data_dir:
        os.makedirs(args.data_dir, exist_ok=True)
        data_dir, temp = args.data_dir, False
    else:
        data_dir, temp = tempfile.mkdtemp(prefix="fake-d1-"), True
    pairs = []
    for spec in args.database or ["%s=%s" % p for p in DEFAULT_DATABASES]:
        name, _, uuid = spec.partition("=")
        if not re.match(r"^[A-Za-z0-9_.-]+$", name) or not UUID_RE.match(uuid) or len(uuid) != 36:
            raise SystemExit("fake_d1: --database wants NAME=UUID (8-4-4-4-12 hex), got %r" % spec)
        pairs.append((name, uuid.lower()))
    if args.token_file:
        with open(args.token_file) as fh:
            tokens = [line.strip() for line in fh if line.strip()]
        if not tokens:
            raise SystemExit("fake_d1: %s holds no token" % args.token_file)
    else:
        tokens = [DEFAULT_TOKEN]
    cfg = argparse.Namespace(**vars(args))
    dbs = {u: Database(n, u, os.path.join(data_dir, n + ".sqlite3"), cfg) for n, u in pairs}
    app = App(cfg, dbs, tokens)
    app.data_dir, app.temp_dir = data_dir, temp
    return app


def rebind(server, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(server.request_queue_size)
    server.socket = s


def main(argv=None):
    args = build_parser().parse_args(argv)
    app = make_app(args)
    server, port = fakekit.listen(Server, app, args)
    app.server = server
    app.say("fake_d1: listening on 127.0.0.1:%d account %s, %s; rate %d/%gs block %gs; timeout %gs (tokens never "
            "logged)" % (port, args.account_id, ", ".join("%s=%s" % (d.name, d.uuid) for d in app.databases.values()),
                         args.rate_limit, args.rate_window, args.rate_block, args.request_timeout))
    fakekit.stop_on_signals(app, server)
    try:
        while not app.stop.is_set():
            server.serve_forever(poll_interval=0.2)
            o = app.outage
            if app.stop.is_set() or o is None or o["mode"] != "refuse":
                continue
            # The outage: nothing listens on the port until it ends (connection refused); requests on connections
            # that were already open are reset (in_outage) until then.
            server.socket.close()
            app.say("fake_d1: outage, refusing connections for %gs" % o["seconds"])
            app.stop.wait(max(0.0, o["until"] - time.monotonic()))
            if not app.stop.is_set():
                rebind(server, port)
                app.say("fake_d1: outage over, listening again")
    finally:
        app.stop.set()
        server.server_close()
        for d in app.databases.values():
            with d.lock:
                d.conn.close()
        if app.temp_dir:
            shutil.rmtree(app.data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
