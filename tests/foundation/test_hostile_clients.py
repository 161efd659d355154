#!/usr/bin/python3
"""Hostile local clients against the control socket, all at once: many connections, slow-loris clients sending a
byte a second, oversize lines, invalid UTF-8, another uid, rapid connect/disconnect, watchers that never read.
Meanwhile a well-behaved client keeps asking `status`: its latency is measured (and printed), and the daemon's memory
must stay bounded.  HOSTILE_SECONDS sets how long the load runs (default 6) and HOSTILE_FLOODS how many threads
connect and disconnect in a tight loop (default 1); the long mode (scripts/reliability) uses more of both."""

import json
import os
import socket
import statistics
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import Daemon, Server, Workdir, base_config, ctl, write_config, REPO  # noqa: E402

ITEMS_SERVER = os.path.join(REPO, "tests", "lib", "items_server.py")


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
        counts = {"connects": 0, "oversize": 0, "slow": 0, "utf8": 0, "foreign": 0, "watchers": 0}
        lock = threading.Lock()

        def bump(k):
            with lock:
                counts[k] += 1

        def connect():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(sock)
            return s

        def rapid():
            while not stop.is_set():
                try:
                    connect().close()
                    bump("connects")
                except OSError:
                    pass

        def oversize():
            while not stop.is_set():
                try:
                    s = connect()
                    s.sendall(b"{" + b"a" * (80 * 1024))
                    s.recv(4096)
                    s.close()
                    bump("oversize")
                except OSError:
                    pass

        def slow_loris():
            try:
                s = connect()
                for b in b'{"v": 1, "cmd": "status"}':
                    if stop.is_set():
                        break
                    s.send(bytes([b]))
                    time.sleep(1.0)
                s.close()
                bump("slow")
            except OSError:
                pass

        def bad_utf8():
            while not stop.is_set():
                try:
                    s = connect()
                    s.sendall(b'{"v": 1, "cmd": "\xc3\x28\xa0\xa1\xf0\x28\x8c\xbc"}\n')
                    s.recv(4096)
                    s.close()
                    bump("utf8")
                except OSError:
                    pass

        def foreign():
            while not stop.is_set():
                pid = os.fork()
                if pid == 0:
                    try:
                        # Not an operator: uid 65534 without the group (dropping a group needs no privilege).
                        os.setgroups([]) if os.getuid() == 0 else None
                        s = connect()
                        s.recv(4096)
                    finally:
                        os._exit(0)
                os.waitpid(pid, 0)
                bump("foreign")
                time.sleep(0.05)

        def deaf_watcher():
            try:
                s = connect()
                s.sendall(b'{"v": 1, "cmd": "watch"}\n')
                bump("watchers")
                stop.wait()
                s.close()
            except OSError:
                pass

        rss_before = rss_kb(d.proc.pid)
        # The attack comes from another process of another user (an operator, uid 65534 in group "users"), so the
        # per-uid connection cap bounds it and root's requests still get through.
        import grp
        r_fd, w_fd = os.pipe()
        attacker = os.fork()
        if attacker == 0:
            os.close(r_fd)
            os.setgroups([grp.getgrnam("users").gr_gid])
            os.setgid(65534)
            os.setuid(65534)
            floods = int(os.environ.get("HOSTILE_FLOODS", "1"))
            threads = [threading.Thread(target=f, daemon=True) for f in
                       [rapid] * floods + [oversize, bad_utf8, foreign] + [slow_loris] * 6 + [deaf_watcher] * 4]
            for t in threads:
                t.start()
            time.sleep(seconds + 1)
            stop.set()
            for t in threads:
                t.join(5)
            os.write(w_fd, json.dumps(counts).encode())
            os._exit(0)
        os.close(w_fd)
        # A run in progress while under attack: its events go to the deaf watchers.
        self.assertTrue(patient_ctl(sock, "trigger", timeout=10).get("ok") is not None)
        latencies, failures = [], 0
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            try:
                r = patient_ctl(sock, "status", timeout=5)
                if r.get("ok"):
                    latencies.append(time.monotonic() - t0)
                else:
                    failures += 1       # "busy": the connection caps doing their job
            except OSError:
                failures += 1
            time.sleep(0.02)
        data = b""
        while True:
            chunk = os.read(r_fd, 4096)
            if not chunk:
                break
            data += chunk
        os.waitpid(attacker, 0)
        counts = json.loads(data or b"{}")
        rss_after = rss_kb(d.proc.pid)
        latencies.sort()
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
        print("\nhostile clients for %.0fs: %s; status answered %d (busy %d), latency p50 %.1f ms, p99 %.1f ms, "
              "max %.1f ms; daemon RSS %d -> %d KiB" % (seconds, json.dumps(counts), len(latencies), failures, p50,
                                                       p99, latencies[-1] * 1000, rss_before, rss_after),
              file=sys.stderr)
        self.assertGreater(len(latencies), 10)
        self.assertLess(p99, 2000)
        self.assertLess(rss_after - rss_before, 8 * 1024, "memory grew under the load")
        self.assertTrue(d.alive())
        self.assertTrue(ctl(sock, "status")["ok"])
        self.assertEqual(d.stop(), 0, d.read_log()[-2000:])
        items.stop()
        wd.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
