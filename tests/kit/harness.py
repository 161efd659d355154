"""Test harness shared by the integration tests (run with /usr/bin/python3; Debian python3-* packages only).

What it gives a test:
  * Workdir: a private temporary directory with state/ and run/ (short paths: AF_UNIX names are limited).
  * Server: starts a fake upstream (tests/fakes/*.py or tests/kit/*_server.py) on a random loopback port.
  * SmtpSink: a real SMTP server (aiosmtpd) on loopback (port 0, reported) that keeps what it receives.
  * refused_port(): a port nothing listens on, reserved for the test's lifetime ("connection refused" cases).
  * Daemon: writes nothing itself; starts a daemon binary with -f -c CONFIG, stops it (TERM) or kills it (KILL).
  * ctl(): one control-socket request, raw; syncctl(): the real CLI.
  * wait_for(): polling waits (never fixed sleeps), as redis's test suite does; settle() (housekeeping passes) and
    settled_mails() (exactly-one-mail checks) wait for positive signals where a test asserts that nothing more came.
  * dump_db(): a database's tables by content, for "identical to an uninterrupted run" comparisons.
"""

import email
import email.policy
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import oskit

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("RTOPACKS_BUILD_BIN") or os.path.join(REPO, "build", "bin")
PY = "/usr/bin/python3"
# Every daemon's schedule, copied by the build from daemons/<name>/<name>.schedule (cmake/Daemons.cmake).
SCHEDULES = os.path.join(os.path.dirname(BIN), "schedules")
SHARED = os.environ.get("RTOPACKS_SHARED") or os.path.join(os.path.dirname(REPO), "shared")


def run_bin(binary, *args, env=None):
    """A built binary (bin/<binary>) run to its end, its output captured as text; without the caller's systemd
    credentials (CREDENTIALS_DIRECTORY), plus env."""
    e = dict(os.environ)
    e.pop("CREDENTIALS_DIRECTORY", None)
    e.update(env or {})
    return subprocess.run([os.path.join(BIN, binary)] + list(args), capture_output=True, text=True, timeout=60,
                          env=e)


def wait_for(pred, timeout=15.0, interval=0.05, what="the condition"):
    """Poll pred() until it returns something truthy; return that, or fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # the thing polled may not exist yet
            last_exc = e
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s%s" % (timeout, what,
                         " (last error: %r)" % last_exc if last_exc else ""))


_RESERVED = []      # sockets held for the test process's lifetime (refused_port)


def reserve_port():
    """A socket bound to a free loopback port, not listening: a connection to the port is refused, and no other
    process can take the port while the socket is open.  Hand it to SmtpSink(sock=...) to listen there later."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    return s


def refused_port():
    """A loopback port where connections are refused, for "connection refused" and "server down" cases.  Unlike a
    port found free and closed again, it stays reserved (bound, never listening) until the test process exits."""
    s = reserve_port()
    _RESERVED.append(s)
    return s.getsockname()[1]


