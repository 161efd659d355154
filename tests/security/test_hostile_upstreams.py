#!/usr/bin/python3
"""Hostile upstreams cannot exhaust the daemons' memory, and their words cannot drive a log or a terminal (issue 13,
items 6 and 7).

Each daemon runs one cycle (--once) per probe against its fake, behind a proxy (hostile.py) that answers one
request of the cycle with something no real upstream sends: entity tricks, depth bombs (in elements the parser
reads and in elements it skips), 2 GB and endless chunked bodies, a gzip bomb, a 200 MB text node, JSON node bombs,
huge numbers, \\u0000 escapes, invalid UTF-8, and error texts full of control characters.  Each probe asserts:

  * a clear error: the run (or the step) fails with a message that names what was wrong;
  * nothing written: the data tables (rtopacks.db's register and CRICOS tables, QuickBooks' records) are as before,
    and a refused token answer leaves the token store as it was;
  * the peak RSS of the daemon (GNU time's maximum resident set) stays within PEAK_MB (64 MB) in a build without
    sanitizers; AddressSanitizer's shadow memory and allocator add an amount that grows with the work done,
    measured on a harmless cycle that stops where the probes do (its quarantine made small), so there the bound is
    that baseline plus PEAK_MB;
  * control characters from the upstream arrive escaped: one journal line per message (no line of the upstream's
    making, no "<0>" emergency), no ESC or C1 control in logs, run and step rows, or syncctl's output.

The peak RSS of every probe is printed as a table (RTOPACKS_RSS_TABLE=path also writes it there) for the issue note.
"""

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import unittest

from cleanups import ClassCleanups
from harness import (BIN, REPO, Daemon, Server, Workdir, base_config, dump_db, query, slow_factor,
                     syncctl, write_config)
from hostile import Body, Bomb, Hostile, Rewrite, Stream
import tgalib
import qbenv

TIME = "/usr/bin/time"
PEAK_MB = 64
MB = 1 << 20
TABLE = []                      # (daemon, probe, peak MB, seconds, error)

NS_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
NS_TGA = "http://training.gov.au/services/13/"
ENV_OPEN = ('<s:Envelope xmlns:s="%s">' % NS_SOAP).encode()
SEARCH_OPEN = ENV_OPEN + ('<s:Body><SearchByModifiedDateResponse xmlns="%s"><SearchByModifiedDateResult '
                          'xmlns:i="http://www.w3.org/2001/XMLSchema-instance">' % NS_TGA).encode()
SEARCH_CLOSE = b"</SearchByModifiedDateResult></SearchByModifiedDateResponse></s:Body></s:Envelope>"
EMPTY_PAGE = b"<Count>0</Count><PageNumber>1</PageNumber><PageSize>50</PageSize><Results/>"
# What an upstream's error text tries: a journal line of its own at emergency level, a terminal escape (ESC, and
# the one-byte C1 CSI), a bell, a lone CR that would overwrite the line on a terminal.
NASTY = "Access denied\n<0>EMERGENCY injected\r\x1b[2J\x1b]0;owned\x07 \u009b31m done"
NASTY_XML = "Access denied\n<0>EMERGENCY injected\r\u009b31m done"   # XML 1.0 allows no ESC, not even as &#27;


def sanitized(binary):
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


def once_measured(daemon, env=None, timeout=120):
    """One cycle (--once) under GNU time: (exit code, peak RSS in MB, seconds)."""
    tfile = daemon.wd.file("time.out")
    out = daemon.wd.file("%s.stdout" % daemon.name)     # qb-reconcile prints its result there
    e = dict(os.environ)
    e.update(daemon.env)
    e.update(env or {})
    # ASan keeps freed memory in a quarantine (256 MB by default) that would count as resident: a small one, so that
    # the figure is about what the daemon holds.
    e["ASAN_OPTIONS"] = ":".join(filter(None, [e.get("ASAN_OPTIONS"), "quarantine_size_mb=8"]))
    t0 = time.monotonic()
    with open(daemon.log_path, "ab") as log, open(out, "ab") as stdout:
        p = subprocess.run([TIME, "-f", "%M", "-o", tfile] + daemon.command([], once=True), stdout=stdout,
                           stderr=log, env=e, timeout=timeout * slow_factor())
    with open(tfile) as f:
        kb = int(f.read().split()[-1])
    return p.returncode, kb / 1024.0, time.monotonic() - t0


