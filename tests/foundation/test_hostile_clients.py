#!/usr/bin/python3
"""Hostile local clients against the control socket, all at once: many connections, slow-loris clients sending a
byte a second, oversize lines, invalid UTF-8, another uid, rapid connect/disconnect, watchers that never read.
Meanwhile a well-behaved client keeps asking `status`: its latency is measured (and printed), and the daemon's memory
must stay bounded.  HOSTILE_SECONDS sets how long the load runs (default 6) and HOSTILE_FLOODS how many threads
connect and disconnect in a tight loop (default 1); the long mode (scripts/reliability) uses more of both."""

import collections
import json
import os
import socket
import statistics
import sys
import threading
import time
import unittest

import oskit
from harness import Daemon, Server, Workdir, base_config, ctl, write_config, REPO

ITEMS_SERVER = os.path.join(REPO, "tests", "kit", "items_server.py")


def patient_ctl(sock, cmd, timeout=5):
    """A well-behaved client: a full listen backlog (EAGAIN) is retried; the wait counts in its latency."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return ctl(sock, cmd, timeout=timeout)
        except (BlockingIOError, ConnectionRefusedError, ConnectionResetError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class HostileClientsTest(unittest.TestCase):
    def test_daemon_keeps_answering_under_hostile_load(self):
        wd = Workdir("hostile")
        items = Server(ITEMS_SERVER, "--items", "20", wd=wd)
        config = write_config(wd.file("sync.conf"), base_config(wd, None, {"test-sync": {"url": items.url},
                                                                          "control": {"operators_group": "users"}}))
        # Under ASan, freed memory waits in a 256 MB quarantine and would look like growth: keep it small.
        asan = os.environ.get("ASAN_OPTIONS", "")
        d = Daemon("test-sync", config, wd, env={"ASAN_OPTIONS": (asan + ":" if asan else "") +
                                                  "quarantine_size_mb=1:thread_local_quarantine_size_kb=64"}).start()
        sock = d.socket_path()
        os.chmod(wd.path, 0o755)
        os.chmod(wd.run, 0o755)
        os.chmod(sock, 0o666)        # so that other uids get as far as the peer check
        seconds = float(os.environ.get("HOSTILE_SECONDS", "6"))
        stop = threading.Event()
        # Per attack kind, the replies it got by code ("sent" for attacks that expect none); OSError by name.
        counts = collections.defaultdict(collections.Counter)
        lock = threading.Lock()

        def bump(kind, what):
            with lock:
                counts[kind][what] += 1

        def connect():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(sock)
            return s

        def exchange(kind, payload):
            """Send payload, read the one reply line and count its code.  The daemon may answer and close before
            the whole payload is sent (line too long): the broken pipe is expected, the reply is still there."""
            try:
                s = connect()
            except OSError as e:
                return bump(kind, "connect " + type(e).__name__)
            try:
                try:
                    s.sendall(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                buf = oskit.recv_line(s)
                try:
                    code = json.loads(buf.split(b"\n", 1)[0]).get("code", "ok") if buf else "no_reply"
                except ValueError:
                    code = "not JSON"
                bump(kind, code)
            except OSError as e:
                bump(kind, type(e).__name__)
            finally:
                s.close()

        def rapid():
            while not stop.is_set():
                try:
                    connect().close()
                    bump("connects", "sent")
                except OSError as e:
                    bump("connects", type(e).__name__)

        def oversize():
            while not stop.is_set():
                exchange("oversize", b"{" + b"a" * (80 * 1024))

        def bad_utf8():
            while not stop.is_set():
                exchange("utf8", b'{"v": 1, "cmd": "\xc3\x28\xa0\xa1\xf0\x28\x8c\xbc"}\n')

        def foreign():
            while not stop.is_set():
                exchange("foreign", b'{"v": 1, "cmd": "status"}\n')
                time.sleep(0.05)

        def slow_loris():
            """A byte a second: counted when it started; then whatever ended it (the daemon's "timeout" for a
            request line not finished in time, or "busy")."""
            try:
                s = connect()
            except OSError as e:
                return bump("slow", "connect " + type(e).__name__)
            try:
                bump("slow", "started")
                for b in b'{"v": 1, "cmd": "status"}':
                    if stop.is_set():
                        return
                    s.send(bytes([b]))
                    time.sleep(1.0)
            except (BrokenPipeError, ConnectionResetError):
                try:
                    line = s.recv(4096).split(b"\n", 1)[0]
                    bump("slow", json.loads(line).get("code", "ok") if line else "closed")
                except (OSError, ValueError) as e:
                    bump("slow", type(e).__name__)
            except OSError as e:
                bump("slow", type(e).__name__)
            finally:
                s.close()

        def deaf_watcher():
            try:
                s = connect()
                s.sendall(b'{"v": 1, "cmd": "watch"}\n')
                bump("watchers", "sent")
                stop.wait()
                s.close()
            except OSError as e:
                bump("watchers", type(e).__name__)

        def attacker(uid, groups, attacks):
            """A child process of another user that runs the attacks in threads for the load's duration and
            writes what each got to a pipe; returns (pid, read end)."""
            r_fd, w_fd = os.pipe()
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    os.close(r_fd)
                    os.setgroups(groups)
                    os.setgid(65534)
                    os.setuid(uid)
                    threads = [threading.Thread(target=f, daemon=True) for f in attacks]
                    for t in threads:
                        t.start()
                    time.sleep(seconds + 1)
                    stop.set()
                    for t in threads:
                        t.join(5)
                    with lock:
                        os.write(w_fd, json.dumps(counts).encode())
                    code = 0
                finally:
                    os._exit(code)
            os.close(w_fd)
            return pid, r_fd

        def collect(pid, r_fd):
            data = oskit.read_all(r_fd)
            _, status = os.waitpid(pid, 0)
            self.assertTrue(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0,
                            "an attacker process died (wait status %d)" % status)
            return json.loads(data)

        rss_before = rss_kb(d.proc.pid)
        # The attack comes from other processes of other users: an operator (uid 65534 in group "users"), so the
        # per-uid connection cap bounds it and root's requests still get through; and a stranger (uid 65533, no
        # group) who must be refused.
        import grp
        floods = int(os.environ.get("HOSTILE_FLOODS", "1"))
        operator = attacker(65534, [grp.getgrnam("users").gr_gid],
                            [rapid] * floods + [oversize, bad_utf8] + [slow_loris] * 6 + [deaf_watcher] * 4)
        stranger = attacker(65533, [], [foreign])
        # A run in progress while under attack: its events go to the deaf watchers.
        r = patient_ctl(sock, "trigger", timeout=10)
        self.assertIs(r.get("ok"), True, r)
        latencies, failures = [], []
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            try:
                r = patient_ctl(sock, "status", timeout=5)
                if r.get("ok") is True:
                    latencies.append(time.monotonic() - t0)
                else:
                    failures.append(r.get("code"))
            except OSError as e:
                failures.append(type(e).__name__)
            time.sleep(0.02)
        counts = collect(*operator)
        counts.update(collect(*stranger))
        rss_after = rss_kb(d.proc.pid)
        latencies.sort()
        p50 = statistics.median(latencies) * 1000 if latencies else float("nan")
        p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000 if latencies else float("nan")
        print("\nhostile clients for %.0fs: %s; status answered %d (failed %d), latency p50 %.1f ms, p99 %.1f ms, "
              "max %.1f ms; daemon RSS %d -> %d KiB" % (seconds, json.dumps(counts, sort_keys=True), len(latencies),
                                                       len(failures), p50, p99,
                                                       latencies[-1] * 1000 if latencies else float("nan"),
                                                       rss_before, rss_after),
              file=sys.stderr)
        # Every attack ran, and each hostile request got the answer the protocol defines (or "busy": the operator's
        # per-uid connection cap doing its job).  A stranger is refused before any cap.
        for kind, what in (("connects", "sent"), ("slow", "started"), ("watchers", "sent")):
            self.assertGreater(counts.get(kind, {}).get(what, 0), 0, "attack %s never ran: %s" % (kind, counts))
        self.assertEqual({k for k in counts["slow"] if not k.startswith("connect ")} - {"started", "timeout", "busy"},
                         set(), counts["slow"])
        for kind, code, allowed in (("oversize", "line_too_long", {"busy"}), ("utf8", "unknown_command", {"busy"}),
                                    ("foreign", "permission_denied", set())):
            got = counts.get(kind, {})
            self.assertGreater(got.get(code, 0), 0, "%s never got %s: %s" % (kind, code, got))
            # A full listen backlog (the flood's doing) refuses some connects: not an answer of the daemon's.
            answers = {k for k in got if not k.startswith("connect ")}
            self.assertEqual(answers - {code} - allowed, set(), "%s got other answers: %s" % (kind, got))
        # Root's status requests were all answered ok: true, within the bound, throughout.
        self.assertEqual(failures, [], "status requests that failed under the load")
        self.assertGreater(len(latencies), 10)
        self.assertLess(p99, 2000)
        self.assertLess(latencies[-1], 5.0)
        self.assertLess(rss_after - rss_before, 8 * 1024, "memory grew under the load")
        self.assertTrue(d.alive())
        self.assertTrue(ctl(sock, "status")["ok"])
        self.assertEqual(d.stop(), 0, d.read_log()[-2000:])
        items.stop()
        wd.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