def free_port():
    """Deprecated (racy: the port is free when asked, not when used); servers bind port 0 and report it, and a port
    nothing listens on comes from refused_port().  Kept for callers not converted yet."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Workdir:
    def __init__(self, name="t"):
        self.path = tempfile.mkdtemp(prefix="rs-%s-" % name, dir="/tmp")
        self.state = os.path.join(self.path, "state")
        self.run = os.path.join(self.path, "run")
        os.makedirs(self.state)
        os.makedirs(self.run)

    def file(self, *parts):
        return os.path.join(self.path, *parts)

    def cleanup(self, keep=False):
        if keep or os.environ.get("RTOPACKS_KEEP_TEST_DIRS"):
            sys.stderr.write("test files kept in %s\n" % self.path)
            return
        shutil.rmtree(self.path, ignore_errors=True)


def write_config(path, sections):
    """sections: {"paths": {"state_dir": ...}, ...} -> an INI file."""
    with open(path, "w") as f:
        for name, keys in sections.items():
            f.write("[%s]\n" % name)
            for k, v in keys.items():
                if v is None:
                    continue
                if isinstance(v, bool):
                    v = "yes" if v else "no"
                f.write("%s = %s\n" % (k, v))
            f.write("\n")
    return path


def base_config(wd, smtp_port=None, extra=None):
    """The shared sections every test config starts from: fast timeouts, private paths."""
    cfg = {
        "paths": {"state_dir": wd.state, "spool_dir": wd.path, "busy_timeout": "5s"},
        "control": {"socket_dir": wd.run},
        "smtp": {"url": "smtp://127.0.0.1:%d" % smtp_port if smtp_port else None, "tls": "none",
                 "from": "RTOpacks Sync <noreply@rtopacks.test>", "to": "ops@rtopacks.test",
                 "timeout": "5s", "retries": "1", "retry_backoff": "200ms", "queue_retry": "2s"},
        "http": {"connect_timeout": "2s", "low_speed_time": "3s", "total_timeout": "20s", "retries": "2",
                 "backoff": "100ms", "backoff_max": "1s"},
    }
    for sec, keys in (extra or {}).items():
        cfg.setdefault(sec, {}).update(keys)
    return cfg


class Server:
    """A fake upstream started on a random port (see tests/fakes/README.md for the conventions)."""

    def __init__(self, script, *args, wd=None, name=None):
        self.wd = wd or Workdir("srv")
        self.name = name or os.path.basename(script).replace(".py", "")
        self.port_file = self.wd.file("%s.%d.port" % (self.name, id(self)))
        self.log_path = self.wd.file("%s.log" % self.name)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([PY, script, "--port", "0", "--port-file", self.port_file] + list(args),
                                     stdout=self.log, stderr=self.log)
        self.port = int(wait_for(lambda: self._port(), timeout=120, what="%s to listen" % self.name))
        self.url = "http://127.0.0.1:%d" % self.port

    def _port(self):
        if self.proc.poll() is not None:
            raise RuntimeError("%s exited with %s; see %s" % (self.name, self.proc.returncode, self.log_path))
        try:
            with open(self.port_file) as f:
                return f.read().strip()
        except FileNotFoundError:
            return None

    def post(self, path, obj=None, timeout=30):
        req = urllib.request.Request(self.url + path, data=json.dumps(obj or {}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def get(self, path, timeout=60):
        with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
            return json.loads(r.read())

    def fault(self, op, kind, count=1, **kw):
        spec = {"op": op, "kind": kind, "count": count}
        spec.update(kw)
        return self.post("/_fake/fault", spec)

    def faults(self):
        """GET /_fake/fault: every fault armed since the last clear, spent ones included (at count 0), each with how
        often it "fired" (the fakes answer a list, or {"armed": [...], "spent": [...]})."""
        r = self.get("/_fake/fault")
        return r["armed"] + r.get("spent", []) if isinstance(r, dict) else r

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class SmtpSink:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it accepts.

    It binds port 0 and reports the port it got (.port), or listens on a socket from reserve_port() (sock=), so that
    a test can point a daemon at a port before the server is up.  With logins={user: password} it offers AUTH (no
    TLS needed on loopback), accepts only those, and records every attempt in .auth_attempts as (user, password)."""

    def __init__(self, sock=None, logins=None):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages = []
        self.auth_attempts = []
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                msg = email.message_from_bytes(envelope.original_content or envelope.content,
                                               policy=email.policy.default)
                with sink.lock:
                    sink.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                          "raw": envelope.original_content or envelope.content, "msg": msg})
                return "250 Message accepted for delivery"

        def authenticator(server, session, envelope, mechanism, auth_data):
            user = auth_data.login.decode(errors="replace")
            password = auth_data.password.decode(errors="replace")
            with sink.lock:
                sink.auth_attempts.append((user, password))
            return AuthResult(success=logins.get(user) == password)

        class BoundController(Controller):
            def _create_server(self):
                # The socket is bound already (port 0 or a reserved port): listen on it instead of binding by number.
                return self.loop.create_server(self._factory_invoker, sock=sink.sock, ssl=self.ssl_context)

        self.sock = sock or reserve_port()
        self.port = self.sock.getsockname()[1]
        kw = {"authenticator": authenticator, "auth_require_tls": False} if logins else {}
        self.controller = BoundController(Handler(), hostname="127.0.0.1", port=self.port, **kw)
        self.running = False
        self.start()

    def start(self):
        if not self.running:
            if self.sock is None:
                # Restarted after stop() (which closed the listening socket): the same port again.
                self.sock = socket.socket()
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                self.sock.bind(("127.0.0.1", self.port))
            self.controller.start()
            self.running = True

    def stop(self):
        if self.running:
            self.controller.stop()
            self.sock = None
            self.running = False

    def received(self):
        with self.lock:
            return list(self.messages)

    def wait(self, n, timeout=20):
        return wait_for(lambda: self.received() if len(self.received()) >= n else None, timeout,
                        what="%d mail(s) (have %d)" % (n, len(self.received())))