def journal_env(daemon):
    """JOURNAL_STREAM naming the daemon's log file: its lines then carry journald's <N> priority prefixes."""
    open(daemon.log_path, "ab").close()
    st = os.stat(daemon.log_path)
    return {"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)}


def last_run(ops, sync_type):
    rows = query(ops, "SELECT run_id, status, error FROM sync_runs WHERE sync_type = ? ORDER BY started_at DESC,"
                      " rowid DESC LIMIT 1", (sync_type,))
    return rows[0] if rows else None


def step_errors(ops, run_id):
    return [r[0] or "" for r in query(ops, "SELECT error FROM sync_steps WHERE run_id = ?", (run_id,))]


def corpus_rows(path):
    """rtopacks.db's tables that hold rows (a fresh install has them all, empty)."""
    if not os.path.exists(path):
        return {}
    return {t: v for t, v in dump_db(path, exclude_tables=("sync_checkpoint",)).items() if v[1]}


def json_bomb(n):
    """[0,0,...,0]: n values in 2n bytes (cJSON: a node of some 64 bytes each)."""
    return b"[" + b"0," * (n - 1) + b"0]"


class HostileBase(ClassCleanups):
    daemon_name = None
    sync_type = None

    @classmethod
    def set_up_class(cls):
        cls.setup_env()
        cls.sanitized = sanitized(cls.daemon.binary)
        cls.baseline = cls.measure_baseline() if cls.sanitized else 0.0
        cls.prepare()

    @classmethod
    def behind_proxy(cls, name, start_fake):
        """cls.wd (named name), cls.fake (start_fake(wd)) and cls.hostile, the proxy in front of it, each cleaned up
        with the class; returns the work dir."""
        cls.wd = wd = Workdir(name)
        cls.cleanups.append(wd.cleanup)
        cls.fake = start_fake(wd)
        cls.cleanups.append(cls.fake.stop)
        cls.hostile = Hostile(cls.fake.url)
        cls.cleanups.append(cls.hostile.stop)
        return wd

    @classmethod
    def use_config(cls, wd, daemon, cfg):
        """Write cfg, with no HTTP retries (each probe's answer comes once), and set cls.config, cls.ops, cls.corpus
        and cls.daemon (not started)."""
        cfg["http"]["retries"] = "0"
        cls.config = write_config(wd.file("sync.conf"), cfg)
        cls.ops = os.path.join(wd.state, "ops.db")
        cls.corpus = os.path.join(wd.state, "rtopacks.db")
        cls.daemon = Daemon(daemon, cls.config, wd)

    # --- what a probe checks ---------------------------------------------------------------------------------

    def probe(self, name, match, answer, error, env=None, count=-1, data=None, baseline=None):
        """Arm the proxy, run one cycle, and check: the failure and its message, the data (self.data(), or what
        data() returns), the peak RSS."""
        data = data or self.data
        bound = (self.baseline if baseline is None else baseline) + PEAK_MB if self.sanitized else PEAK_MB
        self.fresh()
        before = data()
        self.hostile.arm(match, answer, count)
        log_at = os.path.getsize(self.daemon.log_path) if os.path.exists(self.daemon.log_path) else 0
        try:
            rc, peak, secs = once_measured(self.daemon, env)
        finally:
            self.hostile.clear()
        hits = self.hostile.hits
        run = last_run(self.ops, self.sync_type)
        texts = self.extra_texts() + ([run[2] or ""] + step_errors(self.ops, run[0]) if run else [])
        shown = self.shown_error(run, texts)
        TABLE.append((self.daemon_name, name, peak, secs, shown))
        with open(self.daemon.log_path, "rb") as f:
            f.seek(log_at)
            log = f.read().decode(errors="replace")
        self.assertGreater(hits, 0, "%s: the probe was never asked for" % name)
        self.assertLessEqual(peak, bound, "%s: peak RSS %.1f MB, more than %.0f MB%s" % (
            name, peak, bound, " (ASan baseline %.1f MB + %d)" % (bound - PEAK_MB, PEAK_MB)
            if self.sanitized else ""))
        self.assertTrue(any(re.search(error, t) for t in texts + [log]),
                        "%s: no error matching %r in the run (%r) or the log:\n%s" % (name, error, texts, log[-3000:]))
        self.assertNotEqual(self.run_status(run, rc), "complete", "%s: the run completed" % name)
        self.assertEqual(data(), before, "%s: data was written" % name)
        return run, texts, log

    def extra_texts(self):
        """Where else the daemon records an upstream's error (besides run and step rows)."""
        return []

    # Probes whose request does not come again at the next cycle (a later one, an unchanged edition) start from a
    # fresh install; elsewhere the probed request comes again by itself.
    fresh_install = False

    def fresh(self):
        """Before a probe: a fresh install if fresh_install says so."""
        if not self.fresh_install:
            return
        for name in os.listdir(self.wd.state):
            path = os.path.join(self.wd.state, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)

    def data(self):
        """What a probe must not change: the corpus daemons' rows (qb-reconcile has its own)."""
        return corpus_rows(self.corpus)

    def shown_error(self, run, texts):
        for t in texts:
            if t:
                return t
        return ""

    def run_status(self, run, rc):
        return run[1] if run else None

    def assert_escaped(self, run, texts, log):
        """The upstream's control characters, escaped everywhere they arrived."""
        for t in texts:
            self.assertNotRegex(t, "[\x00-\x1f\x7f\x80-\x9f]", "a raw control character in a row: %r" % t)
        for line in log.splitlines():
            self.assertRegex(line, r"^<[3-7]>", "a journal line not of our making: %r" % line)
            self.assertNotRegex(line, "[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]", "a raw control character: %r" % line)
        self.assertIn("\\n<0>EMERGENCY injected", log)
        for args in (("runs", "--limit", "3"), ("steps", run[0])):
            r = syncctl(self.config, *args)
            self.assertNotRegex(r.stdout + r.stderr, "[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]",
                                "syncctl %s printed a control character" % args[0])

    @classmethod
    def prepare(cls):
        """After the baseline: what the probes need (e.g. rows to push)."""

    # (match, answer) armed while the baseline is measured, so that it is a harmless cycle of the probes' shape.
    baseline_answer = None

    @classmethod
    def measure_baseline(cls):
        if cls.baseline_answer:
            cls.hostile.arm(*cls.baseline_answer)
        try:
            rc, peak, _ = once_measured(cls.daemon)
        finally:
            cls.hostile.clear()
        TABLE.append((cls.daemon_name, "baseline (ASan): a harmless cycle", peak, 0, ""))
        return peak


# --- tga-sync (SOAP) --------------------------------------------------------------------------------------------

def soap_op(op):
    return lambda req: ('/%s"' % op) in (req.headers.get("SOAPAction") or "")


class TgaSyncHostile(HostileBase):
    daemon_name = "tga-sync"
    sync_type = "tga_sync"

    @classmethod
    def setup_env(cls):
        wd = cls.behind_proxy("hostile-tga", tgalib.start_fake)
        pw = wd.file("tga-password")
        with open(pw, "w") as f:
            f.write(tgalib.PASSWORD)
        os.chmod(pw, 0o600)
        cfg = base_config(wd, None, {"tga-sync": {
            "base_url": cls.hostile.url + "/Deewr.Tga.Webservices", "username": "WebService.Read",
            "password_file": pw, "epoch": tgalib.EPOCH, "page_size": 50, "step_retries": 0,
            "step_backoff": "50ms", "step_backoff_max": "100ms", "notify": "no"}})
        cls.use_config(wd, "tga-sync", cfg)

    # The same request answered with an empty page: the cycle goes on to its other searches and ends.
    baseline_answer = (soap_op("SearchByModifiedDate"), Body(SEARCH_OPEN + EMPTY_PAGE + SEARCH_CLOSE,
                                                             ctype="text/xml; charset=utf-8"))

    def search(self, name, answer, error, **kw):
        return self.probe(name, soap_op("SearchByModifiedDate"), answer, error, **kw)

    def test_entities(self):
        xxe = (b'<?xml version="1.0"?><!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' +
               SEARCH_OPEN + b"<Count>&xxe;</Count>" + SEARCH_CLOSE)
        self.search("XXE (external entity)", Body(xxe, ctype="text/xml"), "has a DTD")
        lol = b'<?xml version="1.0"?><!DOCTYPE s:Envelope [<!ENTITY a "aaaaaaaaaa">'
        for i in range(1, 10):
            lol += b'<!ENTITY %s "%s">' % (b"a%d" % i, (b"&a%d;" % (i - 1) if i > 1 else b"&a;") * 10)
        lol += b"]>" + SEARCH_OPEN + b"<Count>&a9;</Count>" + SEARCH_CLOSE
        self.search("entity expansion (billion laughs)", Body(lol, ctype="text/xml"), "has a DTD")

    def test_depth_bombs(self):
        # 15 MB of unclosed tags, inside the response (read) and inside the s:Header (skipped).
        self.search("depth bomb, read elements", Stream(ENV_OPEN + b"<s:Body>", b"<a>", total=15 * MB,
                                                        ctype="text/xml"), "nested more than 64 deep")
        self.search("depth bomb, skipped element (5 million tags)",
                    Stream(ENV_OPEN + b"<s:Header>", b"<x>", total=15 * MB, ctype="text/xml"),
                    "nested more than 64 deep")

    def test_big_bodies(self):
        self.search("2 GB body", Stream(SEARCH_OPEN, b" ", total=2 << 30, ctype="text/xml"),
                    "larger than 16777216 bytes")
        self.search("endless chunked body", Stream(SEARCH_OPEN, b"<Count>1</Count>", ctype="text/xml"),
                    "larger than 16777216 bytes")
        self.search("gzip bomb (256 MB decoded)", Bomb(SEARCH_OPEN, ctype="text/xml"), "larger than 16777216 bytes")
        self.search("200 MB text node", Stream(SEARCH_OPEN + b"<Count>", b"1", total=200 * MB, ctype="text/xml"),
                    "larger than 16777216 bytes")

    def test_text_bombs_within_the_body_limit(self):
        self.search("10 MB text node, read element",
                    Body(SEARCH_OPEN + b"<Count>" + b"1" * (10 * MB) + b"</Count>" + SEARCH_CLOSE, ctype="text/xml"),
                    "more than 65536 bytes of text")
        header = ENV_OPEN + b"<s:Header><Note>" + b"x" * (10 * MB) + b"</Note></s:Header>"
        self.search("10 MB text node, skipped element",
                    Body(header + SEARCH_OPEN[len(ENV_OPEN):] + EMPTY_PAGE + SEARCH_CLOSE, ctype="text/xml"),
                    "ignored element has more than 1048576 bytes of text")
        self.search("4 MB attribute",
                    Body(SEARCH_OPEN + b'<Count a="' + b"v" * (4 * MB) + b'">0</Count>' + SEARCH_CLOSE,
                         ctype="text/xml"), "tag, comment or declaration longer than 1048576 bytes")

    def test_syncctl_escapes_what_it_prints(self):
        # The second line of defence: a row that carries raw control characters (written before the daemons
        # escaped, or by someone else) is shown escaped, not obeyed.
        con = sqlite3.connect(self.ops, timeout=10)
        try:
            con.execute("INSERT INTO sync_runs (run_id, sync_type, cycle_id, trigger, status, started_at,"
                        " finished_at, error, host, pid, version) VALUES ('old-run', 'tga_sync', 'old-run', 'manual',"
                        " 'failed', '2020-01-01T00:00:00Z', '2020-01-01T00:00:01Z', ?, 'h', 1, '0')", (NASTY,))
            con.commit()
        finally:
            con.close()
        for args in (("runs", "--limit", "50"), ("--json", "runs", "--limit", "50")):
            r = syncctl(self.config, *args)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertNotRegex(r.stdout, "[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]", "syncctl %s printed a raw "
                                "control character" % " ".join(args))
        self.assertIn("\\n<0>EMERGENCY injected\\r\\u001b[2J", r.stdout)  # cJSON's escapes, as they were
        r = syncctl(self.config, "runs", "--limit", "50")
        self.assertIn("Access denied", r.stdout)

    def test_fault_text_escaped(self):
        fault = (ENV_OPEN + b"<s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>" +
                 NASTY_XML.replace("<", "&lt;").encode() + b"</faultstring></s:Fault></s:Body></s:Envelope>")
        run, texts, log = self.search("control characters in a faultstring", Body(fault, status=500,
                                      ctype="text/xml"), "EMERGENCY injected", env=journal_env(self.daemon))
        self.assert_escaped(run, texts, log)
        # (XML turns the CR into a line feed before we see it.)
        self.assertTrue(any("\\n<0>EMERGENCY injected\\n\\u009b31m done" in t for t in texts), texts)


# --- tga-sync (REST: cJSON for searches and details, jscan.c for scope pages) ------------------------------------

def rest(fragment):
    return lambda req: fragment in req.path


class TgaSyncRestHostile(HostileBase):
    daemon_name = "tga-sync (REST)"
    sync_type = "tga_sync"

    @classmethod
    def setup_env(cls):
        wd = cls.behind_proxy("hostile-tga-rest", tgalib.start_rest_fake)
        cfg = base_config(wd, None, {"tga-sync": {
            "source": "rest", "rest_base_url": cls.hostile.url + "/api", "epoch": tgalib.EPOCH,
            "rest_page_size": 50, "rest_scope_page_size": 100, "step_retries": 0, "parse_retries": 0,
            "step_backoff": "50ms", "step_backoff_max": "100ms", "notify": "no"}})
        cls.use_config(wd, "tga-sync", cfg)

    # The first search answered with an error: a harmless cycle that stops where the probes do.
    baseline_answer = (rest("/search/"), Body(b'{"title": "Not Found"}', status=404))
    # Scope pages come late in a cycle, after rows were written: every probe starts from a fresh install.
    fresh_install = True

    def test_search_pages(self):
        self.probe("2 GB search page", rest("/search/"), Stream(b'{"data": [', b" ", total=2 << 30),
                   "larger than 8388608 bytes")
        self.probe("30 MB search page (15 million values)", rest("/search/"),
                   Body(b'{"data": ' + json_bomb(15 * MB) + b"}"), "larger than 8388608 bytes")
        self.probe("gzip bomb search page", rest("/search/"), Bomb(b'{"data": ["', suffix=b'"]}'),
                   "larger than 8388608 bytes")
        self.probe("JSON node bomb search page (3 million values)", rest("/search/"),
                   Body(b'{"data": ' + json_bomb(3000000) + b"}"), "more than 200000 values")
        self.probe("NUL escape in a search page", rest("/search/"),
                   Body(b'{"data": [{"code": "BSB\\u000050415"}], "totalCount": 1}'), r"NUL escape \(\\u0000\)")
        self.probe("control characters in an API error", rest("/search/"),
                   Body(("{\"title\": %s}" % __import__("json").dumps(NASTY)).encode(), status=400),
                   "EMERGENCY injected")

    def scope_rows(self):
        # Scope pages come after the searches and details of the cycle have written their rows: what must stay
        # unwritten is the scope.
        return query(self.corpus, "SELECT count(*) FROM tga_rto_scope") if os.path.exists(self.corpus) else [(0,)]

    def test_scope_pages(self):
        # A cycle that gets as far as the scope pages does more, and ASan keeps more of it: its own baseline, a
        # cycle whose scope pages are answered with an error.
        base = self.baseline
        if self.sanitized:
            self.fresh()
            self.hostile.arm(rest("/scope?"), Body(b'{"title": "Not Found"}', status=404))
            try:
                _, base, _ = once_measured(self.daemon)
            finally:
                self.hostile.clear()
            TABLE.append((self.daemon_name, "baseline (ASan): scope pages answered 404", base, 0, ""))
        self.probe("NUL escape in a scope page (jscan)", rest("/scope?"),
                   Rewrite(lambda b: b.replace(b'":"', b'":"\\u0000', 1).replace(b'": "', b'": "\\u0000', 1)),
                   r"NUL escape \(\\u0000\)", data=self.scope_rows, baseline=base)
        self.probe("invalid UTF-8 in a scope page (jscan)", rest("/scope?"),
                   Rewrite(lambda b: b.replace(b'":"', b'":"\xc0\xaf', 1).replace(b'": "', b'": "\xc0\xaf', 1)),
                   "not UTF-8", data=self.scope_rows, baseline=base)
        self.probe("endless chunked scope page", rest("/scope?"), Stream(b'{"data": [', b'{"code": "X"},'),
                   "larger than 4194304 bytes", data=self.scope_rows, baseline=base)


# --- cricos-sync ------------------------------------------------------------------------------------------------

def ckan(action):
    return lambda req: ("/api/3/action/%s" % action) in req.path


def record_probe(raw):
    """A datastore_search answer of the fake with its first record replaced by raw bytes."""
    def rewrite(body):
        i = body.index(b'"records": [') + len(b'"records": [') if b'"records": [' in body else \
            body.index(b'"records":[') + len(b'"records":[')
        depth, j, instr = 0, i, False
        while True:     # the end of the first record (no strings with braces in the fake's data matter here)
            c = body[j:j + 1]
            if instr:
                if c == b"\\":
                    j += 1
                elif c == b'"':
                    instr = False
            elif c == b'"':
                instr = True
            elif c == b"{":
                depth += 1
            elif c == b"}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        return body[:i] + raw + body[j + 1:]
    return Rewrite(rewrite)


class CricosSyncHostile(HostileBase):
    daemon_name = "cricos-sync"
    sync_type = "cricos_sync"

    @classmethod
    def setup_env(cls):
        wd = cls.behind_proxy("hostile-cricos", lambda wd: Server(
            os.path.join(REPO, "tests", "fakes", "fake_ckan.py"), "--scale", "small", wd=wd))
        cfg = base_config(wd, None, {"cricos-sync": {
            "base_url": cls.hostile.url + "/data", "page_size": 500, "step_retries": 0, "step_backoff": "50ms",
            "step_backoff_max": "100ms", "notify": "no", "edition_watch": "no",
            # The configured page limit (default 256 MB, spooled to disk): smaller here to keep the probe short.
            "max_page_bytes": 16 * MB}})
        cls.use_config(wd, "cricos-sync", cfg)

    # A harmless cycle of the same shape: the first page answered with a CKAN error, so nothing is stored.
    baseline_answer = (ckan("datastore_search"), Body(b'{"success": false, "error": {"__type": "Not Found Error",'
                                                     b' "message": "Not found"}}', status=404))
    # A cycle that got past a request does not ask for it again (an unchanged edition is not read twice): every
    # probe starts from a fresh install.
    fresh_install = True

    def test_package_show(self):
        wrap = b'{"help": "h", "success": true, "result": {"x": '
        # 15 MB: under the limit the code had before (16 MB), where it grew to hundreds of MB of cJSON tree.
        self.probe("15 MB package_show (7 million values)", ckan("package_show"),
                   Body(wrap + json_bomb(7 * MB) + b"}}"), "larger than 1048576 bytes")
        self.probe("JSON node bomb in package_show (450,000 values)", ckan("package_show"),
                   Body(wrap + json_bomb(450000) + b"}}"), "more than 50000 values")
        self.probe("endless chunked package_show", ckan("package_show"), Stream(wrap + b"[", b"0,"),
                   "larger than 1048576 bytes")
        self.probe("gzip bomb package_show", ckan("package_show"), Bomb(wrap + b'"', suffix=b'"}}'),
                   "larger than 1048576 bytes")

    def test_records(self):
        self.probe("JSON node bomb in a record (400,000 values)", ckan("datastore_search"),
                   record_probe(b'{"_id": 1, "x": ' + json_bomb(400000) + b"}"), "more than 4096 values")
        self.probe("huge number in a record", ckan("datastore_search"),
                   record_probe(b'{"_id": 1' + b"0" * 400 + b"}"), "number too long")
        self.probe("NUL escape in a record", ckan("datastore_search"),
                   record_probe(b'{"_id": 1, "CRICOS Provider Code": "00001\\u0000K"}'), r"NUL escape \(\\u0000\)")
        self.probe("invalid UTF-8 in a record", ckan("datastore_search"),
                   record_probe(b'{"_id": 1, "CRICOS Provider Code": "00001K\xff\xfe"}'), "not UTF-8")
        self.probe("endless chunked datastore_search", ckan("datastore_search"),
                   Stream(b'{"help": "h", "success": true, "result": {"records": [', b'{"_id": 1},'),
                   "larger than 16777216 bytes")

    def test_error_text_escaped(self):
        body = ('{"success": false, "error": {"__type": "Validation Error", "message": %s}}' %
                __import__("json").dumps(NASTY)).encode()
        run, texts, log = self.probe("control characters in a CKAN error", ckan("datastore_search"),
                                     Body(body, status=409), "EMERGENCY injected", env=journal_env(self.daemon))
        self.assert_escaped(run, texts, log)
        self.assertTrue(any("\\n<0>EMERGENCY injected\\r\\x1b[2J\\x1b]0;owned\\x07 \\u009b31m done" in t
                            for t in texts), texts)


# --- qb-reconcile -----------------------------------------------------------------------------------------------

def qb_query(req):
    return "/query" in req.path and b"from Customer" in req.body


def qb_token(req):
    return req.path.startswith("/oauth2/v1/tokens/bearer")


class QbReconcileHostile(HostileBase):
    daemon_name = "qb-reconcile"
    sync_type = "qb_reconcile"

    @classmethod
    def setup_env(cls):
        cls.env = env = qbenv.QBEnv("hostile-qb", step_retries=0, max_attempts=100)
        cls.cleanups.append(env.cleanup)
        cls.hostile = Hostile(env.fake.url)
        cls.cleanups.append(cls.hostile.stop)
        with open(env.config) as f:
            text = f.read().replace(env.fake.url, cls.hostile.url)
        text = re.sub(r"(?m)^retries = .*$", "retries = 0", text)
        with open(env.config, "w") as f:
            f.write(text)
        cls.config = env.config
        cls.ops = env.ops
        cls.daemon = env.daemon
        cls.wd = env.wd

    @classmethod
    def prepare(cls):
        # After the baseline (a cycle with nothing to push): an invoice whose push starts with the customer query.
        cls.env.customer(1, "Hostile Test RTO")
        cls.env.invoice(1, 1, "HOST-1")

    def data(self):
        # Nothing pushed upstream, nothing recorded as pushed: the billing tables' QuickBooks columns and the
        # requests that would create anything.
        # (An invoice's status and last error say that its push failed: that is the daemon's to record.)
        creates = [p for m, p, _ in self.hostile.log if m == "POST" and ("/customer?" in p or "/invoice?" in p)]
        return {"creates": creates,
                "invoices": query(self.ops, "SELECT id, qb_invoice_id FROM billing_invoices"),
                "customers": query(self.ops, "SELECT id, qb_customer_id FROM billing_customers")}

    def extra_texts(self):
        return [r[0] or "" for r in query(self.ops, "SELECT qb_last_error FROM billing_invoices") +
                query(self.ops, "SELECT last_error FROM qb_connection")]

    def run_status(self, run, rc):
        # A cycle whose calls failed still ends its run; what matters is that the result was not ok.
        with open(self.daemon.wd.file("qb-reconcile.stdout"), "rb") as f:
            results = re.findall(rb'^(\{"status":"[a-z]+")', f.read(), re.M)
        return "complete" if results and results[-1].endswith(b'"ok"') else "not ok"

    def token_store(self):
        with open(self.env.token_file, "rb") as f:
            return f.read()

    def test_query_pages(self):
        self.probe("32 MB query page of 0-items", qb_query, Body(b'{"QueryResponse": {"Customer": ' +
                   json_bomb(16 * MB) + b"}}"), "larger than 8388608 bytes")
        self.probe("JSON node bomb in a query page (3.5 million values)", qb_query,
                   Body(b'{"QueryResponse": {"Customer": ' + json_bomb(3500000) + b"}}"), "more than 400000 values")
        self.probe("endless chunked query page", qb_query, Stream(b'{"QueryResponse": {"Customer": [', b"0,"),
                   "larger than 8388608 bytes")
        self.probe("gzip bomb query page", qb_query, Bomb(b'{"QueryResponse": {"x": "', suffix=b'"}}'),
                   "larger than 8388608 bytes")
        self.probe("huge number in a query page", qb_query,
                   Body(b'{"QueryResponse": {"maxResults": 1' + b"0" * 400 + b"}}"), "number longer than 40")
        self.probe("NUL escape in a query page", qb_query,
                   Body(b'{"QueryResponse": {"Customer": [{"Id": "1\\u0000", "DisplayName": "Hostile Test RTO"}]}}'),
                   r"NUL escape \(\\u0000\)")
        self.probe("invalid UTF-8 in a query page", qb_query,
                   Body(b'{"QueryResponse": {"Customer": [{"Id": "1", "DisplayName": "Hostile \xc0\xaf"}]}}'),
                   "not UTF-8")

    def test_token_answers(self):
        # A refused refresh leaves the store as it was (the access token still valid is used, as it should be).
        store = self.token_store()
        self.probe("2 MB token answer", qb_token, Body(b'{"access_token": "' + b"a" * (2 * MB) + b'"}'),
                   "larger than 65536 bytes", data=self.token_store)
        self.probe("endless chunked token answer", qb_token, Stream(b'{"access_token": "', b"a"),
                   "larger than 65536 bytes", data=self.token_store)
        self.probe("JSON node bomb token answer", qb_token, Body(b'{"x": ' + json_bomb(30000) + b"}"),
                   "without a usable JSON object", data=self.token_store)
        self.probe("huge numbers in a token answer", qb_token,
                   Body(b'{"access_token": "eyJ0eXAiOiJKV1QifQ.abc", "refresh_token": "RT1-1-H0-1", "token_type": '
                        b'"bearer", "expires_in": 1e999, "x_refresh_token_expires_in": 1e999}'),
                   "lacks expires_in", data=self.token_store)
        self.assertEqual(self.token_store(), store, "a refused token answer changed the token store")

    def test_fault_text_escaped(self):
        body = ('{"Fault": {"Error": [{"Message": %s, "Detail": %s, "code": "6000"}], "type": "ValidationFault"}}'
                % (__import__("json").dumps(NASTY), __import__("json").dumps(NASTY))).encode()
        run, texts, log = self.probe("control characters in a QuickBooks fault", qb_query, Body(body, status=400),
                                     "EMERGENCY injected", env=journal_env(self.daemon))
        self.assert_escaped(run, texts, log)


def print_table():
    if not TABLE:
        return
    lines = ["", "peak RSS per probe (MB; bound %d MB%s)" % (PEAK_MB, ", + the ASan baseline" if any(
        "baseline" in r[1] for r in TABLE) else ""),
        "%-13s %-52s %8s %6s  %s" % ("daemon", "probe", "peak MB", "secs", "error")]
    for d, name, peak, secs, err in TABLE:
        err = re.sub("[\x00-\x1f\x7f-\x9f]", lambda m: "\\x%02x" % ord(m.group()), err or "")
        lines.append("%-13s %-52s %8.1f %6.1f  %s" % (d, name, peak, secs, err[-90:]))
    text = "\n".join(lines) + "\n"
    sys.stderr.write(text)
    if os.environ.get("RTOPACKS_RSS_TABLE"):
        with open(os.environ["RTOPACKS_RSS_TABLE"], "a") as f:
            f.write(text)


if __name__ == "__main__":
    try:
        unittest.main(verbosity=2)
    finally:
        print_table()