VALGRIND = os.environ.get("RTOPACKS_VALGRIND") == "1"
VALGRIND_CMD = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full", "--show-leak-kinds=definite",
                "--errors-for-leak-kinds=definite", "--track-fds=no", "--child-silent-after-fork=yes"]


def slow_factor():
    """How much slower daemons run here: sanitizers and valgrind stretch timing-based tests."""
    return 20.0 if VALGRIND else 1.0


class Daemon:
    """A daemon process under test (always -f, with its stderr in a log file).

    With RTOPACKS_VALGRIND=1 every daemon runs under valgrind (use a build without sanitizers); valgrind's own
    findings make the exit code 99, which the tests' exit-code checks turn into failures.
    """

    def __init__(self, binary, config, wd, env=None):
        self.binary = binary if os.path.isabs(binary) else os.path.join(BIN, binary)
        self.config = config
        self.wd = wd
        self.env = env or {}
        self.proc = None
        self.name = os.path.basename(binary)
        self.log_path = wd.file("%s.log" % self.name)

    def start(self, *args, env=None, wait=True):
        e = dict(os.environ)
        e.pop("NOTIFY_SOCKET", None)
        e.update(self.env)
        e.update(env or {})
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(args), stdout=self.log, stderr=self.log, env=e)
        if wait:
            self.wait_ready()
        return self

    def command(self, args, once=False):
        cmd = [self.binary, "-f", "-c", self.config] + (["--once"] if once else []) + list(args)
        return (VALGRIND_CMD + cmd) if VALGRIND else cmd

    def socket_path(self):
        return os.path.join(self.wd.run, "%s.sock" % self.name)

    def wait_ready(self, timeout=20):
        timeout *= slow_factor()
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %s during start-up:\n%s" % (self.name, self.proc.returncode,
                                                                                self.read_log()[-3000:]))
            return ctl(self.socket_path(), "status", timeout=2).get("ok")
        wait_for(ready, timeout, what="%s to answer on its socket" % self.name)

    def run_once(self, *args, env=None, timeout=120):
        """--once: run one cycle in the foreground and return the exit code."""
        e = dict(os.environ)
        e.update(self.env)
        e.update(env or {})
        with open(self.log_path, "ab") as log:
            p = subprocess.run(self.command(args, once=True), stdout=log, stderr=log, env=e,
                               timeout=timeout * slow_factor())
        return p.returncode

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30):
        timeout *= slow_factor()
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("%s did not stop within %ds of SIGTERM" % (self.name, timeout))
        if self.proc is not None:
            self.log.close()
        return self.proc.returncode if self.proc else None

    def kill(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        if self.proc is not None:
            self.log.close()

    def wait_exit(self, timeout=60):
        self.proc.wait(timeout)
        self.log.close()
        return self.proc.returncode

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""


def housekeeping_passes(sock_path):
    return ctl(sock_path, "status")["result"]["housekeeping_passes"]


def settle(daemon, passes=2, timeout=20):
    """Wait until `passes` more housekeeping passes of a running daemon have completed (its status counts them): the
    positive signal that whatever housekeeping would do at the current state and clock has been done.  Tests that
    assert that something did NOT happen (no re-check, no second mail) wait for this instead of sleeping."""
    sock = daemon.socket_path()
    start = housekeeping_passes(sock)
    wait_for(lambda: housekeeping_passes(sock) >= start + passes, timeout * slow_factor(),
             what="%d housekeeping passes of %s" % (passes, daemon.name))


def mails_with_key(sink, key, before=0):
    return [m for m in sink.received()[before:] if str(m["msg"]["X-RTOpacks-Mail-Key"]) == key]


def settled_mails(sink, key, ops=None, before=0, timeout=20):
    """The mails with X-RTOpacks-Mail-Key `key` once no other can come: the first has arrived, the outbox row of the
    key says sent (when ops is given: after that nothing sends it again), and the sink's count is the same across two
    polls.  For "exactly one mail" checks, instead of sleeping and counting."""
    wait_for(lambda: mails_with_key(sink, key, before), timeout, what="the mail %s" % key)
    if ops:
        wait_for(lambda: query(ops, "SELECT status FROM mail_outbox WHERE mail_key = ?", (key,)) == [("sent",)],
                 timeout, what="the outbox row of %s to be sent" % key)
    last = [None]

    def same_twice():
        n = len(mails_with_key(sink, key, before))
        same, last[0] = n == last[0], n
        return same
    wait_for(same_twice, timeout, interval=0.2, what="the count of mails %s to settle" % key)
    return mails_with_key(sink, key, before)


def ctl(sock_path, cmd, args=None, timeout=10, raw=None):
    """One control-socket request; returns the reply as a dict (or {"ok": False, ...} if none came)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # A blocking connect, as syncctl's: with a full listen backlog it waits its turn in the kernel instead of
        # failing with EAGAIN (Python's settimeout would make it non-blocking).
        s.connect(sock_path)
        s.settimeout(timeout)
        if raw is None:
            req = {"v": 1, "cmd": cmd}
            if args is not None:
                req["args"] = args
            raw = (json.dumps(req) + "\n").encode()
        try:
            s.sendall(raw)
        except BrokenPipeError:
            pass    # refused at connect time: the daemon's answer is already waiting to be read
        buf = oskit.recv_line(s)
        if not buf:
            return {"ok": False, "code": "no_reply"}
        return json.loads(buf.split(b"\n", 1)[0])
    finally:
        s.close()


class CtlConn:
    """A raw, long-lived control connection (for watch streams and hostile-client tests)."""

    def __init__(self, sock_path, timeout=10):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(sock_path)
        self.buf = b""

    def send(self, obj):
        self.s.sendall((json.dumps(obj) + "\n").encode())

    def send_raw(self, data):
        self.s.sendall(data)

    def recv(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def closed_by_peer(self, timeout=5):
        self.s.settimeout(timeout)
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.s.close()


def syncctl(config, *args, timeout=120, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([os.path.join(BIN, "syncctl"), "-c", config] + list(args), capture_output=True,
                          text=True, timeout=timeout, env=e)


def query(db_path, sql, params=()):
    con = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True, timeout=10)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def dump_db(db_path, exclude_tables=(), exclude_columns=()):
    """Every table's rows by content (sorted), minus the columns that name runs or times."""
    con = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True, timeout=10)
    out = {}
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                                            "'sqlite_%' ORDER BY name")]
        for t in tables:
            if t in exclude_tables:
                continue
            cols = [r[1] for r in con.execute('PRAGMA table_info("%s")' % t) if r[1] not in exclude_columns]
            rows = con.execute('SELECT %s FROM "%s"' % (", ".join('"%s"' % c for c in cols), t)).fetchall()
            out[t] = (cols, sorted(rows, key=lambda r: tuple("" if v is None else str(v) for v in r)))
    finally:
        con.close()
    return out


def runs(db_path, sync_type=None):
    sql = "SELECT run_id, status, trigger, cycle_id, resumed_from, error, phase FROM sync_runs"
    params = ()
    if sync_type:
        sql += " WHERE sync_type = ?"
        params = (sync_type,)
    return [dict(zip(("run_id", "status", "trigger", "cycle_id", "resumed_from", "error", "phase"), r))
            for r in query(db_path, sql + " ORDER BY started_at, run_id", params)]


def cursor(db_path, sync_type):
    r = query(db_path, 'SELECT cycle_phase, phase_cursor, run_id, cycle_id FROM "%s_cursor"' % sync_type)
    return dict(zip(("cycle_phase", "phase_cursor", "run_id", "cycle_id"), r[0])) if r else None
